"""Guard rails for live runs, and secrets that never leave the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from authority import Authority, self_signed
from conftest import (
    FAST,
    live_profile,
    posix_only,
    run_in_terminal,
    server,
    stats,
    true_up,
    uvicorn_server,
)

from bulkpatch.commands.apply import apply_file
from bulkpatch.errors import InputError
from bulkpatch.settings import load_profile

ACCESS = ("tok-live-5e1d9c", "tok-live-8a2f4b")
SECRET, REFRESH = "s3cret-client-value-77", "refresh-value-31c9"
TENANT, CLIENT = "6b2f7c1e-0000-4000-8000-00000000ab01", "3c1d2e4f-0000-4000-8000-00000000cd02"


def mixed_sheet(tmp_path: Path) -> Path:
    """Eight changes over two customers (two suspensions) and one cancellation."""
    path = true_up(tmp_path, customers=2, per=4)
    customer, sub = path.read_text().splitlines()[1].split(",")[:2]
    path.write_text(path.read_text() + f"{customer},{sub[:-4]}ffff,,,,deleted\n")
    return path


def test_live_preview_counts_seats_suspensions_and_cancellations(tmp_path, monkeypatch):
    monkeypatch.setenv("BULKPATCH_TOKEN", "any")
    path = mixed_sheet(tmp_path)
    seen = []
    with server(path) as (url, _):
        live_profile(tmp_path, url)
        profile = load_profile(None, tmp_path)

        def refuse(prepared, preview):
            seen.extend(preview().lines())
            return False

        with pytest.raises(InputError, match="not confirmed"):
            apply_file(path, out=tmp_path / "run", settings=FAST, profile=profile, confirm=refuse)
        served = stats(url)
    assert "PATCH" not in served["calls"]
    assert seen[0] == "Rows: 9 valid, 0 invalid, 0 no_change."
    assert "9 to send for 2 customers" in seen[1]
    assert seen[2].startswith("Seat changes by offer: ") and "+" in seen[2]
    assert seen[3] == "Set apart: 2 suspensions, 1 cancellation."  # issue 14: plurals right


@posix_only
@pytest.mark.parametrize(("answer", "code", "patches"), [("n", 2, 0), ("y", 0, 9)])
def test_a_live_run_asks_first_in_a_terminal(tmp_path, answer, code, patches):
    path = mixed_sheet(tmp_path)
    with server(path) as (url, _):
        live_profile(tmp_path, url)
        returncode, screen = run_in_terminal(["apply", str(path), "--out", "run"], tmp_path, answer)
        served = stats(url)
    assert f"About to change {url}:" in screen and "Seat changes by offer" in screen
    assert returncode == code
    assert served["calls"].get("PATCH", {}).get("subscription", 0) == patches


def test_unattended_live_run_needs_yes(tmp_path, cli):
    path = true_up(tmp_path, customers=1, per=2)
    with server(path) as (url, _):
        live_profile(tmp_path, url)
        env = {**os.environ, "BULKPATCH_TOKEN": "any"}

        def run(*extra):
            return subprocess.run(
                [sys.executable, "-m", "bulkpatch", "apply", str(path), *extra],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                stdin=subprocess.DEVNULL,
            )

        refused, allowed = run("--out", "a"), run("--out", "b", "--yes")
        served = stats(url)
    assert refused.returncode == 2 and "pass --yes to run unattended" in refused.stderr
    assert allowed.returncode == 0
    assert served["calls"]["PATCH"]["subscription"] == 2


@pytest.fixture
def signed_in(tmp_path):
    """A stand-in authority over https and the environment a subprocess needs to use it."""
    cert, key, _ = self_signed(tmp_path)
    stand_in = Authority(TENANT, CLIENT, secret=SECRET, refresh_token=REFRESH, tokens=ACCESS)
    with uvicorn_server(stand_in.app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        stand_in.base = url
        yield (
            stand_in,
            {
                **os.environ,
                "REQUESTS_CA_BUNDLE": str(cert),
                "APP_SECRET": SECRET,
                "APP_REFRESH": REFRESH,
                "BULKPATCH_CACHE_DIR": str(tmp_path / "cache"),
            },
        )


@pytest.mark.parametrize("method", ["client_secret", "refresh_token", "token"])
def test_no_secret_appears_in_any_file_or_output(tmp_path, signed_in, method):
    stand_in, env = signed_in
    path = true_up(tmp_path, customers=2, per=3)
    path.write_text(path.read_text() + f"{TENANT},not-a-guid,5,,,\n")  # an invalid row too
    token = ACCESS[0]
    (tmp_path / "bulkpatch.toml").write_text(
        f'[profiles.default]\nauth = "{method}"\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\n'
        f'secret_env = "APP_SECRET"\nrefresh_token_env = "APP_REFRESH"\n'
        f'authority = "{stand_in.base}"\n'
    )
    if method == "token":
        env = {**env, "BULKPATCH_TOKEN": token}
    with server(path, token=token) as (url, _):
        outputs = [
            subprocess.run(
                [sys.executable, "-m", "bulkpatch", *args],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            for args in (
                ["auth", "login", "--verbose"],
                ["auth", "status", "--verbose"],
                ["apply", str(path), "--target", url, "--out", "run", "--verbose", "--json"],
                ["plan", str(path), "--target", url, "--out", "plan", "--verbose"],
            )
        ]
        served = stats(url)
    assert served["applied"] == 6, outputs[2].stderr
    secrets = (SECRET, REFRESH, *ACCESS)
    for result in outputs:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr
    files = [p for folder in ("run", "plan") for p in (tmp_path / folder).rglob("*") if p.is_file()]
    assert len(files) >= 8
    for file in files:
        content = file.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, (file, secret)
    assert json.loads(outputs[2].stdout)["outcomes"]["invalid"] == 1
