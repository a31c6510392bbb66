"""The outcome vocabulary: every word a row's outcome can be, what each means, and which
outcomes each command gives. Reports, the CLI, `--json` and the page all read it here, so a
word is spelled once and a filter on it never breaks.
"""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal[
    # check: the sheet alone
    "valid",
    "invalid",
    "no_change",
    # plan: the sheet against what Partner Center holds now
    "change",
    "conflict",
    "would_fail",
    # apply: what Partner Center now holds
    "ok",
    "accepted",
    "failed",
    "not_sent",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

CHECK_OUTCOMES: tuple[Outcome, ...] = ("valid", "invalid", "no_change")
PLAN_OUTCOMES: tuple[Outcome, ...] = ("change", "no_change", "conflict", "would_fail")
RESULT_OUTCOMES: tuple[Outcome, ...] = (
    "ok",
    "accepted",
    "no_change",
    "invalid",
    "conflict",
    "failed",
    "not_sent",
)
APPLIED: tuple[Outcome, ...] = ("ok", "accepted")  # reached Partner Center: undo puts them back
FIX: tuple[Outcome, ...] = (
    "invalid",
    "conflict",
    "would_fail",
    "failed",
    "not_sent",
)  # to send again

MEANING: dict[Outcome, str] = {  # the legend beside the Summary's counts, and the page's
    "valid": "The row is right: it can be sent as it is.",
    "ok": "Sent, and Partner Center now shows every value the row asked for.",
    "change": "The plan sends this change.",
    "invalid": "The row has a problem to fix (see its message); nothing was sent for it.",
    "failed": "Partner Center refused the change, or did not show the values asked for.",
    "would_fail": "Partner Center would refuse this change (see its message).",
    "conflict": "Partner Center holds something other than the sheet expects; not sent.",
    "not_sent": "Not sent: the run stopped before it; a resume sends it.",
    "accepted": "Partner Center accepted the change and had not shown it yet (202 Accepted).",
    "no_change": "Nothing to send: Partner Center holds what the row asks, or it asks nothing.",
}
