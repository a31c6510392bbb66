"""A session with the target: the progress bar of plan and apply in a real terminal."""

from __future__ import annotations

import pytest
from conftest import in_terminal, posix_only, true_up

pytestmark = posix_only


@pytest.mark.parametrize(("command", "unit"), [("plan", "read"), ("apply", "change")])
def test_plan_and_apply_show_progress_in_a_terminal_unless_quiet(tmp_path, command, unit):
    path = true_up(tmp_path, customers=3, per=4)
    shown = in_terminal([command, str(path), "--target", "sandbox", "--out", "a"], tmp_path)
    quiet = in_terminal(
        [command, str(path), "--target", "sandbox", "--out", "b", "--quiet"], tmp_path
    )
    assert "12/12 [" in shown and f"{unit}/s" in shown
    assert "12/12 [" not in quiet and "built-in sandbox" in quiet
