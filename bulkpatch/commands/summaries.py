"""The Summary sheet of each command's report: rows by outcome, problems by rule and code,
seats per customer and offer, the journal a resume could not read, and (last, for a support
ticket) HTTP statuses and calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.check.checker import Checked
from bulkpatch.commands.prepared import Prepared
from bulkpatch.plan.changes import Change
from bulkpatch.report import writers as report
from bulkpatch.report.stamp import Stamp
from bulkpatch.report.totals import customer_names, seats_applied
from bulkpatch.runs.result import add_counts

if TYPE_CHECKING:  # the network side: imported when a run calls out (see `Prepared.session`)
    from bulkpatch.apply.outcome import Result


PROBLEMS = "Problem (rule)"  # the Summary's problems section, each rule with its codes beside


def problems(parts: list[Checked]) -> dict[str, int]:
    """Problems per rule over the sheets, for the Summary (`codes` gives each rule's codes)."""
    return add_counts([p.rule_counts() for p in parts])


def codes(parts: list[Checked]) -> dict[str, tuple[str, dict[str, str]]]:
    """The issue codes beside each rule the Summary counts problems by."""
    found: dict[str, set[str]] = {}
    for p in parts:
        for rule, its in p.rule_codes().items():
            found.setdefault(rule, set()).update(its)
    return {PROBLEMS: ("Code", {rule: ", ".join(sorted(c)) for rule, c in found.items()})}


def check_summary(parts: list[Checked], stamped: Stamp) -> report.Summary:
    return report.Summary(
        stamped,
        [
            ("Outcome", add_counts([p.counts() for p in parts])),
            (PROBLEMS, problems(parts)),
            ("Sheet", {p.sheet.label: p.sheet.frame.height for p in parts}),
        ],
        beside=codes(parts),
    )


def plan_summary(
    prepared: Prepared, outcomes: dict[str, int], seats: pl.DataFrame, stamped: Stamp
) -> report.Summary:
    return report.Summary(
        stamped,
        [("Outcome", outcomes), (PROBLEMS, problems(prepared.parts))],
        [("Seats per customer and offer (as planned)", seats)] if seats.height else [],
        beside=codes(prepared.parts),
    )


def apply_summary(
    prepared: Prepared,
    figures: dict[str, Any],
    applied: list[tuple[Change, Result]],
    stamped: Stamp,
) -> report.Summary:
    """Rows by outcome, problems by rule, HTTP statuses, calls, and the seats the changes
    applied added and removed per customer and offer."""
    seats = seats_applied(
        [
            (c.customer_id, r.offer or "?", *r.diffs["quantity"])
            for c, r in applied
            if r.outcome in ("ok", "accepted") and "quantity" in r.diffs
        ],
        customer_names([p.sheet for p in prepared.parts]),
    )
    calls = figures["calls"]
    recovery = prepared.recovery
    return report.Summary(
        stamped,
        [
            ("Outcome", figures["outcomes"]),
            (PROBLEMS, problems(prepared.parts)),
            *([("Journal (resume)", recovery.counts())] if recovery.counts() else []),
        ],
        [
            *([("Seats added and removed per customer and offer", seats)] if seats.height else []),
            *(
                [("Journal lines that cannot be read", recovery.table())]
                if recovery.damaged
                else []
            ),
        ],
        [  # for a support ticket, last
            ("HTTP status", figures["http_statuses"]),
            ("Calls", {f"{k} {op}": n for k, ops in calls.items() for op, n in ops.items()}),
        ],
        beside=codes(prepared.parts),
    )
