"""apply: every outcome, full-object safety, retries, throttling, 202s, kill -9 and resume,
plan-then-apply and undo, against the sandbox in-process and as a real uvicorn server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from datetime import datetime

import httpx
import polars as pl
from conftest import (
    FAST,
    NEXT_TERM_PRODUCT,
    SAMPLES,
    current,
    ids,
    journal_calls,
    results,
    server,
    stats,
    true_up,
)

from bulkpatch.apply.engine import Engine
from bulkpatch.check.checker import check
from bulkpatch.commands.apply import apply_file
from bulkpatch.load.reader import load
from bulkpatch.plan.changes import changes
from bulkpatch.runs.journal import Journal
from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, SeedSpec
from bulkpatch.settings import Settings


def test_sample_with_mistakes_tells_the_whole_story_in_one_sheet(cli, tmp_path):
    result = cli("apply", SAMPLES / "subscriptions-true-up.csv", "--out", tmp_path / "run")
    assert result.returncode == 1
    assert "Using the built-in sandbox" in result.stderr
    assert (
        "37 rows to the built-in sandbox: 26 ok, 1 no_change, 8 invalid, 2 failed" in result.stdout
    )
    table = results(tmp_path / "run")
    assert table.columns[13:18] == ["row", "outcome", "error_message", "changes", "Quantity before"]
    assert table.columns[-7:] == [  # for a support ticket: last, and out of the printed area
        "http_status",
        "error_code",
        "request_id",
        "correlation_id",
        "attempts",
        "elapsed_ms",
        "Quoted by bulkpatch",  # the sample's =HYPERLINK note is quoted: its record comes last
    ]
    assert table.columns[:3] == ["Customer", "Customer ID", "Subscription ID"]
    by_row = {r["row"]: r for r in table.to_dicts()}
    assert by_row["2"]["outcome"] == "ok" and by_row["2"]["changes"] == "Quantity: 12 -> 15"
    seats = table.filter(pl.col("outcome") == "ok").select(
        pl.col("Quantity after").cast(pl.Int64) - pl.col("Quantity before").cast(pl.Int64)
    )
    assert seats.to_series().sum() > 0  # seat changes sum as numbers
    assert by_row["2"]["http_status"] == "200" and by_row["2"]["request_id"]
    assert by_row["4"]["outcome"] == "invalid"
    assert by_row["4"]["error_message"] == 'Quantity: "5.5" is not a whole number'
    assert (by_row["11"]["outcome"], by_row["11"]["error_code"]) == ("failed", "800091")
    assert (by_row["30"]["outcome"], by_row["30"]["error_code"]) == ("failed", "2011")
    assert by_row["19"]["outcome"] == "no_change"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # one scheduled eligibility read: the row whose renewal SKU changes (issue 25)
    assert summary["calls"]["subscriptions"] == {"ELIGIBILITY": 1, "LIST": 4, "PATCH": 26}
    assert summary["throttled_429"] == 0 and summary["elapsed_seconds"] > 0


def test_clean_workbook_applies_with_exit_0_and_orders_too(cli, tmp_path):
    result = cli("apply", SAMPLES / "month-end.xlsx", "--out", tmp_path / "run", "--json")
    summary = json.loads(result.stdout)
    assert result.returncode == 0
    assert summary["outcomes"]["ok"] == 20
    assert summary["calls"]["orders"] == {"GET": 5, "PATCH": 5}
    orders = results(tmp_path / "run", "results-orders.csv")
    assert set(orders.get_column("changes")) == {
        "Billing cycle: monthly -> annual",
        "Billing cycle: annual -> monthly",
        "Status: completed -> cancelled",
    }
    assert orders.get_column("Billing cycle after").drop_nulls().to_list().count("annual") == 4


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
    journal = Journal(tmp_path / "journal.jsonl")

    async def go():
        async with httpx.AsyncClient(
            transport=SandboxTransport(sandbox.app),
            base_url="http://127.0.0.1",
            headers={"Authorization": "Bearer t"},
        ) as client:
            # A call meets a fault 55% of the time, in an order the event loop decides: 30
            # attempts make exhausting them (0.55 ** 30) never happen, whatever the order.
            return await Engine(
                client, Settings(rate=60_000, attempts=30, backoff=0.001), journal
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
    assert run.summary()["throttled_429"] == served["throttled"] > 0
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
    assert run.summary()["calls"]["subscriptions"]["POLL"] >= 2
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
    assert (
        result.returncode == 3
    )  # stopped by a fault outside the sheet (README, exit codes), was 1
    assert "refused the token 5 times in a row" in summary["stopped"]
    # issue 11 point 10: a read refused for the token never reached Partner Center's business
    # logic, so those 5 rows are `not_sent` too (they were `failed` before), like the 3 after
    assert summary["outcomes"]["failed"] == 0 and summary["outcomes"]["not_sent"] == 8
    assert served["calls"]["GET"]["subscription"] == 5 and "PATCH" not in served["calls"]
    assert f"Resume with: bulkpatch apply --resume {tmp_path / 'run'}" in result.stderr
    unsent = results(tmp_path / "run").filter(pl.col("outcome") == "not_sent")
    assert unsent.get_column("error_message")[0].startswith("not sent: Partner Center refused")


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
    assert "could not be reached 5 times in a row" in run.summary()["stopped"]
    # a read with no answer sent nothing: `not_sent` (was `failed`), so a resume sends it
    assert run.counts()["failed"] == 0 and run.counts()["not_sent"] == 8
    unsent = results(tmp_path / "run").get_column("error_message").to_list()
    assert unsent[0].startswith("not sent: Partner Center could not be reached (no answer after 6")


def test_rows_that_did_not_go_come_back_as_a_sheet_to_fix_and_apply_as_it_is(cli, tmp_path):
    sample = SAMPLES / "subscriptions-true-up.csv"
    with server(sample) as (url, _):
        first = cli("apply", sample, "--target", url, "--out", tmp_path / "one", "--quiet")
        fix = tmp_path / "one" / "to-fix.csv"
        assert (
            f"10 rows did not go (2 failed, 8 invalid): they are in {fix}; fix the" in first.stdout
        )
        rows = pl.read_csv(fix, infer_schema=False)
        source = pl.read_csv(sample, infer_schema=False)
        # the input's columns, no row/outcome; then why, and check's issue code for it
        assert rows.columns == [*source.columns, "Reason", "Reason code"]
        assert rows.height == 10  # 8 invalid, 2 failed
        half = rows.get_column("Quantity") == "5.5"
        assert rows.filter(half).get_column("Reason").item() == (
            'Quantity: "5.5" is not a whole number'
        )
        assert rows.filter(half).get_column("Reason code").item() == "integer.not_whole"
        codes = rows.get_column("Reason code").fill_null("").to_list()
        assert codes.count("") == 2  # the two Partner Center refused: no check code
        edited = rows.with_columns(
            pl.when(half).then(pl.lit("6")).otherwise(pl.col("Quantity")).alias("Quantity")
        )
        edited.write_csv(fix, include_bom=True)
        again = cli("apply", fix, "--target", url, "--out", tmp_path / "two", "--quiet")
    assert "10 rows to " in again.stdout and "1 ok, 7 invalid, 2 failed" in again.stdout
    second = pl.read_csv(tmp_path / "two" / "to-fix.csv", infer_schema=False)
    assert second.columns == rows.columns  # its Reason replaced, not repeated
    assert second.height == 9


def test_a_stop_sends_no_write_that_was_still_waiting_for_its_turn(tmp_path):
    """Stop (the page's button, Ctrl-C) means nothing new goes out: writes that wait for
    their slot in the pace are left for a resume, not sent over the next seconds."""
    import threading
    import time

    from bulkpatch.apply.session import Watch

    watch, stopped_at = Watch(), []

    def press_stop_after_the_first_change() -> None:
        for _ in range(6000):  # a bound, not a timing
            if watch.figures()["done"]:
                stopped_at.append(datetime.now().astimezone())
                watch.stop()
                return
            time.sleep(0.01)

    pressing = threading.Thread(target=press_stop_after_the_first_change)
    pressing.start()
    sample = SAMPLES / "subscriptions-true-up.csv"
    run = apply_file(sample, out=tmp_path / "run", progress=watch, rate=120, concurrency=8)
    pressing.join()
    lines = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").open()]
    late = [
        e
        for e in lines
        if e["event"] == "call"
        and e["method"] == "PATCH"
        and datetime.fromisoformat(e["at"]) > stopped_at[0]
    ]
    assert len(late) <= 1  # at most the one already on its way when Stop was pressed
    assert run.interrupted and run.counts()["not_sent"] >= 20
