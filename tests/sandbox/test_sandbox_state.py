"""The built-in sandbox behaves like a place: its state lives in one file in the user's cache
folder, shared by every run (check, plan, apply, resume); it seeds only ids it has not seen;
`bulkpatch sandbox reset` starts it afresh; two runs at once share it safely."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
from conftest import SAMPLES, ids, results

from bulkpatch.sandbox.store import Store

SAMPLE = SAMPLES / "subscriptions-true-up.csv"
CUSTOMER = ids(1, "place-customer")[0]


def state_file(tmp_path: Path) -> Path:
    """Where the built-in sandbox keeps its state for this test (conftest's own cache)."""
    return tmp_path / "user-cache" / "sandbox.db"


def outcomes(folder: Path) -> dict[str, str]:
    return {r["row"]: r["outcome"] for r in results(folder).to_dicts()}


def seats_sheet(tmp_path: Path, subs: list[str], name: str, header: str = "Quantity") -> Path:
    path = tmp_path / name
    rows = ["Customer ID,Subscription ID," + header, *(f"{CUSTOMER},{s},20" for s in subs)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def held(tmp_path: Path, sub: str) -> dict:
    """What the built-in sandbox holds now for a subscription, read from its state file."""
    return Store(str(state_file(tmp_path))).get("subscriptions", CUSTOMER, sub, time.time())


def test_the_sample_applied_twice_settles_to_no_change_with_its_state_in_the_cache(cli, tmp_path):
    first = cli("apply", SAMPLE, "--out", tmp_path / "one")
    second = cli("apply", SAMPLE, "--out", tmp_path / "two", "--json")
    assert "26 ok, 1 no_change, 8 invalid, 2 failed" in first.stdout
    state = state_file(tmp_path)
    assert f"Its state stays in {state} between runs" in first.stderr
    assert "`bulkpatch sandbox reset` starts it afresh" in first.stderr
    before, after = outcomes(tmp_path / "one"), outcomes(tmp_path / "two")
    assert {row for row, o in before.items() if o == "ok"} == {
        row for row, o in after.items() if o == "no_change"
    } - {row for row, o in before.items() if o == "no_change"}
    assert {r: o for r, o in after.items() if o != "no_change"} == {
        r: o for r, o in before.items() if o in ("invalid", "failed")
    }
    assert json.loads(second.stdout)["calls"]["subscriptions"].get("PATCH", 0) == 0
    assert state.is_file()
    assert not list(tmp_path.glob("one/*.db")) and not list(tmp_path.glob("two/*.db"))


def test_seat_changes_applied_again_are_refused_unless_asked_and_then_add_again(cli, tmp_path):
    sub = ids(1, "place-delta")[0]
    path = seats_sheet(tmp_path, [sub], "delta.csv", header="Seat change")
    path.write_text(path.read_text().replace(",20\n", ",+2\n"), encoding="utf-8")
    first = cli("apply", path, "--out", tmp_path / "one", "--quiet")
    seats = held(tmp_path, sub)["quantity"]
    again = cli("apply", path, "--out", tmp_path / "two", "--quiet")
    forced = cli("apply", path, "--out", tmp_path / "three", "--quiet", "--add-again")
    assert first.returncode == 0 and again.returncode == 2
    assert "its seat changes were already applied" in again.stderr
    assert forced.returncode == 0
    (row,) = results(tmp_path / "three").to_dicts()
    assert row["changes"] == f"Seats: {seats} -> {seats + 2}"  # added to what the first left
    assert held(tmp_path, sub)["quantity"] == seats + 2


def test_a_power_bi_pro_row_is_seeded_as_power_bi_pro_with_the_sheets_seats(cli, tmp_path):
    one, two = ids(2, "place-offer")
    path = tmp_path / "offer.csv"
    path.write_text(
        "Customer ID,Subscription ID,Product,Current seats,Current status,Quantity,Friendly name\n"
        f"{CUSTOMER},{one},Power BI Pro,17,active,,Contoso BI\n"
        f"{CUSTOMER},{two},Power BI Pro,17,active,20,\n",
        encoding="utf-8",
    )
    result = cli("plan", path, "--out", tmp_path / "plan", "--json")
    planned = json.loads(result.stdout)
    plan_csv = results(tmp_path / "plan", "plan.csv").to_dicts()
    changes = {r["Subscription ID"]: r["changes"] for r in plan_csv}
    assert result.returncode == 0 and planned["outcomes"]["conflict"] == 0
    assert changes == {one: "Friendly name: Power BI Pro -> Contoso BI", two: "Quantity: 17 -> 20"}
    body = held(tmp_path, one)
    assert (body["offerName"], body["quantity"], body["status"]) == ("Power BI Pro", 17, "active")


def test_after_a_reset_the_next_apply_shows_the_changes_again(cli, tmp_path):
    first = cli("apply", SAMPLE, "--out", tmp_path / "one", "--quiet", "--json")
    reset = cli("sandbox", "reset")
    gone = not state_file(tmp_path).exists()
    again = cli("sandbox", "reset", "--json")
    fresh = cli("apply", SAMPLE, "--out", tmp_path / "two", "--quiet", "--json")
    state = state_file(tmp_path)
    assert reset.returncode == 0 and gone
    assert reset.stdout == (
        f"Reset the built-in sandbox: removed {state}; the next run seeds it afresh from its "
        "sheet.\n"
    )
    assert json.loads(again.stdout) == {"reset": True, "state": str(state), "existed": False}
    assert json.loads(first.stdout)["outcomes"] == json.loads(fresh.stdout)["outcomes"]
    assert json.loads(fresh.stdout)["outcomes"]["ok"] == 26
    assert set(results(tmp_path / "one").get_column("changes")) == set(
        results(tmp_path / "two").get_column("changes")
    )


def test_undo_applied_to_the_built_in_sandbox_puts_back_what_the_first_run_changed(cli, tmp_path):
    cli("apply", SAMPLE, "--out", tmp_path / "one", "--quiet")
    undone = cli("apply", tmp_path / "one" / "undo.csv", "--out", tmp_path / "undo", "--quiet")
    again = cli("apply", SAMPLE, "--out", tmp_path / "two", "--quiet", "--json")
    before, after = outcomes(tmp_path / "one"), outcomes(tmp_path / "two")
    assert undone.returncode == 0
    assert "25 ok, 1 no_change" in undone.stdout  # a cancellation is final
    assert json.loads(again.stdout)["outcomes"]["ok"] == 25
    assert {r for r, o in before.items() if o == "ok"} - {
        r for r, o in after.items() if o == "ok"
    } == {"24"}  # the cancelled one stays cancelled


def test_new_ids_are_seeded_and_known_ones_keep_their_applied_state(cli, tmp_path):
    old, new = ids(2, "place-new")
    cli("apply", seats_sheet(tmp_path, [old], "first.csv"), "--out", tmp_path / "one")
    second = cli(
        "apply", seats_sheet(tmp_path, [old, new], "second.csv"), "--out", tmp_path / "two"
    )
    rows = {r["Subscription ID"]: r for r in results(tmp_path / "two").to_dicts()}
    assert second.returncode == 0
    assert rows[old]["outcome"] == "no_change"
    assert rows[new]["outcome"] == "ok" and rows[new]["changes"].endswith(" -> 20")
    assert held(tmp_path, old)["quantity"] == held(tmp_path, new)["quantity"] == 20


def apply_process(path: Path, folder: Path, *extra: str) -> subprocess.Popen:
    """`bulkpatch apply` against the built-in sandbox, in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "bulkpatch", "apply", path, "--out", folder, "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_at_once_share_the_state_file_without_locking_each_other_out(tmp_path):
    sheets = [seats_sheet(tmp_path, ids(40, f"place-both-{n}"), f"s{n}.csv") for n in (1, 2)]
    running = [
        apply_process(s, tmp_path / f"run{n}", "--rate", "6000") for n, s in enumerate(sheets)
    ]
    answers = [p.communicate(timeout=120) for p in running]
    assert [p.returncode for p in running] == [0, 0], answers
    assert all("locked" not in err for _, err in answers)
    for n in range(2):
        assert set(results(tmp_path / f"run{n}").get_column("outcome")) == {"ok"}
    subs = [s for n in (1, 2) for s in ids(40, f"place-both-{n}")]
    assert {held(tmp_path, s)["quantity"] for s in subs} == {20}


def wait_for_intents(journal: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and journal.read_text().count('"intent"') >= count:
            return
        time.sleep(0.005)
    raise AssertionError("the run finished before the kill point")


def test_a_killed_run_resumes_on_the_same_state_and_applies_nothing_twice(cli, tmp_path):
    subs = ids(30, "place-resume")
    path = seats_sheet(tmp_path, subs, "resume.csv")
    folder = tmp_path / "run"
    process = apply_process(path, folder, "--rate", "300", "--concurrency", "2")
    wait_for_intents(folder / "journal.jsonl", 8, process)
    process.kill()
    process.wait(10)
    resumed = cli("apply", "--resume", folder, "--quiet")
    again = cli("apply", path, "--out", tmp_path / "again", "--quiet")
    assert resumed.returncode == again.returncode == 0, resumed.stderr
    assert results(folder).filter(pl.col("outcome") == "ok").height == 30
    assert set(results(tmp_path / "again").get_column("outcome")) == {"no_change"}
    store = Store(str(state_file(tmp_path)))
    answered = store.db.execute("select count(*) from replies").fetchone()[0]
    assert answered == 30  # one answer per change: a resent intent was replayed, not applied
    assert {held(tmp_path, s)["quantity"] for s in subs} == {20}


def test_a_state_file_that_cannot_be_opened_stops_with_one_line(cli, tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("BULKPATCH_CACHE_DIR", str(tmp_path / "not-a-folder" / "cache"))
    result = cli("plan", SAMPLE, "--out", tmp_path / "plan", "--quiet")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1] == (
        f"bulkpatch: the built-in sandbox's state {tmp_path / 'not-a-folder' / 'cache'}"
        "/sandbox.db cannot be opened (Not a directory); nothing was sent by this command. "
        "Set BULKPATCH_CACHE_DIR to a folder you can write."
    )


def _open_store(path: str, answers: multiprocessing.Queue) -> None:
    try:
        Store(path)
        answers.put("opened")
    except Exception as exc:  # the answer is what the test looks at
        answers.put(repr(exc))


def test_processes_opening_a_new_state_file_at_once_all_get_it(tmp_path):
    # fork starts 160 processes in seconds; Windows has only spawn (slower, the same check)
    forked = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    for attempt in range(40):  # the race is narrow: 40 new files, 4 processes each
        path, answers = str(tmp_path / f"state-{attempt}.db"), forked.Queue()
        openers = [forked.Process(target=_open_store, args=(path, answers)) for _ in range(4)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert [answers.get(timeout=5) for _ in openers] == ["opened"] * 4
