"""The sandbox's sign-in: tokens it issues to a named person, and the check it makes of them.

Partner Center learns who calls from a token Microsoft Entra ID signed; the sandbox has no
Entra ID, so it signs its own (a JWT, HS256, issuer `bulkpatch-sandbox`) with a key kept in
the user's cache folder (readable by the user alone). A demo or a test signs in as two people
and the sandbox knows which one calls; it refuses a token that claims to be its own and that
it did not sign (or that has expired). Any other bearer token is accepted as before (the
sandbox stands in for Partner Center, not for its sign-in). Nothing here is a real identity:
whoever can read the cache folder can sign in as anyone, which is why it is a sandbox's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from bulkpatch import portable
from bulkpatch.settings import cache_dir

ISSUER = "bulkpatch-sandbox"
TENANT = "sandbox"  # the sandbox's tenant, as a token's `tid` names it
KEY_FILE = "sandbox-signing.key"
HOURS = 12  # a sandbox sign-in lasts a working day, as an Entra refresh would


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(folder: Path | None = None) -> bytes:
    """This user's sandbox signing key, made on first use (mode 600)."""
    path = (folder or cache_dir()) / KEY_FILE
    if not path.exists():
        portable.private_folder(path.parent)
        with portable.open_private(path) as out:
            out.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("ascii")


def issue(name: str, key: bytes, now: float | None = None) -> str:
    """A token saying `name` signed in to the sandbox, valid for `HOURS`."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "upn": name,
        "name": name,
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ISSUER}:{name.lower()}")),
        "tid": TENANT,
        "iat": issued,
        "exp": issued + HOURS * 3600,
    }
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims, sort_keys=True).encode())
    return f"{head}.{body}.{_sign(f'{head}.{body}', key)}"


def _sign(signed: str, key: bytes) -> str:
    return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())


def claimed(token: str) -> dict[str, Any] | None:
    """The claims of a token that says the sandbox issued it (unchecked); None otherwise."""
    try:
        said = json.loads(_unb64(token.split(".")[1]))
    except (IndexError, ValueError):
        return None
    return said if isinstance(said, dict) and said.get("iss") == ISSUER else None


def verify(token: str, key: bytes, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a token this sandbox signed and that has not expired; None otherwise."""
    said = claimed(token)
    parts = token.split(".")
    if said is None or len(parts) != 3:
        return None
    if not hmac.compare_digest(_sign(f"{parts[0]}.{parts[1]}", key), parts[2]):
        return None
    moment = now if now is not None else time.time()
    return said if int(said.get("exp", 0)) > moment else None
