"""The run folder: a run killed (kill -9), stopped (Ctrl-C) or refused by the disk at any
moment is finished by `apply --resume`, nothing applied twice and every change undoable; one
process per folder; a finished run is never overwritten; unattended runs show progress."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from conftest import FAST, OWN_GROUP, interrupt, posix_only, results, server, stats, true_up

from bulkpatch.commands.apply import apply_file


def start_apply(path: Path, url: str, folder: Path, *extra: str, limit=None) -> subprocess.Popen:
    """`bulkpatch apply` in its own process (`limit`: run in it before it starts)."""
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
        preexec_fn=limit,
        **OWN_GROUP,
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
        process.kill()
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
        interrupt(process)
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


def wait_until(test, process: subprocess.Popen, seconds: float = 60) -> None:
    """Poll `test` until it holds (bounded); the run must still be going when it does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if test():
            return
        time.sleep(0.005)
    raise AssertionError("the run ended (or took too long) before the moment the test waits for")


def ok_rows_and_undo(folder: Path) -> tuple[list[str], list[str]]:
    table = results(folder)
    ok = table.filter(pl.col("outcome") == "ok").get_column("Subscription ID").to_list()
    undo = pl.read_csv(folder / "undo.csv", infer_schema=False)
    return ok, undo.get_column("Subscription ID").to_list()


def test_kill_9_after_a_patch_landed_but_before_its_answer_keeps_it_ok_and_undoable(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    folder = tmp_path / "run"
    # Every answer comes 2 s after the work is done: a kill then falls between a PATCH that
    # landed in Partner Center and the journal line that would have recorded its answer.
    with server(path, slow_share=1.0, slow_seconds=2) as (url, sandbox):
        process = start_apply(path, url, folder)
        wait_until(lambda: sandbox.counts["applied"] >= 2, process)
        process.kill()
        process.wait(10)
        landed = sandbox.counts["applied"]
        sandbox.config.slow_share = 0.0
        resumed = cli("apply", "--resume", folder, "--quiet", "--rate", "60000")
        served = stats(url)
    assert resumed.returncode == 0, resumed.stderr
    table = results(folder)
    before_kill = table.filter(pl.col("error_message") == "applied before the interruption")
    assert before_kill.height == landed >= 2
    assert set(before_kill.get_column("outcome")) == {"ok"}
    ok, undo = ok_rows_and_undo(folder)
    assert served["applied"] == len(served["applied_per_resource"]) == len(ok) == 8
    assert set(served["applied_per_resource"].values()) == {1}
    assert sorted(undo) == sorted(ok)  # every applied change once in undo.csv


def _run(command: list[str]) -> bool:
    """Run a system command; False when it failed or is not there."""
    try:
        return subprocess.run(command, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


@contextlib.contextmanager
def small_disk(tmp_path: Path, size_kb: int):
    """A folder that fills up after about `size_kb`: a real tmpfs where this machine lets the
    test mount one, else a file-size limit (writes past it fail with EFBIG). Yields the folder,
    what a child process needs to feel the limit, and a function that lifts it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if _run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(disk)]):
        try:
            yield (
                disk,
                None,
                lambda: subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True),
            )
        finally:
            _run(["umount", "-l", str(disk)])
        return

    def limit() -> None:
        import resource  # POSIX only, as is preexec_fn

        resource.setrlimit(resource.RLIMIT_FSIZE, (size_kb * 1024, size_kb * 1024))

    yield disk, limit, lambda: None


@posix_only  # a disk that fills: a tmpfs, or a file-size limit for the child process
def test_a_full_disk_stops_the_run_with_exit_3_and_resume_finishes_it(cli, tmp_path):
    path = true_up(tmp_path, customers=10, per=10)
    with (
        server(path, latency_ms=2) as (url, sandbox),
        small_disk(tmp_path, 96) as (disk, limit, grow),
    ):
        folder = disk / "run"
        process = start_apply(path, url, folder, "--rate", "60000", limit=limit)
        _out, err = process.communicate(timeout=120)  # bounded: a hang fails here
        applied = sandbox.counts["applied"]
        grow()
        resumed = cli("apply", "--resume", folder, "--quiet", "--rate", "60000")
        served = stats(url)
        assert process.returncode == 3, err
        assert resumed.returncode == 0, resumed.stderr
        ok, undo = ok_rows_and_undo(folder)
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"bulkpatch: {folder}: cannot be written (")
    assert "Traceback" not in err and "report it" not in err
    told = int(line.split("); ")[1].split(" changes were applied")[0])
    assert 0 < told <= applied < 100  # it stopped part way, and said how far it got
    assert f"bulkpatch apply --resume {folder}" in line
    assert resumed.returncode == 0, resumed.stderr
    assert set(served["applied_per_resource"].values()) == {1} and len(ok) == 100
    assert sorted(undo) == sorted(ok)


def test_a_read_only_folder_is_one_line_with_exit_3_and_nothing_sent(cli, tmp_path):
    path = true_up(tmp_path, customers=1, per=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    if not _run(["mount", "--bind", "-o", "ro", str(locked), str(locked)]):
        # no mounting here: a file where the folder should be refuses writes too
        locked.rmdir()
        locked.write_text("not a folder")
    try:
        with server(path) as (url, _):
            result = cli("apply", path, "--target", url, "--out", locked / "run", "--quiet")
            served = stats(url)
    finally:
        _run(["umount", str(locked)])
    assert result.returncode == 3
    assert result.stderr.startswith(f"bulkpatch: {locked / 'run'}: cannot be written (")
    assert "nothing was sent" in result.stderr and "Traceback" not in result.stderr
    assert "PATCH" not in served["calls"]


def test_results_that_cannot_be_written_after_sending_are_written_by_a_resume(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    folder = tmp_path / "run"
    with server(path, latency_ms=40) as (url, _):
        process = start_apply(path, url, folder)
        wait_until(lambda: (folder / "journal.jsonl").exists(), process)
        (folder / "results.xlsx").mkdir()  # stands in for a results.xlsx open in Excel
        _out, err = process.communicate(timeout=120)
        patches = stats(url)["calls"]["PATCH"]["subscription"]
        (folder / "results.xlsx").rmdir()
        resumed = cli("apply", "--resume", folder, "--quiet")
        served = stats(url)
    assert process.returncode == 3
    assert "8 changes were applied before it stopped" in err
    assert f"`bulkpatch apply --resume {folder}` finishes the run" in err
    assert resumed.returncode == 0
    assert served["calls"]["PATCH"]["subscription"] == patches  # the resume sent nothing
    ok, undo = ok_rows_and_undo(folder)
    assert len(ok) == 8 and sorted(undo) == sorted(ok)


def test_one_process_per_run_folder_and_a_killed_one_leaves_no_lock(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    folder = tmp_path / "run"
    with server(path, latency_ms=600) as (url, _):  # the first run outlasts the second's start
        first = start_apply(path, url, folder)
        wait_until(lambda: (folder / "journal.jsonl").exists(), first)
        second = cli("apply", "--resume", folder, "--quiet")
        first.kill()
        first.wait(10)
        third = cli("apply", "--resume", folder, "--quiet", "--rate", "60000")
        served = stats(url)
    assert second.returncode == 2
    assert f"{folder}: is in use by process {first.pid} (bulkpatch apply" in second.stderr
    assert third.returncode == 0, third.stderr
    assert set(served["applied_per_resource"].values()) == {1}


def test_two_runs_of_one_sheet_at_once_the_second_is_refused_naming_the_first(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    copy = tmp_path / "copy of true-up.csv"  # the same sheet under another name
    copy.write_bytes(path.read_bytes())
    folder = tmp_path / "run"
    with server(path, latency_ms=600) as (url, _):  # the first run outlasts the second's start
        first = start_apply(path, url, folder)
        wait_until(lambda: (folder / "journal.jsonl").exists(), first)
        second = cli("apply", copy, "--target", url, "--out", tmp_path / "second", "--quiet")
        first.communicate(timeout=120)
        served = stats(url)
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"bulkpatch: {copy}: the run in {folder.resolve()} (process {first.pid}) is sending "
        "this sheet's changes now; nothing was sent. Wait for it to finish and read its "
        "results: send again only what they leave to do."
    ]
    assert not (tmp_path / "second").exists()
    assert first.returncode == 0
    assert served["applied"] == 8 and set(served["applied_per_resource"].values()) == {1}


def test_a_finished_run_is_never_overwritten(cli, tmp_path):
    path = true_up(tmp_path, customers=1, per=4)
    with server(path) as (url, _):
        plan = cli("plan", path, "--target", url, "--out", tmp_path / "plan", "--quiet")
        first = cli("apply", "--plan", tmp_path / "plan", "--json", "--quiet")
        second = cli("apply", "--plan", tmp_path / "plan", "--json", "--quiet")
        again = cli(
            "apply",
            path,
            "--target",
            url,
            "--out",
            tmp_path / json.loads(first.stdout)["run_folder"],
        )
    assert plan.returncode == 0 and first.returncode == second.returncode == 0
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["run_folder"] != two["run_folder"] != str(tmp_path / "plan")
    assert one["outcomes"]["ok"] == 4 and two["outcomes"]["no_change"] == 4
    assert results(tmp_path / one["run_folder"]).get_column("outcome").to_list() == ["ok"] * 4
    assert not (tmp_path / "plan" / "results.csv").exists()
    assert again.returncode == 2 and "already holds files" in again.stderr


def test_an_unattended_run_prints_a_progress_line_every_few_seconds(tmp_path, capfd):
    path = true_up(tmp_path, customers=2, per=4)
    with server(path, latency_ms=60) as (url, _):
        run = apply_file(
            path,
            target=url,
            out=tmp_path / "run",
            progress="lines",
            settings=replace(FAST, progress_every=0.1, concurrency=1),
        )
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("Progress")]
    assert run.counts()["ok"] == 8 and len(lines) >= 2
    assert lines[0].startswith("Progress: ") and " of 8 changes done (" in lines[0]
    assert "calls/min" in lines[-1] and "ok, 0 failed)" in lines[-1]


def test_a_resume_reads_the_run_folders_copy_of_the_sheet_and_a_plan_is_not_resumed(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    folder = tmp_path / "run"
    with server(path, latency_ms=40) as (url, _):
        process = start_apply(path, url, folder)
        wait_until(lambda: (folder / "journal.jsonl").exists(), process)
        process.kill()
        process.wait(10)
        path.rename(tmp_path / "moved.csv")  # the sheet moved (or was edited) since
        resumed = cli("apply", "--resume", folder, "--quiet", "--rate", "60000")
        plan = cli("plan", tmp_path / "moved.csv", "--target", url, "--out", tmp_path / "p")
        wrong = cli("apply", "--resume", tmp_path / "p", "--quiet")
        served = stats(url)
    assert resumed.returncode == 0, resumed.stderr
    assert (folder / "input.csv").read_bytes() == (tmp_path / "moved.csv").read_bytes()
    assert set(served["applied_per_resource"].values()) == {1}
    assert plan.returncode == 0 and wrong.returncode == 2
    assert f"{tmp_path / 'p'}: is a plan that was never applied" in wrong.stderr
    assert not (tmp_path / "p" / "results.csv").exists()
