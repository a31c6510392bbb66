"""The run folder: a run killed (kill -9) or stopped (Ctrl-C) at any moment is finished by
`apply --resume`, nothing applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import results, server, stats, true_up


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
