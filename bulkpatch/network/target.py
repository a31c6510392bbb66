"""Where changes go: the embedded sandbox, a URL (a `bulkpatch sandbox`), or production.

Plain http is allowed only to loopback addresses, and TLS is always verified. Tokens never
leave this module except in the Authorization header (through `bulkpatch.auth`).
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bulkpatch.errors import BulkpatchError, InputError, StoppedError, os_cause
from bulkpatch.network.auth import BearerAuth, Credentials, TokenProvider
from bulkpatch.settings import Profile, cache_dir

PRODUCTION = "https://api.partnercenter.microsoft.com"
TOKEN_VARIABLE = "BULKPATCH_TOKEN"
SANDBOX_TOKEN = "sandbox"  # the embedded and local sandboxes accept any bearer token
SANDBOX_STATE = "sandbox.db"


@dataclass
class Target:
    """A resolved target: its base URL, how to name it to a user, and how to sign in."""

    name: str
    base_url: str
    auth: httpx.Auth | None = field(default=None, repr=False)
    embedded: bool = False
    live: bool = False  # changes reach Partner Center itself
    defaulted: bool = False  # nothing chose it: no target given and no credentials set
    application: str = "bulkpatch"


class StaticToken(httpx.Auth):
    """A fixed bearer token (the sandboxes' placeholder)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[override]
        request.headers["Authorization"] = self._header
        yield request


def resolve(option: str | None, profile: Profile | None = None) -> Target:
    """`sandbox`, `production`, a URL; unset: production when credentials exist, else sandbox."""
    profile = profile or Profile()
    credentials = Credentials.of(profile)
    signed = credentials.method != "token" or bool(os.environ.get(TOKEN_VARIABLE, "").strip())
    chosen = profile.get("target", option)
    choice = chosen or ("production" if signed else "sandbox")
    application = profile.get("application")
    if choice == "sandbox":
        return Target(
            "the built-in sandbox",
            "http://127.0.0.1",
            StaticToken(SANDBOX_TOKEN),
            embedded=True,
            application=application,
            defaulted=chosen is None,
        )
    production = (profile.get("api_url") or PRODUCTION).rstrip("/")
    url = production if choice == "production" else choice.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--target {choice!r} is not sandbox, production or an http(s) URL.")
    local = is_loopback(parts.hostname)
    if parts.scheme == "http" and not local:
        raise InputError(
            f"--target {url}: plain http is only allowed to this machine "
            "(127.0.0.1, localhost); use https."
        )
    live = url == production
    auth = _auth(credentials, signed, local and not live, url)
    name = "Partner Center (production)" if url == PRODUCTION else url
    return Target(name, url, auth, live=live, application=application)


def _auth(credentials: Credentials, signed: bool, local: bool, url: str) -> httpx.Auth:
    if signed:
        return BearerAuth(TokenProvider(credentials))
    if local:
        return StaticToken(SANDBOX_TOKEN)
    raise InputError(
        f"--target {url} needs Partner Center credentials: set {TOKEN_VARIABLE}, "
        "or sign in with a profile (see `bulkpatch auth login --help`)."
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sandbox_state() -> Path:
    """The built-in sandbox's state: one file in the user's cache folder that every run with
    it shares, so a sheet applied twice finds its first changes there, as in Partner Center."""
    return cache_dir() / SANDBOX_STATE


def forget_sandbox_state() -> bool:
    """Remove the built-in sandbox's state file (with SQLite's write-ahead log); whether
    there was one."""
    state = sandbox_state()
    existed = state.exists()
    try:
        for suffix in ("", "-wal", "-shm"):
            state.with_name(state.name + suffix).unlink(missing_ok=True)
    except OSError as exc:
        raise BulkpatchError(f"cannot remove {state}: {os_cause(exc)}.") from None
    return existed


def client(
    target: Target, seed: list[Path] | None = None, connections: int = 16
) -> httpx.AsyncClient:
    """The one HTTP client of a run: TLS always verified, signed in, JSON both ways. The
    built-in sandbox keeps its state (`sandbox_state`) and seeds the ids of `seed` it has not
    seen yet."""
    headers = {"Accept": "application/json", "MS-PartnerCenter-Application": target.application}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = None
    if target.embedded:
        transport = _builtin_sandbox(seed or [])
    # Timeouts are per call in the engine (asyncio), so they hold for any transport.
    return httpx.AsyncClient(
        base_url=target.base_url,
        headers=headers,
        limits=limits,
        auth=target.auth,
        transport=transport,
        timeout=None,
        verify=True,
    )


def _builtin_sandbox(seed: list[Path]) -> httpx.AsyncBaseTransport:
    """The in-process sandbox on its state file, with the new ids of `seed` added."""
    from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, SeedSpec

    state = sandbox_state()
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        config = SandboxConfig(db=str(state), seed=SeedSpec(sheets=seed))
        return SandboxTransport(Sandbox(config, reseed=False).app)
    except (OSError, sqlite3.Error) as exc:
        cause = os_cause(exc) if isinstance(exc, OSError) else str(exc)
        raise StoppedError(
            f"the built-in sandbox's state {state} cannot be opened ({cause}); nothing was "
            "sent by this command. Set BULKPATCH_CACHE_DIR to a folder you can write."
        ) from None
