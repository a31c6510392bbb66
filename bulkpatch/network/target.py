"""Where changes go: the embedded sandbox, a URL (a `bulkpatch sandbox`), or production, and
the one decision of which of these a URL is (`where`), made on the URL as the client parses it.

Plain http is allowed only to loopback addresses, and TLS is always verified. Tokens never
leave this module except in the Authorization header (through `bulkpatch.auth`).
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bulkpatch.errors import BulkpatchError, InputError, StoppedError, os_cause
from bulkpatch.network.auth import (
    BearerAuth,
    Credentials,
    TokenProvider,
    claims,
    identity_of,
    sandbox_token,
)
from bulkpatch.sandbox import identity as sandbox_identity
from bulkpatch.settings import Profile, cache_dir

PRODUCTION = "https://api.partnercenter.microsoft.com"
# Partner Center's API hosts in Microsoft's clouds, from "Different Partner Center REST URL end
# points for use in certain countries or regions"
# (https://learn.microsoft.com/partner-center/developer/partner-center-rest-urls): Partner
# Center and Partner Center for Microsoft Cloud for US Government share
# api.partnercenter.microsoft.com; Partner Center operated by 21Vianet is
# partner.partnercenterapi.microsoftonline.cn; Pricing and Referrals is api.partner.microsoft.com.
# That page names no other cloud (GCC High has no host apart from US Government's there, and
# the retired Microsoft Cloud Germany is not listed), so no other host is guessed here: one
# counts as production when a profile's `api_url` names it. Each host's domain counts whole
# (any host under it, any port or path): Microsoft's own servers are never a sandbox.
PARTNER_CENTER_DOMAINS = (
    "partnercenter.microsoft.com",
    "partnercenterapi.microsoftonline.cn",
    "partner.microsoft.com",
)
DEFAULT_PORTS = {"http": 80, "https": 443}
TOKEN_VARIABLE = "BULKPATCH_TOKEN"
SANDBOX_TOKEN = "sandbox"  # the embedded and local sandboxes accept any bearer token
# ...and check the ones they issued (`bulkpatch auth login --sandbox-as`, BULKPATCH_SANDBOX_USER)
SANDBOX_STATE = "sandbox.db"


@dataclass
class Target:
    """A resolved target: its base URL, how to name it to a user, and how to sign in."""

    name: str
    base_url: str
    auth: httpx.Auth | None = field(default=None, repr=False)
    embedded: bool = False
    where: str = "url"  # sandbox, production or url, as `where` decides
    defaulted: bool = False  # nothing chose it: no target given and no credentials set
    application: str = "bulkpatch"

    @property
    def live(self) -> bool:
        """Its changes reach a real Partner Center: a run asks first (or needs --yes)."""
        return self.where == "production"


@dataclass(frozen=True)
class Address:
    """Where a client connects for a URL, whatever its spelling."""

    scheme: str  # http or https
    host: str  # as connected to: IDNA-encoded, lower case
    port: int  # the scheme's default when the URL gives none
    userinfo: bool  # the URL carries a user name or password (`user:pass@host`)

    @property
    def server(self) -> tuple[str, int]:
        """The server it names: its host without a trailing dot (DNS's root, the same host)
        and its port; this machine's names count as one."""
        return ("this machine" if is_loopback(self.host) else self.host.rstrip("."), self.port)


def address(url: str | None) -> Address | None:
    """`url` parsed as the HTTP client parses it (so a host written with full-width dots, as
    U+FF0E, is the host it connects to); None for what is not an http(s) URL with a host."""
    try:
        parsed = httpx.URL(url or "")
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.raw_host:
        return None
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    return Address(
        parsed.scheme, parsed.raw_host.decode("ascii").lower(), port, bool(parsed.userinfo)
    )


def where(url: str, configured: str | None = None, embedded: bool = False) -> str:
    """Where calls to `url` go: `production` (any host of Microsoft's Partner Center API clouds,
    or the server a profile's `api_url` names: `configured`), `sandbox` (the built-in one, or a
    server on this machine), or `url` (any other address). Every guard of a live run (the
    question, --yes, the red banner, the page's typed count) asks this, so no spelling of a URL
    (case, trailing dot, default port, user info, path) passes for another place."""
    if embedded:
        return "sandbox"
    found = address(url)
    if found is None:
        return "url"
    ours = address(configured)
    if _microsoft(found.host.rstrip(".")) or (ours is not None and ours.server == found.server):
        return "production"
    return "sandbox" if is_loopback(found.host) else "url"


def _microsoft(host: str) -> bool:
    return any(host == d or host.endswith(f".{d}") for d in PARTNER_CENTER_DOMAINS)


def place_name(target: Target) -> str:
    """One name for the place a target's changes land in, however it was chosen or spelled
    (`production`, the default, any spelling of its URL): what the ledger of applied seat
    changes is kept by."""
    if target.embedded or target.live:
        return target.where
    found = address(target.base_url)
    assert found is not None  # `resolve` checked it
    host, port = found.server
    return f"{host}:{port}"


def production_url(profile: Profile) -> str:
    """What `production` means for `profile`: its `api_url`, else Partner Center's."""
    return (profile.get("api_url") or PRODUCTION).rstrip("/")


class StaticToken(httpx.Auth):
    """A fixed bearer token (the sandboxes' placeholder)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"
        self.claims = claims(token)  # who it says it is (a sandbox sign-in's name), not it

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
            StaticToken(sandbox_token() or SANDBOX_TOKEN),
            embedded=True,
            where="sandbox",
            application=application,
            defaulted=chosen is None,
        )
    production = production_url(profile)
    url = production if choice == "production" else choice.rstrip("/")
    _checked(url, "api_url" if choice == "production" else "--target")
    place = where(url, production)
    auth = _auth(credentials, signed, place == "sandbox", url)
    name = "Partner Center (production)" if _is_partner_center(url) else url
    return Target(name, url, auth, where=place, application=application)


def _checked(url: str, given: str) -> None:
    """The address of a URL bulkpatch may send to: http(s), plain http only to this machine,
    no user name or password (they would be written into the run folder and its reports)."""
    found = address(url)
    if found is None:
        shown = f"{given} {url!r}" if "@" not in url else f"{given}: that URL"  # no password
        words = "an http(s) URL" if given == "api_url" else "sandbox, production or an http(s) URL"
        raise InputError(f"{shown} is not {words}.")
    if found.userinfo:
        raise InputError(
            f"{given}: a URL with a user name or password in it (user:password@host) is not "
            f"accepted; give {found.scheme}://{found.host} and sign in with {TOKEN_VARIABLE} "
            "or a profile (see `bulkpatch auth login --help`)."
        )
    if found.scheme == "http" and not is_loopback(found.host):
        raise InputError(
            f"{given} {url}: plain http is only allowed to this machine "
            "(127.0.0.1, localhost); use https."
        )


def _is_partner_center(url: str) -> bool:
    """`url` is Partner Center's own base URL, however spelled (its name is then said)."""
    return address(url) == address(PRODUCTION) and httpx.URL(url).path in ("", "/")


def _auth(credentials: Credentials, signed: bool, local: bool, url: str) -> httpx.Auth:
    if signed:
        return BearerAuth(TokenProvider(credentials))
    if local:
        return StaticToken(sandbox_token() or SANDBOX_TOKEN)
    raise InputError(
        f"--target {url} needs Partner Center credentials: set {TOKEN_VARIABLE}, "
        "or sign in with a profile (see `bulkpatch auth login --help`)."
    )


def identity(target: Target) -> dict[str, Any]:
    """Who the target's calls go out as (`auth.identity_of`): the signed-in user or
    application, the sandbox sign-in, or unknown when the sign-in cannot say."""
    if isinstance(target.auth, BearerAuth):
        try:
            return target.auth.provider.status()["identity"]
        except BulkpatchError:
            return identity_of({}, target.auth.provider.credentials.method)
    said = target.auth.claims if isinstance(target.auth, StaticToken) else {}
    if target.embedded or target.where == "sandbox":
        said = said or {"iss": sandbox_identity.ISSUER}
        return identity_of(said, "sandbox")
    return identity_of(said, "token")


def is_loopback(host: str) -> bool:
    """`host` (a name or an IP address, as a URL gives it) is this machine. `localhost.` is
    not: with its trailing dot it is asked of DNS, not of this machine's hosts file."""
    host = host.lower().strip("[]")
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
