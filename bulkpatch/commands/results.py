"""What check, plan and apply take and return: the `Options` of plan and apply, their results
(the shape of `bulkpatch.runs.result.Run`), and the prepared run that plan and apply share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch import settings as config
from bulkpatch.catalog.fields import Kind
from bulkpatch.check.checker import Checked
from bulkpatch.commands.matching import matching_json
from bulkpatch.outcomes import RESULT_OUTCOMES
from bulkpatch.plan.changes import Change
from bulkpatch.report import writers as report
from bulkpatch.report.rows import Held
from bulkpatch.report.stamp import Stamp, now, stamp
from bulkpatch.report.totals import customer_names, seats_applied
from bulkpatch.runs.folder import RunFolder
from bulkpatch.runs.recover import Recovery
from bulkpatch.runs.result import Run, add_counts
from bulkpatch.settings import Settings

if TYPE_CHECKING:  # the network side: imported when a run calls out (see `Prepared.session`)
    from bulkpatch.apply.outcome import Result
    from bulkpatch.apply.session import Sent, Session, Shown, Watch
    from bulkpatch.network.target import Target


@dataclass
class Options:
    """What plan and apply are told besides the sheet: its worksheet and kind, the target and
    profile, where to write, the user settings (None: not given, so the environment, then the
    profile, then the default decide), a `settings` object for a script's own engine tuning,
    and the hooks a face (CLI, web page) uses to show progress and where calls go."""

    sheet: str | None = None
    kind: Kind | None = None
    target: str | None = None
    profile: str | config.Profile | None = None
    out: str | Path | None = None
    reports_base: str | Path = "reports"
    settings: Settings | None = None
    rate: float | None = None
    order_rate: float | None = None
    limit_scope: str | None = None
    concurrency: int | None = None
    notes: list[str] = field(default_factory=list)  # headers to keep as notes (near misses)
    accept_differences: bool = False  # send even when expected values differ from the live ones
    add_again: bool = False  # apply seat changes a finished run of the same sheet already added
    keep_renewal_changes: bool = False  # schedule again what a mid-term change removes
    all_or_nothing: bool = False  # apply: send only when no row is invalid or would be refused
    progress: str | bool | Watch = False  # "bar", "lines" (one every 10 s), or a page's Watch
    announce: Callable[[Prepared], None] | None = None  # hears the run before reads or writes
    command: str | None = None  # the command as run, for the reports (the CLI's, secrets hidden)

    def resolved(self) -> tuple[config.Profile, Settings]:
        """The profile, and the settings merged from every source."""
        chosen = config.profile(self.profile)
        flags = {k: getattr(self, k) for k in config.USER_SETTINGS}
        return chosen, chosen.settings(self.settings, **flags)

    def saved(self, resolved: Target) -> dict[str, Any]:
        """What decides what a run sends: kept in its manifest, part of its fingerprint."""
        return {
            "sheet": self.sheet,
            "kind": self.kind,
            "notes": self.notes or [],
            "target": self.target or resolved.base_url,
            "embedded": resolved.embedded,
            "accept_differences": self.accept_differences,
            "keep_renewal_changes": self.keep_renewal_changes,
            # kept only when asked, so a resume sends nothing either (and other runs' manifests,
            # and their fingerprints, stay as they were)
            **({"all_or_nothing": True} if self.all_or_nothing else {}),
        }


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
        "to_match": part.matching.height,  # rows whose ids plan finds by name (README, "Matching")
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


@dataclass
class Prepared:
    """A sheet checked and turned into changes, in its run folder, against its target."""

    folder: RunFolder
    target: Target
    parts: list[Checked]
    changes: list[Change]
    held: Held
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # resuming: may have landed
    recovery: Recovery = field(default_factory=Recovery)  # resuming: beyond the readable journal
    listed: dict[str, Any] = field(default_factory=dict)  # matching's list reads, by customer
    started: datetime = field(default_factory=now)

    def stamp(self, command: str | None) -> Stamp:
        """What this run's reports say they are, as of now."""
        f = self.folder
        return stamp(self.target, f.source, f.sha256, f.path, self.started, command)

    def session(self, settings: Settings, progress: Shown) -> Session:
        """Calls to this run's target with `settings`."""
        from bulkpatch.apply.session import Session

        return Session(self.target, self.folder.sheet, settings, progress, self.listed)

    def rows(self) -> dict[str, int]:
        """The sheet's rows by check outcome."""
        return add_counts([p.counts() for p in self.parts])


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


# --- the Summary sheet of each command -----------------------------------------------------------


PROBLEMS = "Problem (rule)"


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
