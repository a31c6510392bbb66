"""What counts as production: every spelling of a live target meets the live run's guard.

Nothing here reaches the network: a run meant for Microsoft's hosts is refused before its
first call, and every subprocess has a tripwire on 127.0.0.1 as its proxy, so a call that did
leave would land there (and be counted) rather than on the internet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from conftest import FAST, ids, live_profile, run_in_terminal, server, stats, true_up

from bulkpatch.commands.apply import apply_file
from bulkpatch.errors import InputError
from bulkpatch.network.target import resolve
from bulkpatch.report.stamp import place
from bulkpatch.settings import Profile, load_profile
from bulkpatch.ui.jobs import Jobs, left_to_send
from bulkpatch.ui.shown import banner

FULL_STOP = "\uff0e"  # a full-width dot: the client reads it as a dot
PRODUCTION_SPELLINGS = [
    "production",
    "https://api.partnercenter.microsoft.com",
    "https://API.partnercenter.microsoft.com/",
    "HTTPS://Api.PartnerCenter.Microsoft.COM",
    "https://api.partnercenter.microsoft.com:443",
    "https://api.partnercenter.microsoft.com.",
    "https://api.partnercenter.microsoft.com.:443/v1",
    "https://api.partnercenter.microsoft.com/v1/",
    "https://api.partnercenter.microsoft.com:8443",
    f"https://api{FULL_STOP}partnercenter{FULL_STOP}microsoft{FULL_STOP}com",
    "https://xn--pi-uia.partnercenter.microsoft.com",  # punycode (äpi): still Microsoft's domain
    "https://partner.partnercenterapi.microsoftonline.cn",  # operated by 21Vianet
    "https://PARTNER.partnercenterapi.microsoftonline.cn./",
    "https://api.partner.microsoft.com",  # pricing and referrals
]
# Addresses that are not Partner Center: look-alikes, another domain, an IP address.
ELSEWHERE = [
    "https://api.partnercenter.microsoft.com.example.net",
    "https://partnercenter-microsoft.com",
    "https://api.partnercenter.micr\u043esoft.com",  # a Cyrillic o
    "https://api.partnercenter.microsoftonline.de",  # not on Microsoft's page of endpoints
    "https://20.190.151.70",
    "https://[2603:1030::1]",
]
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@contextmanager
def tripwire() -> Iterator[tuple[dict[str, str], list[bytes]]]:
    """A proxy on 127.0.0.1 that answers nothing and keeps the first bytes of every
    connection, and the environment that makes a subprocess send all its calls through it."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    seen.append(conn.recv(200))
                except OSError:
                    seen.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXIES}
    env |= {name.upper(): proxy for name in PROXIES[:3]} | {"BULKPATCH_TOKEN": "any"}
    try:
        yield env, seen
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def bulkpatch(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The real CLI, unattended: its stdin is no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "bulkpatch", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("spelling", PRODUCTION_SPELLINGS)
def test_every_spelling_of_partner_center_is_production(spelling, monkeypatch):
    monkeypatch.setenv("BULKPATCH_TOKEN", "any")
    target = resolve(spelling, Profile())
    where_, words = place(target)
    assert target.live and where_ == "production"
    assert words.startswith("PRODUCTION: Partner Center itself (")


@pytest.mark.parametrize("spelling", ELSEWHERE)
def test_other_addresses_are_not_partner_center_and_say_so(spelling, monkeypatch):
    monkeypatch.setenv("BULKPATCH_TOKEN", "any")
    target = resolve(spelling, Profile())
    assert not target.live
    assert place(target) == ("url", f"{spelling} (not Partner Center's production address)")


@pytest.mark.parametrize("spelling", PRODUCTION_SPELLINGS[1:])
def test_an_unattended_run_to_any_spelling_is_refused_before_any_call(tmp_path, spelling):
    path = true_up(tmp_path, customers=1, per=2)
    with tripwire() as (env, seen):
        refused = bulkpatch(
            ["apply", str(path), "--target", spelling, "--out", "run"], tmp_path, env
        )
    assert refused.returncode == 2, refused.stderr
    assert "refusing to change production without a terminal" in refused.stderr
    assert "pass --yes to run unattended" in refused.stderr
    assert seen == []  # not one connection, even to the proxy


@pytest.mark.parametrize(
    "spelling",
    [
        "https://API.partnercenter.microsoft.com/",
        f"https://api{FULL_STOP}partnercenter{FULL_STOP}microsoft{FULL_STOP}com",
    ],
)
def test_with_yes_the_same_run_goes_to_partner_center_itself(tmp_path, spelling):
    """The other side of the refusals above: given --yes, the run calls Microsoft's host (here
    its calls land on the tripwire, which answers nothing, so the test stops the run)."""
    path = true_up(tmp_path, customers=1, per=2)
    args = ["apply", str(path), "--target", spelling, "--out", "run", "--yes"]
    with tripwire() as (env, seen):
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkpatch", *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not seen and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.kill()
        process.wait(10)
    assert seen and seen[0].startswith(b"CONNECT api.partnercenter.microsoft.com:443 ")


def test_a_refused_run_folder_shows_production_on_the_page_and_its_plan_is_refused_too(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # no bulkpatch.toml: production is Partner Center's own
    path = true_up(tmp_path, customers=1, per=2)
    spelling = "https://API.partnercenter.microsoft.com.:443/"
    with tripwire() as (env, seen):
        first = bulkpatch(["apply", str(path), "--target", spelling, "--out", "run"], tmp_path, env)
        again = bulkpatch(["apply", "--plan", "run", "--out", "again"], tmp_path, env)
    assert first.returncode == 2 and again.returncode == 2
    assert "pass --yes to run unattended" in again.stderr
    assert seen == []
    job = Jobs(tmp_path / "page").reopened(tmp_path / "run")
    shown = banner(job)
    assert shown is not None and shown["where"] == "production"
    said = "PRODUCTION: Partner Center itself (https://API.partnercenter.microsoft.com.:443)"
    assert shown["words"] == said
    assert left_to_send(tmp_path / "run") == {"real": True, "pending": 2}


LOOPBACK_SPELLINGS = [
    "sandbox",
    "{url}",
    "{url}/",
    "HTTP://LOCALHOST:{port}/",
    "http://localhost:{port}/v1",
]


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_a_sandbox_on_this_machine_is_not_production(spelling):
    url = "http://127.0.0.1:8765"
    target = resolve(spelling.format(url=url, port=8765), Profile())
    assert not target.live and place(target)[0] == "sandbox"
    assert place(target)[1].startswith("SANDBOX ")


def test_an_unattended_run_to_a_local_sandbox_is_not_asked_anything(tmp_path):
    path = true_up(tmp_path, customers=1, per=2)
    with server(path) as (url, _), tripwire() as (env, seen):
        port = url.rsplit(":", 1)[1]
        env = {**env, "NO_PROXY": "127.0.0.1,localhost"}  # the sandbox is reached directly
        done = bulkpatch(
            ["apply", str(path), "--target", f"HTTP://LOCALHOST:{port}/", "--out", "run"],
            tmp_path,
            env,
        )
        served = stats(url)
    assert done.returncode == 0, done.stderr
    assert served["calls"]["PATCH"]["subscription"] == 2
    assert seen == []


@pytest.mark.parametrize("spelling", ["HTTP://LOCALHOST:{port}/", "http://127.0.0.1:{port}/"])
def test_the_profiles_production_address_spelled_otherwise_still_asks(tmp_path, spelling):
    path = true_up(tmp_path, customers=1, per=2)
    with server(path) as (url, _):
        live_profile(tmp_path, url)  # production is this sandbox, as 127.0.0.1
        typed = spelling.format(port=url.rsplit(":", 1)[1])
        args = ["apply", str(path), "--target", typed, "--out", "run"]
        returncode, screen = run_in_terminal(args, tmp_path, "n")
        served = stats(url)
    assert f"About to change {typed.rstrip('/')}:" in screen
    assert returncode == 2
    assert "PATCH" not in served["calls"]


def test_the_report_of_a_run_to_a_production_spelling_is_red(tmp_path):
    path = true_up(tmp_path, customers=1, per=2)
    with server(path) as (url, _):
        live_profile(tmp_path, url)
        typed = f"HTTP://LOCALHOST:{url.rsplit(':', 1)[1]}/"
        env = {**os.environ, "BULKPATCH_TOKEN": "any"}
        done = bulkpatch(
            ["apply", str(path), "--target", typed, "--out", "run", "--yes"], tmp_path, env
        )
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(tmp_path / "run" / "results.xlsx")
    assert book["Summary"]["A1"].value == f"PRODUCTION: Partner Center itself ({typed.rstrip('/')})"
    assert book["Summary"]["A1"].fill.fgColor.rgb.endswith("C00000")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://api.partnercenter.microsoft.com", "plain http is only allowed to this machine"),
        ("http://localhost.:8765", "plain http is only allowed to this machine"),
        (  # full-width letters: no host name the client can connect to
            "https://\uff21\uff30\uff29.partnercenter.microsoft.com",
            "is not sandbox, production or an http(s) URL",
        ),
        ("https://admin:hunter2@api.partnercenter.microsoft.com", "user name or password"),
        ("ftp://api.partnercenter.microsoft.com", "is not sandbox, production or an http(s) URL"),
    ],
)
def test_addresses_bulkpatch_will_not_send_to_are_refused_in_words(tmp_path, url, says):
    path = true_up(tmp_path, customers=1, per=2)
    with tripwire() as (env, seen):
        refused = bulkpatch(["apply", str(path), "--target", url, "--out", "run"], tmp_path, env)
    assert refused.returncode == 2 and says in refused.stderr
    assert "Traceback" not in refused.stderr and "hunter2" not in refused.stderr
    assert not (tmp_path / "run").exists() and seen == []


def test_a_user_name_in_the_profiles_address_is_refused_too(monkeypatch):
    monkeypatch.setenv("BULKPATCH_TOKEN", "any")
    profile = Profile(values={"api_url": "https://me:pw@api.partnercenter.microsoft.com"})
    with pytest.raises(InputError, match="api_url: a URL with a user name or password") as raised:
        resolve("production", profile)
    assert "pw@" not in str(raised.value)


def test_seats_added_in_production_are_not_added_again_under_another_spelling(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("BULKPATCH_TOKEN", "any")
    customer, sub = ids(1, "guard-customer")[0], ids(1, "guard-sub")[0]
    path = tmp_path / "delta.csv"
    path.write_text(f"Customer ID,Subscription ID,Seat change\n{customer},{sub},+2\n")
    with server(path) as (url, _):
        live_profile(tmp_path, url)  # production is this sandbox
        profile = load_profile(None, tmp_path)
        port = url.rsplit(":", 1)[1]

        def apply(target: str | None, out: str):
            return apply_file(
                path, target=target, out=tmp_path / out, settings=FAST, profile=profile, confirm=yes
            )

        def yes(prepared, preview):
            return True

        first = apply("production", "one")
        for n, target in enumerate(
            [None, f"HTTP://LOCALHOST:{port}/", url + "/"]
        ):  # None: signed in
            with pytest.raises(InputError, match="its seat changes were already applied"):
                apply(target, f"again-{n}")
        served = stats(url)
    assert first.counts()["ok"] == 1
    assert served["calls"]["PATCH"]["subscription"] == 1
