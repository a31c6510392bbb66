"""Signing in to Partner Center the ways Microsoft supports, through MSAL.

App-only: client credentials (a client secret or a certificate). App+User: device-code sign-in
for people, or a refresh token for unattended runs. Or a ready token in BULKPATCH_TOKEN.
Tokens are cached in the user's cache folder, readable by the user alone, and refreshed during a
run: a 401 refreshes the token once and sends the same request again. No token, secret or
refresh token is ever printed, logged or put in an exception's text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import msal

from bulkpatch import portable
from bulkpatch.errors import InputError, TerminalError
from bulkpatch.sandbox import identity as sandbox_identity
from bulkpatch.settings import cache_dir

if TYPE_CHECKING:
    from bulkpatch.settings import Profile

SCOPE = "https://api.partnercenter.microsoft.com/.default"
AUTHORITY = "https://login.microsoftonline.com"
Method = Literal["token", "client_secret", "certificate", "device_code", "refresh_token"]
SANDBOX_USER = "BULKPATCH_SANDBOX_USER"  # sign in to the sandboxes as this person (demos, tests)
SANDBOX_TOKEN_FILE = "sandbox-token"  # `bulkpatch auth login --sandbox-as NAME` keeps it here


class AuthError(TerminalError):
    """Signing in failed; the message says why without any secret in it."""


@dataclass
class Credentials:
    """How to sign in; secrets are read from the environment only when needed."""

    method: Method
    tenant_id: str = ""
    client_id: str = ""
    secret_env: str = ""  # the name of the variable holding the client secret
    certificate: str = ""  # a PEM file with the private key (and the certificate)
    certificate_thumbprint: str = ""
    refresh_token_env: str = ""  # the name of the variable holding a refresh token
    token_env: str = "BULKPATCH_TOKEN"
    authority: str = AUTHORITY  # another cloud's sign-in host (or a local stand-in in tests)

    @classmethod
    def of(cls, profile: Profile) -> Credentials:
        """The sign-in details a profile (or the environment) names."""
        return cls(
            method=profile.get("auth"),
            tenant_id=profile.get("tenant_id") or "",
            client_id=profile.get("client_id") or "",
            secret_env=profile.get("secret_env") or "",
            certificate=profile.get("certificate") or "",
            certificate_thumbprint=profile.get("certificate_thumbprint") or "",
            refresh_token_env=profile.get("refresh_token_env") or "",
            authority=profile.get("authority") or AUTHORITY,
        )

    def secret(self, variable: str, what: str) -> str:
        value = os.environ.get(variable, "").strip() if variable else ""
        if not value:
            raise AuthError(
                f"{what} is not set: put it in the environment variable "
                f"{variable or '(none named in the profile)'}."
            )
        return value


class TokenProvider:
    """Gets, caches and refreshes tokens for one set of credentials."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.cache_path = cache_dir() / f"token-cache-{credentials.client_id or 'static'}.json"
        self.cache = msal.SerializableTokenCache()
        if self.cache_path.exists():
            self.cache.deserialize(self.cache_path.read_text(encoding="utf-8"))
        self._app: msal.ClientApplication | None = None

    @property
    def refreshable(self) -> bool:
        return self.credentials.method != "token"

    # --- tokens ----------------------------------------------------------------------------------

    def token(self, refresh: bool = False) -> str:
        """A valid access token (a new one when `refresh`)."""
        c = self.credentials
        if c.method == "token":
            return c.secret(c.token_env, "The Partner Center token")
        with self._signing_in():
            result = self._acquire(refresh)
        self._save()
        if "access_token" not in result:
            raise AuthError(self._refused(result))
        return result["access_token"]

    @contextlib.contextmanager
    def _signing_in(self) -> Iterator[None]:
        """A sign-in call: no answer from the sign-in service is one line saying what to do."""
        try:
            yield
        except (msal.exceptions.MsalError, OSError, ValueError) as exc:  # network, TLS, protocol
            c = self.credentials
            raise AuthError(
                f"signing in failed: the sign-in service at {c.authority} could not be reached "
                f"({type(exc).__name__}); check the network or proxy, then try again."
            ) from None

    def _refused(self, result: dict[str, Any]) -> str:
        """Why the sign-in service said no, and what to do, in one line (never a secret)."""
        c = self.credentials
        error, description = result.get("error", "no token"), result.get("error_description", "")
        if "AADSTS90002" in description or "AADSTS900023" in description:
            return f"signing in failed: tenant {c.tenant_id} was not found; check tenant_id."
        if "AADSTS65001" in description or error == "consent_required":
            return (
                f"signing in failed: application {c.client_id} has no consent in tenant "
                f"{c.tenant_id}; an administrator of that tenant must grant it, then try again."
            )
        if error in ("invalid_client", "unauthorized_client"):
            return (
                f"signing in failed: {error}: the application's secret or certificate was "
                "refused; check secret_env or certificate in the profile."
            )
        return f"signing in failed: {error}: {_first_line(description)}"

    def _acquire(self, refresh: bool) -> dict[str, Any]:
        c, app = self.credentials, self.app()
        if c.method in ("client_secret", "certificate"):
            if refresh:
                app.remove_tokens_for_client()  # type: ignore[attr-defined]
            return app.acquire_token_for_client([SCOPE])  # type: ignore[attr-defined]
        accounts = app.get_accounts()
        if accounts:
            found = app.acquire_token_silent([SCOPE], accounts[0], force_refresh=refresh)
            if found:
                return found
        if c.method == "refresh_token":
            return app.acquire_token_by_refresh_token(
                c.secret(c.refresh_token_env, "The refresh token"), [SCOPE]
            )
        raise AuthError("not signed in: run `bulkpatch auth login` first.")

    def app(self) -> msal.ClientApplication:
        if self._app is not None:
            return self._app
        c = self.credentials
        if not (c.tenant_id and c.client_id):
            raise InputError(
                f"signing in with {c.method} needs tenant_id and client_id in the profile."
            )
        authority = c.authority.rstrip("/")
        options = {
            "authority": f"{authority}/{c.tenant_id}",
            "token_cache": self.cache,
            # Microsoft's own clouds are known to MSAL; a configured host is trusted as is
            "instance_discovery": authority == AUTHORITY,
        }
        if c.method == "client_secret":
            self._app = msal.ConfidentialClientApplication(
                c.client_id,
                client_credential=c.secret(c.secret_env, "The client secret"),
                **options,
            )
        elif c.method == "certificate":
            self._app = msal.ConfidentialClientApplication(
                c.client_id, client_credential=self._certificate(), **options
            )
        else:
            self._app = msal.PublicClientApplication(c.client_id, **options)
        return self._app

    def _certificate(self) -> dict[str, str]:
        c = self.credentials
        try:
            key = Path(c.certificate).read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthError(
                f"the certificate file {c.certificate} cannot be read ({exc.strerror})."
            ) from None
        if not c.certificate_thumbprint:
            raise InputError("certificate sign-in needs certificate_thumbprint in the profile.")
        return {"private_key": key, "thumbprint": c.certificate_thumbprint}

    def _save(self) -> None:
        """Write the cache for this user alone (mode 600), atomically."""
        if not self.cache.has_state_changed:
            return
        portable.private_folder(self.cache_path.parent)
        tmp = self.cache_path.with_name(f".{self.cache_path.name}.tmp")
        with portable.open_private(tmp) as out:
            out.write(self.cache.serialize())
        os.replace(tmp, self.cache_path)
        self.cache.has_state_changed = False

    # --- auth commands ---------------------------------------------------------------------------

    def login(self, say: Callable[[str], None]) -> dict[str, Any]:
        """Sign in now (device code shows its instructions through `say`) and cache the result."""
        c = self.credentials
        if c.method == "device_code":
            with self._signing_in():
                app = self.app()
                flow = app.initiate_device_flow([SCOPE])  # type: ignore[attr-defined]
                if "message" not in flow:
                    raise AuthError(self._refused(flow))
                say(flow["message"])
                result = app.acquire_token_by_device_flow(flow)  # type: ignore[attr-defined]
            self._save()
            if "access_token" not in result:
                raise AuthError(self._refused(result))
        else:
            self.token(refresh=True)
        return self.status()

    def status(self) -> dict[str, Any]:
        """Who is signed in, to which tenant, until when; never the token itself."""
        c = self.credentials
        if c.method == "token":
            token = os.environ.get(c.token_env, "").strip()
            said = claims(token)
            expires = int(said.get("exp", 0) or 0)
            return {
                "method": "token",
                "source": c.token_env,
                "set": bool(token),
                "signed_in": bool(token) and (not expires or expires > time.time()),
                "who": said.get("upn")
                or said.get("unique_name")
                or said.get("app_displayname")
                or (f"application {said['appid']}" if said.get("appid") else None),
                "tenant": said.get("tid"),
                "expires": _moment(expires),
                "identity": identity_of(said, "token"),
            }
        tokens = list(self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN))
        mine = [t for t in tokens if t.get("client_id") == c.client_id]
        accounts = list(self.cache.search(msal.TokenCache.CredentialType.ACCOUNT))
        expires = max((int(t.get("expires_on", 0)) for t in mine), default=0)
        return {
            "method": c.method,
            "signed_in": expires > time.time(),
            "who": accounts[0].get("username") if accounts else f"application {c.client_id}",
            "tenant": c.tenant_id,
            "client_id": c.client_id,
            "expires": _moment(expires),
            "identity": self._identity(mine, accounts),
        }

    def _identity(self, tokens: list[dict], accounts: list[dict]) -> dict[str, Any]:
        """Who the cached sign-in is: the newest access token's claims (App+User: the user's
        UPN and object id; app-only: the application), else the cached account."""
        c = self.credentials
        newest = max(tokens, key=lambda t: int(t.get("expires_on", 0)), default=None)
        said = claims(newest.get("secret", "")) if newest else {}
        if not said and accounts:
            account = accounts[0]
            said = {
                "upn": account.get("username"),
                "oid": account.get("local_account_id"),
                "tid": account.get("realm"),
            }
        if not said:
            said = {"appid": c.client_id, "tid": c.tenant_id}
        return identity_of(said, c.method)

    def logout(self) -> bool:
        """Forget every cached token of these credentials."""
        with contextlib.suppress(FileNotFoundError):
            self.cache_path.unlink()
            return True
        return False


class BearerAuth(httpx.Auth):
    """httpx auth: the current token on every call; one refresh and resend after a 401."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await asyncio.to_thread(self.provider.token)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.provider.refreshable:
            token = await asyncio.to_thread(self.provider.token, True)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def claims(token: str) -> dict[str, Any]:
    """What a token says of itself (who, which tenant, until when), read without verifying:
    for telling the user, never for trusting. Empty when it is not a readable JWT."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def identity_of(said: dict[str, Any], method: str) -> dict[str, Any]:
    """Who a token's claims say is calling, as run folders, reports and the audit log record
    it: a person (UPN, object id, tenant), an application (client id, tenant), a sandbox
    sign-in, or unknown; `key` is what tells two identities apart (object id first)."""
    user = said.get("upn") or said.get("unique_name") or said.get("preferred_username")
    app = said.get("appid") or said.get("azp")
    tenant = said.get("tid")
    if said.get("iss") == sandbox_identity.ISSUER:
        kind, name = "sandbox", user
    elif user:
        kind, name = "user", user
    elif app:
        kind, name = "application", f"application {app}"
    else:
        kind, name = "unknown", None
    found = {
        "kind": kind,
        "name": name,
        "object_id": said.get("oid"),
        "tenant": tenant,
        "client_id": app,
        "method": method,
    }
    unique = said.get("oid") or (app if kind == "application" else None) or name or "anonymous"
    return {**found, "key": f"{kind}:{tenant or '-'}:{unique}".lower()}


def sandbox_token() -> str | None:
    """The sandbox sign-in of this user: BULKPATCH_SANDBOX_USER (a token issued for that
    name now), else the one `auth login --sandbox-as` kept; None when neither is there."""
    named = os.environ.get(SANDBOX_USER, "").strip()
    if named:
        return sandbox_identity.issue(named, sandbox_identity.signing_key())
    kept = cache_dir() / SANDBOX_TOKEN_FILE
    try:
        token = kept.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return token if sandbox_identity.verify(token, sandbox_identity.signing_key()) else None


def sandbox_login(name: str) -> dict[str, Any]:
    """Sign in to the sandboxes as `name`: a token they check, kept for this user alone."""
    if not name.strip():
        raise InputError("--sandbox-as needs a name, such as alice@contoso.com.")
    token = sandbox_identity.issue(name.strip(), sandbox_identity.signing_key())
    portable.private_folder(cache_dir())
    with portable.open_private(cache_dir() / SANDBOX_TOKEN_FILE) as out:
        out.write(token)
    return sandbox_status()


def sandbox_status() -> dict[str, Any]:
    """Who the sandboxes see calling (never the token)."""
    token = sandbox_token()
    said = claims(token) if token else {}
    return {
        "method": "sandbox",
        "source": SANDBOX_USER if os.environ.get(SANDBOX_USER, "").strip() else "auth login",
        "signed_in": bool(token),
        "who": said.get("upn"),
        "tenant": said.get("tid"),
        "expires": _moment(int(said.get("exp", 0) or 0)),
        "identity": identity_of(said or {"iss": sandbox_identity.ISSUER}, "sandbox"),
    }


def sandbox_logout() -> bool:
    """Forget the kept sandbox sign-in."""
    with contextlib.suppress(FileNotFoundError):
        (cache_dir() / SANDBOX_TOKEN_FILE).unlink()
        return True
    return False


def _moment(epoch: int) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def in_words(status: dict) -> str:
    """Who calls go out as, from `TokenProvider.status()`, in the words of `bulkpatch auth
    status` and the page's header (never a token)."""
    if status["method"] == "token":
        return _token_words(status)
    if status["method"] == "sandbox":
        if not status["signed_in"]:
            return "Not signed in to the sandboxes (anonymous there)."
        return (
            f"Signed in to the sandboxes as {status['who']} (a sandbox sign-in, nothing real); "
            f"valid until {status['expires']}."
        )
    if not status["signed_in"]:
        return f"Not signed in ({status['method']}, tenant {status['tenant']})."
    return (
        f"Signed in as {status['who']} to tenant {status['tenant']} ({status['method']}); "
        f"token valid until {status['expires']}."
    )


def _token_words(status: dict) -> str:
    source = status["source"]
    if not status["set"]:
        return (
            f"Not signed in: {source} is not set and no profile names a sign-in method. Set "
            f"{source} to a Partner Center token, or sign in with a profile (see `bulkpatch "
            "auth login --help`). Until then, commands use the built-in sandbox."
        )
    if status["who"] is None and status["tenant"] is None:
        return f"Using the token in {source} (it does not say who it belongs to)."
    until = status["expires"] or "an unknown time"
    state = "valid until" if status["signed_in"] else "EXPIRED at"
    return (
        f"Using the token in {source}: {status['who'] or 'unknown identity'} in tenant "
        f"{status['tenant'] or 'unknown'}, {state} {until}."
    )
