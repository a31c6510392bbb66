"""Where changes go: the embedded sandbox, a URL (a `bulkpatch sandbox`), or production.

Plain http is allowed only to loopback addresses; the token never leaves this module except
in the Authorization header.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bulkpatch.errors import InputError

PRODUCTION = "https://api.partnercenter.microsoft.com"
TOKEN_VARIABLE = "BULKPATCH_TOKEN"
SANDBOX_TOKEN = "sandbox"  # the embedded and local sandboxes accept any bearer token


@dataclass
class Target:
    """A resolved target: its base URL, how to name it to a user, and its token."""

    name: str
    base_url: str
    token: str = field(repr=False)
    embedded: bool = False

    @property
    def live(self) -> bool:
        """True when changes reach Partner Center itself."""
        return self.base_url == PRODUCTION


def resolve(option: str | None) -> Target:
    """`sandbox`, `production`, a URL, or (None) production with a token, else the sandbox."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    choice = option or ("production" if token else "sandbox")
    if choice == "sandbox":
        return Target("the built-in sandbox", "http://127.0.0.1", SANDBOX_TOKEN, embedded=True)
    url = PRODUCTION if choice == "production" else choice.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--target {choice!r} is not sandbox, production or an http(s) URL.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(
            f"--target {url}: plain http is only allowed to this machine "
            "(127.0.0.1, localhost); use https."
        )
    if not token:
        if not is_loopback(parts.hostname):
            raise InputError(f"--target {url} needs a Partner Center token: set {TOKEN_VARIABLE}.")
        token = SANDBOX_TOKEN
    name = "Partner Center (production)" if url == PRODUCTION else url
    return Target(name, url, token)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client(
    target: Target,
    sandbox_db: Path | None = None,
    seed: list[Path] | None = None,
    reseed: bool = True,
    connections: int = 16,
) -> httpx.AsyncClient:
    """The one HTTP client of a run: TLS verified, bearer token set, JSON both ways."""
    headers = {
        "Authorization": f"Bearer {target.token}",
        "Accept": "application/json",
        "MS-PartnerCenter-Application": "bulkpatch",
    }
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    if not target.embedded:
        return httpx.AsyncClient(
            base_url=target.base_url, headers=headers, limits=limits, timeout=None, verify=True
        )
    from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, SeedSpec

    config = SandboxConfig(db=str(sandbox_db or ":memory:"), seed=SeedSpec(sheets=seed or []))
    transport = SandboxTransport(Sandbox(config, reseed=reseed).app)
    return httpx.AsyncClient(
        base_url=target.base_url, headers=headers, transport=transport, timeout=None
    )
