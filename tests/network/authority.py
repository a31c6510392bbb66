"""A local stand-in for Microsoft's sign-in service (MSAL's authority), for tests.

It speaks just enough OAuth 2.0 / OpenID Connect for MSAL's real client code: discovery, the
token endpoint (client credentials with a secret or a certificate assertion, refresh tokens,
device codes) and the device-code endpoint. Served over https on 127.0.0.1 with a self-signed
certificate made here, so MSAL needs no change and no internet.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SCOPE = "https://api.partnercenter.microsoft.com/.default"


def self_signed(folder: Path) -> tuple[Path, Path, str]:
    """A key and certificate for 127.0.0.1 / localhost; returns (cert, key, sha1 thumbprint)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert.fingerprint(hashes.SHA1()).hex().upper()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class Authority:
    """Issues `tokens` in turn (the last one again once they run out) to the right client."""

    def __init__(
        self,
        tenant: str,
        client_id: str,
        *,
        secret: str = "",
        refresh_token: str = "",
        tokens: tuple[str, ...] = ("token-1", "token-2"),
    ) -> None:
        self.tenant, self.client_id, self.secret = tenant, client_id, secret
        self.refresh_tokens = {refresh_token} if refresh_token else set()
        self.tokens = list(tokens)
        self.grants: list[str] = []
        self.base = ""
        self.app = Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self.discovery),
                Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
                Route("/{tenant}/oauth2/v2.0/devicecode", self.device_code, methods=["POST"]),
            ]
        )

    async def discovery(self, request: Request) -> JSONResponse:
        root = f"{self.base}/{request.path_params['tenant']}"
        return JSONResponse(
            {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            }
        )

    async def device_code(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "device_code": "device-code-1",
                "user_code": "ABCD-EFGH",
                "expires_in": 900,
                "interval": 1,
                "verification_uri": "https://microsoft.com/devicelogin",
                "message": "To sign in, open the page https://microsoft.com/devicelogin and "
                "enter ABCD-EFGH.",
            }
        )

    async def token(self, request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type", "")
        self.grants.append(grant)
        if form.get("client_id") != self.client_id:
            return self._refuse("unauthorized_client", "unknown client")
        if grant == "client_credentials":
            assertion = form.get("client_assertion")
            if not (form.get("client_secret") == self.secret and self.secret) and not assertion:
                return self._refuse("invalid_client", "wrong client secret")
            return JSONResponse(self._tokens(user=False))
        if grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
            return JSONResponse(self._tokens(user=True))
        if grant.endswith("device_code") and form.get("device_code") == "device-code-1":
            return JSONResponse(self._tokens(user=True))
        return self._refuse("invalid_grant", f"the {grant} grant is not valid")

    def _tokens(self, user: bool) -> dict:
        access = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
        answer = {
            "token_type": "Bearer",
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": access,
            "scope": SCOPE,
        }
        if user:
            fresh = f"refresh-{len(self.grants)}"
            self.refresh_tokens.add(fresh)
            now = int(time.time())
            claims = {
                "iss": f"{self.base}/{self.tenant}/v2.0",
                "sub": "user-1",
                "aud": self.client_id,
                "iat": now,
                "exp": now + 3600,
                "tid": self.tenant,
                "oid": "user-1",
                "preferred_username": "finance@contoso.example",
                "name": "Finance Analyst",
            }
            answer |= {
                "refresh_token": fresh,
                "id_token": f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
                "client_info": _b64({"uid": "user-1", "utid": self.tenant}),
            }
        return answer

    @staticmethod
    def _refuse(error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=400)
