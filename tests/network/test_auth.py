"""auth: MSAL sign-in against a local stand-in authority (https on 127.0.0.1), the token cache,
refresh in the middle of a run, and the `bulkpatch auth` commands."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys

import pytest
from authority import Authority, self_signed
from conftest import FAST, server, true_up, uvicorn_server

from bulkpatch.apply.engine import Engine
from bulkpatch.commands.api import prepare
from bulkpatch.network.auth import AuthError, Credentials, TokenProvider
from bulkpatch.network.target import client
from bulkpatch.settings import load_profile

TENANT, CLIENT = "6b2f7c1e-0000-4000-8000-00000000ab01", "3c1d2e4f-0000-4000-8000-00000000cd02"
SECRET = "client-secret-value-7f3a"
REFRESH = "refresh-token-value-9b2c"


@pytest.fixture
def authority(tmp_path, monkeypatch):
    """The stand-in over real https; MSAL's HTTP library trusts its certificate via the env."""
    cert, key, thumbprint = self_signed(tmp_path)
    stand_in = Authority(TENANT, CLIENT, secret=SECRET, refresh_token=REFRESH)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("BULKPATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("APP_REFRESH", REFRESH)
    with uvicorn_server(stand_in.app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        stand_in.base = url
        stand_in.cert, stand_in.key, stand_in.thumbprint = cert, key, thumbprint
        yield stand_in


def credentials(authority: Authority, method: str, **extra) -> Credentials:
    return Credentials(
        method,
        TENANT,
        CLIENT,
        secret_env="APP_SECRET",
        refresh_token_env="APP_REFRESH",
        authority=authority.base,
        **extra,
    )


def test_client_secret_token_is_cached_for_the_user_alone_and_refreshes(authority):
    provider = TokenProvider(credentials(authority, "client_secret"))
    assert provider.token() == "token-1"
    mode = stat.S_IMODE(os.stat(provider.cache_path).st_mode)
    if os.name == "posix":  # Windows has no such mode: the folder's access list (portable.py)
        assert mode == 0o600
    again = TokenProvider(credentials(authority, "client_secret"))  # a later run
    assert again.token() == "token-1"
    assert authority.grants == ["client_credentials"]
    assert again.token(refresh=True) == "token-2"
    assert authority.grants == ["client_credentials", "client_credentials"]
    status = again.status()
    assert status["signed_in"] and status["tenant"] == TENANT
    assert status["who"] == f"application {CLIENT}"
    assert SECRET not in provider.cache_path.read_text()


def test_certificate_credentials_send_a_signed_assertion(authority, tmp_path):
    pem = tmp_path / "app.pem"
    pem.write_bytes(authority.key.read_bytes() + authority.cert.read_bytes())
    provider = TokenProvider(
        credentials(
            authority,
            "certificate",
            certificate=str(pem),
            certificate_thumbprint=authority.thumbprint,
        )
    )
    assert provider.token() == "token-1"
    assert authority.grants == ["client_credentials"]


def test_device_code_login_then_silent_tokens_then_logout(authority):
    said = []
    provider = TokenProvider(credentials(authority, "device_code"))
    status = provider.login(said.append)
    assert "enter ABCD-EFGH" in said[0]
    assert status["who"] == "finance@contoso.example" and status["signed_in"]
    later = TokenProvider(credentials(authority, "device_code"))
    assert later.token() == "token-1"  # from the cache, no new sign-in
    assert later.token(refresh=True) == "token-2"  # through the cached refresh token
    assert authority.grants[-1] == "refresh_token"
    assert later.logout() is True
    assert TokenProvider(credentials(authority, "device_code")).status()["signed_in"] is False


def test_refresh_token_for_unattended_runs(authority):
    provider = TokenProvider(credentials(authority, "refresh_token"))
    assert provider.token() == "token-1"
    assert authority.grants == ["refresh_token"]


def test_missing_or_wrong_secrets_are_named_never_shown(authority, monkeypatch):
    monkeypatch.delenv("APP_SECRET")
    with pytest.raises(AuthError, match="environment variable APP_SECRET"):
        TokenProvider(credentials(authority, "client_secret")).token()
    monkeypatch.setenv("APP_SECRET", "wrong-secret-4d2e")
    with pytest.raises(AuthError) as error:
        TokenProvider(credentials(authority, "client_secret")).token()
    assert "invalid_client" in str(error.value) and "wrong-secret-4d2e" not in str(error.value)


def test_a_401_in_the_middle_of_a_run_refreshes_the_token_once(authority, tmp_path):
    path = true_up(tmp_path, customers=3, per=3)
    (tmp_path / "bulkpatch.toml").write_text(
        f'[profiles.live]\nauth = "client_secret"\ntenant_id = "{TENANT}"\n'
        f'client_id = "{CLIENT}"\nsecret_env = "APP_SECRET"\nauthority = "{authority.base}"\n'
    )
    with server(path, token="token-1", latency_ms=5) as (url, sandbox):
        prepared = prepare(
            path, target=url, out=tmp_path / "run", profile=load_profile("live", tmp_path)
        )
        finished = []

        def rotate(change, result):  # the service stops accepting token-1 mid-run
            finished.append(result.outcome)
            if len(finished) == 3:
                sandbox.config.token = "token-2"

        async def go():
            async with client(prepared.target) as http:
                engine = Engine(http, FAST, None, on_result=rotate)
                engine.settings.concurrency = 1
                return await engine.run(prepared.changes)

        done = asyncio.run(go())
    assert [r.outcome for r in done.values()] == ["ok"] * 9
    assert authority.grants == ["client_credentials", "client_credentials"]


def test_auth_commands_show_who_and_never_the_token(authority, tmp_path):
    (tmp_path / "bulkpatch.toml").write_text(
        f'[profiles.default]\nauth = "client_secret"\ntenant_id = "{TENANT}"\n'
        f'client_id = "{CLIENT}"\nsecret_env = "APP_SECRET"\nauthority = "{authority.base}"\n'
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bulkpatch", "auth", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ),
        )

    before = run("status")
    login = run("login")
    status = run("status", "--json")
    logout = run("logout")
    after = run("status")
    assert before.returncode == 1 and "Not signed in" in before.stdout
    assert login.returncode == 0, login.stderr
    assert f"Signed in as application {CLIENT} to tenant {TENANT}" in login.stdout
    assert json.loads(status.stdout)["signed_in"] is True
    assert logout.stdout.startswith("Signed out") and after.returncode == 1
    everything = "".join(r.stdout + r.stderr for r in (before, login, status, logout, after))
    assert "token-1" not in everything and SECRET not in everything


def test_tls_is_always_verified_even_on_this_machine(authority, tmp_path, cli):
    path = true_up(tmp_path, customers=1, per=1)
    result = cli(
        "apply",
        path,
        "--target",
        authority.base,
        "--out",
        tmp_path / "run",
        "--json",
        "--rate",
        "60000",
    )
    summary = json.loads(result.stdout)
    # a read refused by TLS never reached Partner Center: `not_sent` (was `failed`)
    assert result.returncode == 1 and summary["outcomes"]["not_sent"] == 1
    message = (tmp_path / "run" / "results.csv").read_text()
    assert "CERTIFICATE_VERIFY_FAILED" in message or "certificate verify failed" in message


def jwt(**said) -> str:
    """A token shaped like Partner Center's (header.claims.signature), claims as given."""
    import base64

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(said)}.c2lnbmF0dXJl"


def test_auth_status_says_who_the_ready_token_is_for_and_when_nothing_is_set(cli, monkeypatch):
    monkeypatch.delenv("BULKPATCH_TOKEN", raising=False)
    nothing = cli("auth", "status")
    token = jwt(upn="ana@contoso.example", tid=TENANT, exp=4_102_444_800)  # 2100-01-01
    monkeypatch.setenv("BULKPATCH_TOKEN", token)
    ready = cli("auth", "status")
    as_json = cli("auth", "status", "--json")
    monkeypatch.setenv("BULKPATCH_TOKEN", jwt(appid=CLIENT, tid=TENANT, exp=1_000_000_000))
    expired = cli("auth", "status")
    assert nothing.returncode == 1
    assert nothing.stdout.startswith("Not signed in: BULKPATCH_TOKEN is not set")
    assert ready.returncode == 0
    assert ready.stdout.strip() == (
        f"Using the token in BULKPATCH_TOKEN: ana@contoso.example in tenant {TENANT}, "
        "valid until 2100-01-01T00:00:00Z."
    )
    assert json.loads(as_json.stdout)["who"] == "ana@contoso.example"
    assert expired.returncode == 1 and f"application {CLIENT}" in expired.stdout
    assert "EXPIRED at 2001-09-09T01:46:40Z" in expired.stdout
    assert all(token not in r.stdout + r.stderr for r in (ready, as_json))


def test_a_sign_in_service_that_cannot_be_reached_is_one_line_saying_what_to_do(
    tmp_path, cli, monkeypatch
):
    import socket

    monkeypatch.setenv("APP_SECRET", SECRET)
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{probe.getsockname()[1]}"
    (tmp_path / "bulkpatch.toml").write_text(
        f'[profiles.default]\nauth = "client_secret"\ntenant_id = "{TENANT}"\n'
        f'client_id = "{CLIENT}"\nsecret_env = "APP_SECRET"\nauthority = "{closed}"\n'
    )
    result = cli("auth", "login")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"bulkpatch: signing in failed: the sign-in service at {closed} could not be reached "
        "(ConnectionError); check the network or proxy, then try again."
    )
