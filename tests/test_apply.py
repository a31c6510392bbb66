"""apply: every outcome, full-object safety, retries, throttling, 202s, kill -9 and resume,
plan-then-apply and undo, against the sandbox in-process and as a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
from conftest import NEXT_TERM_PRODUCT, SAMPLES, uvicorn_server

from bulkpatch.apply import Engine, Settings
from bulkpatch.check import check
from bulkpatch.errors import InputError
from bulkpatch.journal import Journal
from bulkpatch.load import load
from bulkpatch.plan import changes
from bulkpatch.run import apply_file, plan_file
from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, SeedSpec

FAST = Settings(rate=60_000, concurrency=8, backoff=0.01)
HEAD = ["Customer ID", "Subscription ID", "Quantity", "Auto renew", "Friendly name", "Status"]


def ids(n: int, salt: str) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}-{i}")) for i in range(n)]


def true_up(tmp_path: Path, customers: int = 3, per: int = 4, name: str = "true-up.csv") -> Path:
    """A sheet of changes: seats, auto-renew, renames and suspensions over a few customers."""
    rows = [HEAD]
    for c, customer in enumerate(ids(customers, "customer")):
        for s, sub in enumerate(ids(per, f"sub-{c}")):
            kind = (c * per + s) % 4
            rows.append(
                [
                    customer,
                    sub,
                    str(10 + s) if kind in (0, 3) else "",
                    "no" if kind == 1 else "",
                    f"Renamed {s}" if kind == 2 else "",
                    "suspended" if kind == 3 and s == 3 else "",
                ]
            )
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


@contextmanager
def server(sheet: Path, **config):
    """A real uvicorn sandbox on 127.0.0.1 seeded from `sheet`."""
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec(sheets=[sheet]), **config))
    with uvicorn_server(sandbox.app) as url:
        yield url, sandbox


def stats(url: str) -> dict:
    return httpx.get(f"{url}/_sandbox/stats", timeout=10).json()


def current(url: str, customer: str, sub: str) -> dict:
    return httpx.get(
        f"{url}/v1/customers/{customer}/subscriptions/{sub}",
        timeout=10,
        headers={"Authorization": "Bearer t"},
    ).json()


def results(folder: Path, name: str = "results.csv") -> pl.DataFrame:
    return pl.read_csv(folder / name, infer_schema=False)


def journal_calls(folder: Path) -> list[dict]:
    lines = (folder / "journal.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "call"]


def test_sample_with_mistakes_tells_the_whole_story_in_one_sheet(cli, tmp_path):
    result = cli("apply", SAMPLES / "subscriptions-true-up.csv", "--out", tmp_path / "run")
    assert result.returncode == 1
    assert "Using the built-in sandbox" in result.stderr
    assert (
        "37 rows to the built-in sandbox: 26 ok, 1 no change, 8 invalid, 2 failed" in result.stdout
    )
    table = results(tmp_path / "run")
    assert table.columns[-10:] == [
        "row",
        "outcome",
        "http_status",
        "error_code",
        "error_message",
        "changes",
        "request_id",
        "correlation_id",
        "attempts",
        "elapsed_ms",
    ]
    assert table.columns[:3] == ["Customer", "Customer ID", "Subscription ID"]
    by_row = {r["row"]: r for r in table.to_dicts()}
    assert by_row["2"]["outcome"] == "ok" and by_row["2"]["changes"] == "quantity: 12 -> 15"
    assert by_row["2"]["http_status"] == "200" and by_row["2"]["request_id"]
    assert by_row["4"]["outcome"] == "invalid"
    assert by_row["4"]["error_message"] == 'Quantity: "5.5" is not a whole number'
    assert (by_row["11"]["outcome"], by_row["11"]["error_code"]) == ("failed", "800091")
    assert (by_row["30"]["outcome"], by_row["30"]["error_code"]) == ("failed", "2011")
    assert by_row["19"]["outcome"] == "no_change"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["calls"]["subscriptions"] == {"LIST": 4, "PATCH": 26}
    assert summary["throttled_429"] == 0 and summary["elapsed_seconds"] > 0


def test_clean_workbook_applies_with_exit_0_and_orders_too(cli, tmp_path):
    result = cli("apply", SAMPLES / "month-end.xlsx", "--out", tmp_path / "run", "--json")
    summary = json.loads(result.stdout)
    assert result.returncode == 0
    assert summary["outcomes"]["ok"] == 20
    assert summary["calls"]["orders"] == {"GET": 5, "PATCH": 5}
    orders = results(tmp_path / "run", "results-orders.csv")
    assert set(orders.get_column("changes")) == {
        "billingCycle: monthly -> annual",
        "billingCycle: annual -> monthly",
        "status: completed -> cancelled",
    }


def test_auto_renew_and_next_term_instructions_survive_a_quantity_change(tmp_path):
    path = true_up(tmp_path, customers=1, per=1)
    customer, sub = ids(1, "customer")[0], ids(1, "sub-0")[0]
    instructions = {
        "product": NEXT_TERM_PRODUCT,
        "quantity": 3,
        "customTermEndDate": None,
    }
    with server(path) as (url, sandbox):
        body = sandbox.store.get("subscriptions", customer, sub, 0)
        body.update(autoRenewEnabled=True, scheduledNextTermInstructions=instructions)
        sandbox.store.put_many("subscriptions", [(customer, body)])
        run = apply_file(path, target=url, out=tmp_path / "run", settings=FAST)
        after = current(url, customer, sub)
    assert run.counts()["ok"] == 1
    assert after["quantity"] == 10
    assert after["autoRenewEnabled"] is True
    assert after["scheduledNextTermInstructions"] == instructions


def test_every_retry_of_a_change_carries_the_same_request_id_in_process(tmp_path):
    path = true_up(tmp_path, customers=2, per=5)
    sandbox = Sandbox(
        SandboxConfig(
            seed=SeedSpec(sheets=[path]),
            fail_share=0.3,
            drop_share=0.15,
            conflict_share=0.1,
            random_seed=3,
        )
    )
    made, _ = changes(check(load(path)[0]), "run")
    journal = Journal(tmp_path)

    async def go():
        async with httpx.AsyncClient(
            transport=SandboxTransport(sandbox.app),
            base_url="http://127.0.0.1",
            headers={"Authorization": "Bearer t"},
        ) as client:
            return await Engine(
                client, Settings(rate=60_000, attempts=12, backoff=0.001), journal
            ).run(made)

    done = asyncio.run(go())
    journal.close()
    assert {r.outcome for r in done.values()} == {"ok"}
    patches = defaultdict(set)
    for call in journal_calls(tmp_path):
        if call["method"] == "PATCH":
            patches[call["path"]].add(call["request_id"])
    assert len(patches) == len(made)
    assert all(len(request_ids) == 1 for request_ids in patches.values())
    assert {next(iter(patches[c.path])) for c in made} == {c.request_id for c in made}
    assert sum(sandbox.counts[f"fault {f}"] for f in ("fail", "drop", "conflict")) > 3
    assert set(sandbox.applied_per_resource.values()) == {1}
    assert len(sandbox.applied_per_resource) == len(made)


def test_retry_after_is_honoured_by_every_worker(tmp_path):
    path = true_up(tmp_path, customers=1, per=8)
    with server(path, rate_limit=(3, 1.0)) as (url, _):
        run = apply_file(
            path, target=url, out=tmp_path / "run", settings=Settings(rate=60_000, concurrency=1)
        )
        served = stats(url)
    assert run.counts()["ok"] == 8
    assert run.summary["throttled_429"] == served["throttled"] > 0
    calls = journal_calls(tmp_path / "run")
    for before, after in itertools.pairwise(calls):
        if before["status"] == 429:
            waited = datetime.fromisoformat(after["at"]) - datetime.fromisoformat(before["at"])
            assert waited.total_seconds() >= 1.0  # Retry-After: 1, the only call in flight


def test_202_polling_ends_ok_and_a_slow_one_stays_accepted(tmp_path):
    path = true_up(tmp_path, customers=1, per=2)
    with server(path, accepted_share=1.0, accepted_delay=0.3) as (url, _):
        run = apply_file(path, target=url, out=tmp_path / "quick", settings=FAST)
        assert stats(url)["accepted"] == 2
    assert run.counts()["ok"] == 2
    assert run.summary["calls"]["subscriptions"]["POLL"] >= 2
    with server(path, accepted_share=1.0, accepted_delay=60) as (url, _):
        slow = apply_file(
            path,
            target=url,
            out=tmp_path / "slow",
            settings=Settings(rate=60_000, poll_timeout=0.6),
        )
    assert slow.counts()["accepted"] == 2
    assert set(results(tmp_path / "slow").get_column("http_status")) == {"202"}


def test_a_streak_of_401_stops_the_run_and_leaves_the_rest_not_sent(cli, tmp_path):
    path = true_up(tmp_path, customers=8, per=1)
    with server(path, token="the-right-token") as (url, _):
        result = cli(
            "apply",
            path,
            "--target",
            url,
            "--out",
            tmp_path / "run",
            "--json",
            "--rate",
            "60000",
            "--concurrency",
            "1",
        )
        served = stats(url)
    summary = json.loads(result.stdout)
    assert result.returncode == 1
    assert "refused the token 5 times in a row" in summary["stopped"]
    # issue 11 point 10: a read refused for the token never reached Partner Center's business
    # logic, so those 5 rows are `not_sent` too (they were `failed` before), like the 3 after
    assert summary["outcomes"]["failed"] == 0 and summary["outcomes"]["not_sent"] == 8
    assert served["calls"]["GET"]["subscription"] == 5 and "PATCH" not in served["calls"]
    assert f"Resume with: bulkpatch apply --resume {tmp_path / 'run'}" in result.stderr
    unsent = results(tmp_path / "run").filter(pl.col("outcome") == "not_sent")
    assert unsent.get_column("error_message")[0].startswith("not sent: Partner Center refused")


def start_apply(path: Path, url: str, folder: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulkpatch",
            "apply",
            str(path),
            "--target",
            url,
            "--out",
            str(folder),
            "--quiet",
            "--rate",
            "1500",
            "--concurrency",
            "4",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_journal(folder: Path, lines: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    journal = folder / "journal.jsonl"
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= lines:
            return
        time.sleep(0.005)
    raise AssertionError("the run finished before the kill point")


@pytest.mark.parametrize("kill_after", [2, 9, 20, 33])
def test_kill_9_at_any_moment_then_resume_applies_every_change_once(cli, tmp_path, kill_after):
    path = true_up(tmp_path, customers=4, per=6)
    folder = tmp_path / "run"
    with server(path, latency_ms=15) as (url, _):
        process = start_apply(path, url, folder)
        wait_for_journal(folder, kill_after, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        resumed = cli("apply", "--resume", folder, "--quiet", "--rate", "60000")
        served = stats(url)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    table = results(folder)
    assert set(table.get_column("outcome")) <= {"ok", "no_change"}
    changed = table.filter(pl.col("outcome") == "ok").height
    assert served["applied"] == len(served["applied_per_resource"]) == 24
    assert set(served["applied_per_resource"].values()) == {1}
    assert changed <= 24


def test_ctrl_c_stops_cleanly_prints_the_resume_command_and_resume_finishes(cli, tmp_path):
    path = true_up(tmp_path, customers=4, per=6)
    folder = tmp_path / "run"
    with server(path, latency_ms=15) as (url, _):
        process = start_apply(path, url, folder, "--rate", "600")
        wait_for_journal(folder, 6, process)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
        table = results(folder)
        resumed = cli("apply", "--resume", folder, "--quiet", "--rate", "60000")
        served = stats(url)
    assert process.returncode == 130
    assert f"Resume with: bulkpatch apply --resume {folder}" in err
    assert "not_sent" in set(table.get_column("outcome"))
    assert resumed.returncode == 0
    assert set(results(folder).get_column("outcome")) <= {"ok", "no_change"}
    assert set(served["applied_per_resource"].values()) == {1}


def test_plan_then_apply_sends_exactly_the_plan_and_refuses_a_changed_sheet(tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    with server(path) as (url, _):
        planned = plan_file(path, target=url, out=tmp_path / "plan", settings=FAST)
        reads = stats(url)["calls"]
        entries = [
            json.loads(line) for line in (tmp_path / "plan" / "plan.jsonl").read_text().splitlines()
        ]
        run = apply_file(plan_dir=tmp_path / "plan", settings=FAST)
        served = stats(url)
    assert reads == {"GET": {"subscriptions": 2}}  # one list call per customer, nothing sent
    to_send = {e["change"]["request_id"] for e in entries if e["outcome"] == "change"}
    assert planned.outcomes["change"] == len(to_send) == 8
    sent = {c["request_id"] for c in journal_calls(tmp_path / "plan") if c["method"] == "PATCH"}
    assert sent == to_send
    assert served["calls"]["PATCH"]["subscription"] == 8 and run.counts()["ok"] == 8
    assert entries[0]["body"]["id"] and entries[0]["diffs"]
    plan_csv = results(tmp_path / "plan", "plan.csv")
    assert set(plan_csv.get_column("outcome")) == {"change"}
    assert (tmp_path / "plan" / "plan.xlsx").exists()
    assert (tmp_path / "plan" / "plan-seats.csv").exists()
    path.write_text(path.read_text() + f"{ids(1, 'customer')[0]},{uuid.uuid4()},5,,,\n")
    with pytest.raises(InputError, match="has changed"):
        apply_file(plan_dir=tmp_path / "plan", settings=FAST)


def test_undo_sheet_applied_afterwards_restores_what_was_read(tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    pairs = [(c, s) for i, c in enumerate(ids(2, "customer")) for s in ids(4, f"sub-{i}")]
    fields = ("quantity", "autoRenewEnabled", "friendlyName", "status")
    with server(path) as (url, _):
        before = {s: {f: current(url, c, s)[f] for f in fields} for c, s in pairs}
        first = apply_file(path, target=url, out=tmp_path / "run", settings=FAST)
        changed = {s: {f: current(url, c, s)[f] for f in fields} for c, s in pairs}
        undo = apply_file(
            tmp_path / "run" / "undo.csv", target=url, out=tmp_path / "undo", settings=FAST
        )
        after = {s: {f: current(url, c, s)[f] for f in fields} for c, s in pairs}
    assert first.counts()["ok"] == 8 and changed != before
    assert undo.counts()["ok"] == 8
    assert after == before


def test_targets_refuse_plain_http_off_this_machine_and_unconfirmed_production(cli, tmp_path):
    path = true_up(tmp_path, customers=1, per=1)
    insecure = cli("apply", path, "--target", "http://partner.example.com")
    assert insecure.returncode == 2 and "plain http is only allowed" in insecure.stderr
    env_token = {**os.environ, "BULKPATCH_TOKEN": "not-a-real-token"}
    live = subprocess.run(
        [sys.executable, "-m", "bulkpatch", "apply", str(path), "--out", str(tmp_path / "live")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_token,
        stdin=subprocess.DEVNULL,
    )
    assert live.returncode == 2
    assert "refusing to change production without a terminal" in live.stderr
    assert "not-a-real-token" not in live.stdout + live.stderr


def test_an_unlimited_rate_still_finishes(cli, tmp_path):
    """A rate far above anything needed must not make the pacer spin (a hang guard, not a
    speed test: the CLI fixture's timeout only catches a run that never ends)."""
    path = true_up(tmp_path, customers=2, per=5)
    with server(path) as (url, _):
        result = cli(
            "apply",
            path,
            "--target",
            url,
            "--out",
            tmp_path / "run",
            "--rate",
            "1000000000",
            "--json",
            "--quiet",
        )
    assert result.returncode == 0
    assert json.loads(result.stdout)["outcomes"]["ok"] == 10


def test_an_unreachable_service_stops_the_run_instead_of_grinding_on(tmp_path):
    path = true_up(tmp_path, customers=8, per=1)
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    run = apply_file(
        path,
        target=closed,
        out=tmp_path / "run",
        settings=Settings(rate=60_000, concurrency=1, backoff=0.001),
    )
    assert "could not be reached 5 times in a row" in run.summary["stopped"]
    assert run.counts()["failed"] == 5 and run.counts()["not_sent"] == 3
    failed = results(tmp_path / "run").filter(pl.col("outcome") == "failed")
    assert failed.get_column("error_message")[0].startswith("reading it failed: no answer after 6")


def in_terminal(args: list[str], cwd: Path) -> str:
    """What the CLI writes to stderr when stderr is a terminal (a real pseudo-terminal)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkpatch", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    with contextlib.suppress(OSError):  # the terminal closes when the process ends
        while chunk := os.read(leader, 4096):
            screen += chunk
    process.wait(60)
    os.close(leader)
    return screen.decode(errors="replace")


@pytest.mark.parametrize(("command", "unit"), [("plan", "read"), ("apply", "change")])
def test_plan_and_apply_show_progress_in_a_terminal_unless_quiet(tmp_path, command, unit):
    path = true_up(tmp_path, customers=3, per=4)
    shown = in_terminal([command, str(path), "--target", "sandbox", "--out", "a"], tmp_path)
    quiet = in_terminal(
        [command, str(path), "--target", "sandbox", "--out", "b", "--quiet"], tmp_path
    )
    assert "12/12 [" in shown and f"{unit}/s" in shown
    assert "12/12 [" not in quiet and "built-in sandbox" in quiet
