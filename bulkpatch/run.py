"""Plan and apply runs: a sheet through check, plan, apply and report, in a run folder.

`plan_file` reads the current state and writes what would change; `apply_file` sends it
(from a sheet, a plan folder, or an interrupted run folder) and writes the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from bulkpatch import report, undo
from bulkpatch.api import add_counts, folder_for, write_csvs
from bulkpatch.apply import Engine, Reply, Result, Settings
from bulkpatch.catalog import Kind
from bulkpatch.check import Checked, check
from bulkpatch.config import Profile
from bulkpatch.errors import InputError
from bulkpatch.journal import Journal, finished
from bulkpatch.load import ROW, load
from bulkpatch.plan import Change, merge, show
from bulkpatch.plan import changes as plan_changes
from bulkpatch.target import Target, client, resolve

MANIFEST, PLAN = "run.json", "plan.jsonl"
RESULT_SCHEMA = {
    "outcome": pl.String,
    "http_status": pl.Int64,
    "error_code": pl.Int64,
    "error_message": pl.String,
    "changes": pl.String,
    "request_id": pl.String,
    "correlation_id": pl.String,
    "attempts": pl.Int64,
    "elapsed_ms": pl.Int64,
}
RESULT_OUTCOMES = ("ok", "accepted", "no_change", "invalid", "failed", "not_sent")


@dataclass
class Prepared:
    """A sheet checked and turned into changes, in its run folder, against its target."""

    source: Path
    folder: Path
    target: Target
    parts: list[Checked]
    changes: list[Change]
    held: dict[tuple[str, int], str]
    manifest: dict[str, Any]


@dataclass
class PlanRun:
    """A reviewed-before-sending plan: what each change would do, and where the files are."""

    prepared: Prepared
    outcomes: Counter[str]
    reports: list[Path]


@dataclass
class ApplyRun:
    """What an apply did: a result per row, the summary, and the files written."""

    prepared: Prepared
    summary: dict[str, Any]
    reports: list[Path]
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.prepared.folder

    def counts(self) -> dict[str, int]:
        return self.summary["outcomes"]


def prepare(
    path: str | Path,
    *,
    sheet: str | None = None,
    kind: Kind | None = None,
    target: str | None = None,
    folder: Path,
    run_id: str | None = None,
    profile: Profile | None = None,
) -> Prepared:
    """Check the sheet and derive its changes (MS-RequestIds from `run_id`)."""
    source = Path(path)
    parts = [check(s) for s in load(source, sheet=sheet, kind=kind)]
    resolved = resolve(target, profile)
    settings = {
        "sheet": sheet,
        "kind": kind,
        "target": target or resolved.base_url,
        "embedded": resolved.embedded,
    }
    manifest = {
        "source": str(source.resolve()),
        "settings": settings,
        "fingerprint": fingerprint(source, settings),
        "run_id": run_id or str(uuid.uuid4()),
    }
    made: list[Change] = []
    held: dict[tuple[str, int], str] = {}
    for part in parts:
        changes, kept_back = plan_changes(part, manifest["run_id"])
        made += changes
        held.update({(part.sheet.kind, row): why for row, why in kept_back.items()})
    return Prepared(source, folder, resolved, parts, made, held, manifest)


def fingerprint(source: Path, settings: dict[str, Any]) -> str:
    """A hash of the sheet's bytes and the settings that decide what is sent."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def plan_file(
    path: str | Path,
    *,
    sheet: str | None = None,
    kind: Kind | None = None,
    target: str | None = None,
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
    settings: Settings | None = None,
    profile: Profile | None = None,
    progress: bool = False,
) -> PlanRun:
    """Check, read current state with as few calls as possible, and write the plan files."""
    source = Path(path)
    prepared = prepare(
        source,
        sheet=sheet,
        kind=kind,
        target=target,
        folder=folder_for(out, reports_base, source),
        profile=profile,
    )
    settings = settings or Settings()
    currents = asyncio.run(_read_all(prepared, settings, progress))
    entries, outcomes = [], Counter()
    now = datetime.now(UTC)
    for change in prepared.changes:
        current = currents[change.key]
        entry: dict[str, Any] = {"change": change.to_json(), "method": "PATCH", "path": change.path}
        if isinstance(current, Reply):
            entry.update(
                outcome="would_fail",
                error=f"reading it failed: {current.message}",
                error_code=current.code,
            )
        else:
            merged = merge(change, current, now)
            entry.update(
                body=merged.body,
                before=current,
                diffs={k: list(v) for k, v in merged.diffs.items()},
                outcome="change" if merged.diffs else "no_change",
            )
            if merged.refusal and merged.diffs:
                entry.update(
                    outcome="would_fail",
                    error_code=merged.refusal.code,
                    error=merged.refusal.description,
                )
        outcomes[entry["outcome"]] += 1
        entries.append(entry)
    _write_manifest(prepared, entries)
    reports = _write_plan_reports(prepared, entries)
    return PlanRun(prepared, outcomes, reports)


async def _read_all(
    prepared: Prepared, settings: Settings, progress: bool
) -> dict[str, dict | Reply]:
    bar = _bar(len(prepared.changes), "read", progress)
    try:
        async with _client(prepared, settings) as http:
            engine = Engine(http, settings, None)
            return await engine.read_all(prepared.changes, bar.update if bar else None)
    finally:
        if bar:
            bar.close()


def _bar(total: int, unit: str, progress: bool) -> tqdm | None:
    """A progress bar on stderr, when asked for (the CLI asks when stderr is a terminal)."""
    return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True) if progress else None


def _client(prepared: Prepared, settings: Settings):
    db = prepared.folder / "sandbox.db"
    return client(
        prepared.target,
        sandbox_db=db,
        seed=[prepared.source],
        reseed=not db.exists(),
        connections=settings.concurrency,
    )


def _write_manifest(prepared: Prepared, entries: list[dict[str, Any]]) -> None:
    report.write_json(prepared.folder / MANIFEST, prepared.manifest)
    with report.atomic(prepared.folder / PLAN) as tmp, tmp.open("w", encoding="utf-8") as out:
        for entry in entries:
            out.write(json.dumps(entry, default=str) + "\n")


def _write_plan_reports(prepared: Prepared, entries: list[dict[str, Any]]) -> list[Path]:
    by_row: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in entries:
        for row in entry["change"]["rows"]:
            by_row[(entry["change"]["kind"], row)] = entry
    tables = []
    for part in prepared.parts:
        kind = part.sheet.kind
        planned = pl.DataFrame(
            [
                {
                    ROW: row,
                    "plan": e["outcome"],
                    "changes": "; ".join(
                        f"{k}: {show(b)} -> {show(a)}"
                        for k, (b, a) in (e.get("diffs") or {}).items()
                    ),
                    "reason": e.get("error") or "",
                    "request_id": e["change"]["request_id"],
                }
                for (k, row), e in by_row.items()
                if k == kind
            ],
            schema={
                ROW: pl.Int64,
                "plan": pl.String,
                "changes": pl.String,
                "reason": pl.String,
                "request_id": pl.String,
            },
        )
        held = pl.DataFrame(
            [{ROW: r, "reason": why} for (k, r), why in prepared.held.items() if k == kind],
            schema={ROW: pl.Int64, "reason": pl.String},
        )
        ours = (
            part.outcomes.join(planned, on=ROW, how="left")
            .join(held, on=ROW, how="left", suffix="_held")
            .select(
                ROW,
                pl.coalesce(
                    "plan",
                    pl.when(pl.col("outcome") == "valid")
                    .then(pl.lit("would_fail"))
                    .otherwise("outcome"),
                ).alias("outcome"),
                pl.col("changes").fill_null(""),
                pl.coalesce("errors", "reason", "reason_held", pl.lit("")).alias("errors"),
                pl.col("request_id").fill_null(""),
            )
        )
        tables.append(report.table(part.sheet, ours, part.issues))
    written = write_csvs(prepared.folder, "plan", prepared.parts, tables)
    seats = _seat_totals(entries)
    if seats.height:
        report.write_csv(prepared.folder / "plan-seats.csv", seats.columns, seats)
        written.append(prepared.folder / "plan-seats.csv")
    summary = [
        (
            "Outcome",
            add_counts([dict(Counter(t.frame.get_column("outcome").to_list())) for t in tables]),
        )
    ]
    if report.write_workbook(prepared.folder / "plan.xlsx", tables, summary, [("Seats", seats)]):
        written.append(prepared.folder / "plan.xlsx")
    return [prepared.folder / PLAN, *written]


def _seat_totals(entries: list[dict[str, Any]]) -> pl.DataFrame:
    """Seats before and after per customer and offer, over the subscriptions read."""
    rows = [
        {
            "customer_id": e["change"]["customer_id"],
            "offer": e["before"].get("offerName") or e["before"].get("offerId"),
            "seats_before": e["before"].get("quantity", 0),
            "seats_after": e["body"].get("quantity", 0)
            if e["outcome"] == "change"
            else e["before"].get("quantity", 0),
        }
        for e in entries
        if e["change"]["kind"] == "subscriptions" and "before" in e
    ]
    if not rows:
        return pl.DataFrame()
    return (
        pl.DataFrame(rows)
        .group_by("customer_id", "offer", maintain_order=True)
        .agg(pl.sum("seats_before"), pl.sum("seats_after"), pl.len().alias("subscriptions"))
        .with_columns((pl.col("seats_after") - pl.col("seats_before")).alias("change"))
    )


def apply_file(
    path: str | Path | None = None,
    *,
    sheet: str | None = None,
    kind: Kind | None = None,
    target: str | None = None,
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
    settings: Settings | None = None,
    plan_dir: str | Path | None = None,
    resume_dir: str | Path | None = None,
    progress: bool = False,
    confirm: Callable[[Prepared, Callable[[], Preview]], bool] | None = None,
    profile: Profile | None = None,
) -> ApplyRun:
    """Apply a sheet (or a plan folder, or resume a run folder) and write the results.

    `confirm(prepared, preview)` may stop the run before anything is sent; `preview()` reads
    the current state and says what would happen (the guard rail of a live run).
    """
    settings = settings or Settings()
    prepared, done = _start(
        path, sheet, kind, target, out, reports_base, plan_dir, resume_dir, profile
    )
    if confirm and not confirm(prepared, lambda: preview(prepared, settings, progress)):
        raise InputError("nothing was sent: the run was not confirmed.")
    todo = [c for c in prepared.changes if c.key not in done]
    journal = Journal(prepared.folder)
    journal.write(
        "start", target=prepared.target.name, changes=len(prepared.changes), already_done=len(done)
    )
    started = time.monotonic()
    engine_box: list[Engine] = []
    try:
        results, interrupted = asyncio.run(
            _run(prepared, settings, journal, todo, progress, engine_box)
        )
    finally:
        journal.close()
    engine = engine_box[0]
    results = {**{k: _result(v) for k, v in done.items()}, **results}
    return _finish(prepared, engine, results, interrupted, time.monotonic() - started)


@dataclass
class Preview:
    """What a run would do, read from the current state: shown before a live run."""

    rows: dict[str, int]
    changes: int = 0
    unchanged: int = 0
    would_fail: int = 0
    customers: int = 0
    seats: dict[str, int] = field(default_factory=dict)
    suspensions: int = 0
    cancellations: int = 0

    def lines(self) -> list[str]:
        rows = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in self.rows.items())
        seats = "; ".join(f"{offer}: {n:+d}" for offer, n in sorted(self.seats.items())) or "none"
        return [
            f"Rows: {rows}.",
            f"Changes: {self.changes} to send for {self.customers} customers, {self.unchanged} "
            f"already done, {self.would_fail} would fail.",
            f"Seat changes by offer: {seats}.",
            f"Set apart: {self.suspensions} suspensions, {self.cancellations} cancellations.",
        ]


def preview(prepared: Prepared, settings: Settings, progress: bool = False) -> Preview:
    """Read the current state (as `plan` does) and count what the run would change."""
    currents = asyncio.run(_read_all(prepared, settings, progress))
    shown = Preview(add_counts([p.counts() for p in prepared.parts]))
    customers, now = set(), datetime.now(UTC)
    for change in prepared.changes:
        current = currents[change.key]
        merged = None if isinstance(current, Reply) else merge(change, current, now)
        if merged is None or (merged.refusal and merged.diffs):
            shown.would_fail += 1
            continue
        if not merged.diffs:
            shown.unchanged += 1
            continue
        shown.changes += 1
        customers.add(change.customer_id.lower())
        if "quantity" in merged.diffs:
            before, after = merged.diffs["quantity"]
            offer = current.get("offerName") or current.get("offerId") or "?"
            shown.seats[offer] = shown.seats.get(offer, 0) + after - (before or 0)
        status = merged.diffs.get("status", (None, None))[1]
        shown.suspensions += status == "suspended"
        shown.cancellations += status in ("deleted", "cancelled")
    shown.customers = len(customers)
    return shown


def _start(
    path, sheet, kind, target, out, reports_base, plan_dir, resume_dir, profile
) -> tuple[Prepared, dict[str, dict[str, Any]]]:
    """The prepared run and the changes already finished (from a plan or a journal)."""
    folder_arg = resume_dir or plan_dir
    if folder_arg is None:
        if path is None:
            raise InputError("give a SHEET, --plan DIR or --resume DIR.")
        source = Path(path)
        prepared = prepare(
            source,
            sheet=sheet,
            kind=kind,
            target=target,
            folder=folder_for(out, reports_base, source),
            profile=profile,
        )
        _write_manifest(prepared, [{"change": c.to_json()} for c in prepared.changes])
        return prepared, {}
    folder = Path(folder_arg)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        entries = [json.loads(line) for line in (folder / PLAN).read_text().splitlines() if line]
    except (OSError, ValueError):
        raise InputError(
            f"{folder}: is not a bulkpatch run folder (no readable {MANIFEST} and {PLAN})."
        ) from None
    saved = manifest["settings"]
    if (
        target is not None
        and target != saved["target"]
        and not (saved["embedded"] and target == "sandbox")
    ):
        raise InputError(
            f"{folder}: was planned for {saved['target']}, not {target}; plan "
            "again for the new target."
        )
    source = Path(manifest["source"])
    if not source.exists() or fingerprint(source, saved) != manifest["fingerprint"]:
        raise InputError(
            f"{folder}: its sheet {source} has changed (or moved) since it was planned; plan again."
        )
    prepared = prepare(
        source,
        sheet=saved["sheet"],
        kind=saved["kind"],
        target="sandbox" if saved["embedded"] else saved["target"],
        folder=folder,
        run_id=manifest["run_id"],
        profile=profile,
    )
    prepared.changes = [
        Change(**e["change"]) for e in entries if e.get("outcome") in (None, "change")
    ]
    done = finished(folder) if resume_dir else {}
    for e in entries:
        if e.get("outcome") in ("no_change", "would_fail"):
            key = Change(**e["change"]).key
            done.setdefault(
                key,
                {"outcome": "no_change"}
                if e["outcome"] == "no_change"
                else {
                    "outcome": "failed",
                    "error_code": e.get("error_code"),
                    "error_message": f"not sent: {e.get('error')}",
                },
            )
            prepared.changes.append(Change(**e["change"]))
    return prepared, done


async def _run(
    prepared: Prepared,
    settings: Settings,
    journal: Journal,
    todo: list[Change],
    progress: bool,
    engine_box: list[Engine],
) -> tuple[dict[str, Result], bool]:
    bar = _bar(len(todo), "change", progress)
    counts: Counter[str] = Counter()

    def tick(change: Change, result: Result) -> None:
        counts[result.outcome] += 1
        if bar:
            bar.set_postfix(
                ok=counts["ok"] + counts["accepted"],
                unchanged=counts["no_change"],
                failed=counts["failed"],
                refresh=False,
            )
            bar.update()

    interrupted = False
    async with _client(prepared, settings) as http:
        engine = Engine(http, settings, journal, on_result=tick)
        engine_box.append(engine)
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            engine.stop("interrupted (Ctrl-C)")

        with contextlib.suppress(RuntimeError, ValueError):  # only the main thread gets Ctrl-C
            loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            results = await engine.run(todo)
        finally:
            if bar:
                bar.close()
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
    return results, interrupted


def _result(entry: dict[str, Any]) -> Result:
    known = Result.__dataclass_fields__
    return Result(**{k: v for k, v in entry.items() if k in known})


def _finish(
    prepared: Prepared,
    engine: Engine,
    results: dict[str, Result],
    interrupted: bool,
    elapsed: float,
) -> ApplyRun:
    why = engine.stopped or "the run stopped before this change"
    tables, outcomes = [], Counter()
    for part in prepared.parts:
        ours = _row_results(part, prepared, results, f"not sent: {why}")
        outcomes.update(ours.get_column("outcome").to_list())
        tables.append(report.table(part.sheet, ours, part.issues))
    folder = prepared.folder
    written = write_csvs(folder, "results", prepared.parts, tables)
    calls = {
        kind: {op: n for (k, op), n in sorted(engine.calls.items()) if k == kind}
        for kind in ("subscriptions", "orders")
    }
    total_calls = sum(engine.calls.values())
    summary = {
        "input": str(prepared.source),
        "target": prepared.target.name,
        "run_folder": str(folder),
        "rows": sum(outcomes.values()),
        "outcomes": {o: outcomes.get(o, 0) for o in RESULT_OUTCOMES},
        "http_statuses": dict(sorted(engine.statuses.items())),
        "calls": calls,
        "calls_total": total_calls,
        "throttled_429": engine.throttled,
        "elapsed_seconds": round(elapsed, 3),
        "achieved_calls_per_minute": round(total_calls / elapsed * 60, 1) if elapsed else 0.0,
        "stopped": engine.stopped,
        "interrupted": interrupted,
        "resume": f"bulkpatch apply --resume {folder}",
    }
    report.write_json(folder / "summary.json", summary)
    written.append(folder / "summary.json")
    workbook = [
        ("Outcome", summary["outcomes"]),
        ("HTTP status", summary["http_statuses"]),
        ("Calls", {f"{k} {op}": n for k, ops in calls.items() for op, n in ops.items()}),
    ]
    if report.write_workbook(folder / "results.xlsx", tables, workbook):
        written.append(folder / "results.xlsx")
    written += undo.write(folder, prepared.changes, results)
    return ApplyRun(prepared, summary, written, interrupted)


def _row_results(
    part: Checked, prepared: Prepared, results: dict[str, Result], unsent: str
) -> pl.DataFrame:
    """ROW and the result columns: a change's result on each of its rows, check verdicts else."""
    kind = part.sheet.kind
    rows = []
    for change in prepared.changes:
        if change.kind != kind:
            continue
        result = results.get(change.key) or Result(
            "not_sent", error_message=unsent, request_id=change.request_id
        )
        data = {k: v for k, v in result.to_json().items() if k in RESULT_SCHEMA}
        rows += [{ROW: row, **data} for row in change.rows]
    rows += [
        {ROW: row, "outcome": "invalid", "error_message": why}
        for (k, row), why in prepared.held.items()
        if k == kind
    ]
    sent = pl.DataFrame(rows, schema={ROW: pl.Int64, **RESULT_SCHEMA})
    return part.outcomes.join(sent, on=ROW, how="left", suffix="_sent").select(
        ROW,
        pl.coalesce(
            "outcome_sent",
            pl.when(pl.col("outcome") == "valid").then(pl.lit("not_sent")).otherwise("outcome"),
        ).alias("outcome"),
        "http_status",
        "error_code",
        pl.coalesce("errors", "error_message", pl.lit("")).alias("error_message"),
        *[
            pl.col(c).fill_null("") if RESULT_SCHEMA[c] == pl.String else pl.col(c)
            for c in ("changes", "request_id", "correlation_id", "attempts", "elapsed_ms")
        ],
    )
