"""What check, plan and apply return: a result of the shape every command has
(`bulkpatch.runs.result.Run`: `counts()`, `summary()` as the plain data `--json` prints,
`folder`, `reports`, `notes`), and an apply's figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.check.checker import Checked
from bulkpatch.commands.matching import matching_json
from bulkpatch.commands.prepared import Prepared
from bulkpatch.outcomes import RESULT_OUTCOMES
from bulkpatch.runs.result import Run, add_counts

if TYPE_CHECKING:  # the network side: imported when a run calls out (see `Prepared.session`)
    from bulkpatch.apply.session import Sent


@dataclass(kw_only=True)
class CheckRun(Run):
    """What a dry-run check found."""

    source: Path
    parts: list[Checked]

    def counts(self) -> dict[str, int]:
        return add_counts([p.counts() for p in self.parts])

    def summary(self) -> dict[str, Any]:
        return {
            "input": str(self.source),
            "rows": sum(self.counts().values()),
            **super().summary(),
            "sheets": [{**sheet_json(p), **p.counts(), **problems_json(p)} for p in self.parts],
        }


def sheet_json(part: Checked) -> dict[str, Any]:
    """A sheet as `--json` shows it: which one, how many rows, how each header was read, and
    what load skipped."""
    return {
        "sheet": part.sheet.sheet_name,
        "kind": part.sheet.kind,
        "rows": part.sheet.frame.height,
        "mapping": [m.to_json() for m in part.sheet.mapping()],
        "skipped": part.sheet.notes,
        # rows whose ids plan finds by name (README, "Matching"): once planned, those it tried
        "to_match": part.found.height if part.found is not None else part.matching.height,
        "matching": matching_json(part),
    }


def problems_json(part: Checked) -> dict[str, Any]:
    """A sheet's problems as `--json` shows them: counted by rule and by issue code, then each
    one (row, column, value, code, rule, message); a script filters on the code."""
    return {
        "problems_by_rule": part.rule_counts(),
        "problems_by_code": part.code_counts(),
        "problems": part.issues.to_dicts(),
    }


@dataclass(kw_only=True)
class PlanRun(Run):
    """What each change would do, read from the current state: reviewable before sending."""

    prepared: Prepared
    outcomes: dict[str, int]
    entries: list[dict[str, Any]] = field(default_factory=list)  # one per change, as planned
    seats: pl.DataFrame = field(default_factory=pl.DataFrame)  # per customer and offer
    rows: dict[str, int] = field(default_factory=dict)  # rows by outcome, as its tables show
    needs_approval: list[str] = field(default_factory=list)  # why (README, "Controls")

    def counts(self) -> dict[str, int]:
        return self.outcomes

    def invalid_rows(self) -> int:
        return self.prepared.rows().get("invalid", 0)

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.prepared.target.name,
            "invalid_rows": self.invalid_rows(),
            "needs_approval": self.needs_approval,
            **super().summary(),
            "sheets": [{**sheet_json(p), **problems_json(p)} for p in self.prepared.parts],
        }


@dataclass(kw_only=True)
class ApplyRun(Run):
    """What an apply did: a result per row, and the run's figures."""

    prepared: Prepared
    figures: dict[str, Any]
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        return self.figures["outcomes"]

    def summary(self) -> dict[str, Any]:
        return {
            "report": self.stamp.to_json() if self.stamp else None,
            **self.figures,
            "reports": [str(r) for r in self.reports],
            "notes": self.notes,
            "sheets": [{**sheet_json(p), **problems_json(p)} for p in self.prepared.parts],
        }


def apply_figures(
    prepared: Prepared, sent: Sent, outcomes: dict[str, int], elapsed: float
) -> dict[str, Any]:
    """The figures of an apply run (`summary.json`): rows by outcome, calls, pace, stops."""
    engine, folder = sent.engine, prepared.folder
    calls = {
        kind: {op: n for (k, op), n in sorted(engine.calls.items()) if k == kind}
        for kind in ("subscriptions", "orders")
    }
    total_calls = sum(engine.calls.values())
    return {
        "input": str(folder.source),
        "target": prepared.target.name,
        "run_folder": str(folder.path),
        "rows": sum(outcomes.values()),
        "outcomes": {o: outcomes.get(o, 0) for o in RESULT_OUTCOMES},
        "http_statuses": dict(sorted(engine.statuses.items())),
        "calls": calls,
        "calls_total": total_calls,
        "throttled_429": engine.throttled,
        "elapsed_seconds": round(elapsed, 3),
        "achieved_calls_per_minute": round(total_calls / elapsed * 60, 1) if elapsed else 0.0,
        "stopped": engine.stopped,
        "interrupted": sent.interrupted,
        "journal": prepared.recovery.to_json(),
        "resume": f"bulkpatch apply --resume {folder.path}",
    }
