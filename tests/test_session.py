"""A session with the target: the progress bar of plan and apply in a real terminal."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import posix_only, true_up

pytestmark = posix_only


def in_terminal(args: list[str], cwd: Path) -> str:
    """What the CLI writes to stderr when stderr is a terminal (a real pseudo-terminal)."""
    import fcntl
    import pty
    import termios

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
