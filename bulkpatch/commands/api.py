"""The library API: one function per command, each reading as the pipeline.

`check_file` checks a sheet; `plan_file` also reads Partner Center and writes what would
change; `apply_file` sends it; `export_file` writes what Partner Center holds as a sheet to
edit. Each returns a result of one shape (`results`), which the CLI and the web page show.
Settings merge here (keyword, environment, profile, default): a script gets what the CLI gets.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch import settings as config
from bulkpatch.catalog.fields import Kind
from bulkpatch.check.checker import Checked, check
from bulkpatch.commands.results import (
    ApplyRun,
    CheckRun,
    Options,
    PlanRun,
    Prepared,
    apply_figures,
    apply_summary,
    check_summary,
    plan_summary,
)
from bulkpatch.errors import FolderFault, InputError
from bulkpatch.export.result import ExportRun
from bulkpatch.load.reader import load
from bulkpatch.outcomes import APPLIED, PLAN_OUTCOMES
from bulkpatch.plan.changes import Change
from bulkpatch.plan.changes import changes as plan_changes
from bulkpatch.report import writers as report
from bulkpatch.report.rows import Held, outcome_counts, plan_rows, result_rows
from bulkpatch.report.stamp import Digest, now, stamp
from bulkpatch.report.totals import Preview, customer_names, seat_totals
from bulkpatch.report.totals import preview as plan_preview
from bulkpatch.report.words import fix_note, plural
from bulkpatch.runs import recover
from bulkpatch.runs.folder import RunFolder, make_folder
from bulkpatch.runs.ledger import not_again, remember_applied, seat_changes
from bulkpatch.settings import Settings

# The network side (asyncio, httpx, msal) is imported by the functions that call out: `check`
# never does, and these imports cost it a tenth of its run time.
if TYPE_CHECKING:
    from bulkpatch.apply.outcome import Result
    from bulkpatch.apply.session import Sent, Session, Shown
    from bulkpatch.network.target import Target


# --- check ---------------------------------------------------------------------------------------


def check_file(
    path: str | Path,
    *,
    sheet: str | None = None,
    kind: Kind | None = None,
    notes: list[str] | None = None,
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
    xlsx: bool = True,
    command: str | None = None,
) -> CheckRun:
    """Load and check a sheet, then write `check.csv` and `check.xlsx` into a run folder.

    `notes`: headers to keep as notes (a near miss of a field name stops the load otherwise);
    `command`: the command as run, for the reports.
    """
    source, started = Path(path), now()
    digest = Digest.of(source)
    parts = _checked(source, {"sheet": sheet, "kind": kind, "notes": notes or []})
    folder = RunFolder(make_folder(out, reports_base, source), {})
    stamped = stamp(None, source, digest.result() if digest else "", folder.path, started, command)
    summary = check_summary(parts, stamped)
    written, notes = _reports(folder, "check", parts, [p.outcomes for p in parts], summary, xlsx)
    return CheckRun(
        folder=folder.path, reports=written, notes=notes, stamp=stamped, source=source, parts=parts
    )


def _checked(source: Path, saved: dict[str, Any]) -> list[Checked]:
    """Load and check the sheet as the run's saved settings say (worksheet, kind, notes)."""
    sheets = load(source, sheet=saved["sheet"], kind=saved["kind"], notes=saved.get("notes", ()))
    return [check(s) for s in sheets]


def _reports(
    folder: RunFolder,
    stem: str,
    parts: list[Checked],
    ours: list[pl.DataFrame],
    summary: report.Summary,
    xlsx: bool = True,
    extra: list[tuple[str, pl.DataFrame]] = (),
) -> tuple[list[Path], list[str]]:
    """`<stem>.csv` (one per sheet: the user's rows, then `ours`), `<stem>.xlsx`, and the
    rows to fix and send again (`to-fix.csv` or `.xlsx`, as the input was)."""
    made = [report.table(p.sheet, o, p.issues) for p, o in zip(parts, ours, strict=True)]
    folder.dialect = parts[0].sheet.dialect  # undo.csv and plan-seats.csv are written alike
    written = folder.write_tables(
        stem, [(p.sheet.kind, t) for p, t in zip(parts, made, strict=True)]
    )
    fixes = [
        report.to_fix(t, len(p.sheet.columns), p.outcomes) for p, t in zip(parts, made, strict=True)
    ]
    fixes = [f for f in fixes if f]
    fixed = folder.write_fix(fixes, excel=parts[0].sheet.sheet_name is not None)
    outcomes = pl.concat([t.frame.select("outcome") for t in made])
    notes = [fix_note(stem, outcomes, path) for path in fixed]
    if outcomes.is_empty():  # a header row alone: said, so an empty export is not a surprise
        notes.append(f"{parts[0].sheet.label} has headers and no rows below them: nothing to do.")
    if xlsx and not (book := folder.write_workbook(stem, made, summary, extra)):
        notes.append(f"{stem}.xlsx was not written: the sheet has more rows than Excel can open.")
    return written + (book if xlsx else []) + fixed, notes


# --- plan ----------------------------------------------------------------------------------------


def _changes(folder: RunFolder, target: Target, parts: list[Checked]) -> Prepared:
    """The sheet's changes (MS-RequestIds derived from the run), and rows held back."""
    made, held = _asked(parts, folder.run_id)
    if folder.settings.get("accept_differences"):  # the user accepts what Partner Center holds
        for change in made:
            change.expected, change.expected_lines = {}, []
    return Prepared(folder, target, parts, made, held)


def _asked(parts: list[Checked], run_id: str) -> tuple[list[Change], Held]:
    """Every change the checked sheets ask for, and the rows held back with why."""
    made: list[Change] = []
    held: Held = {}
    for part in parts:
        changes, kept_back = plan_changes(part, run_id)
        made += changes
        held.update({(part.sheet.kind, row): why for row, why in kept_back.items()})
    return made, held


def prepare(path: str | Path, **options: Any) -> Prepared:
    """A sheet checked and turned into changes, in a new run folder, against its target
    (`options`: see `Options`)."""
    return _prepare(Path(path), Options(**options), config.profile(options.get("profile")))


def _prepare(source: Path, o: Options, chosen: config.Profile, fresh: bool = False) -> Prepared:
    from bulkpatch.network.target import place_name, resolve

    resolved = resolve(o.target, chosen)
    saved = o.saved(resolved)
    parts = _checked(source, saved)
    if fresh and not o.add_again and any(p.sheet.has_delta for p in parts):
        asked, _ = _asked(parts, "")
        not_again(source, [c.to_json() for c in asked], place_name(resolved), saved["target"])
    folder = RunFolder.new(source, saved, o.out, o.reports_base, fresh)
    return _changes(folder, resolved, parts)


def plan_file(path: str | Path, **options: Any) -> PlanRun:
    """Check, read the current state with as few calls as possible, and write the plan files.

    `options` are those of `Options`: `target=`, `profile=`, `rate=`, `out=`, ...
    """
    o = Options(**options)
    chosen, settings = o.resolved()
    prepared = _prepare(Path(path), o, chosen)
    if o.announce:
        o.announce(prepared)
    entries = _plan(prepared, settings, o.progress)
    prepared.folder.write_plan(entries)
    ours = [plan_rows(p, entries, prepared.held) for p in prepared.parts]
    seats = seat_totals(entries, customer_names([p.sheet for p in prepared.parts]))
    stamped = prepared.stamp(o.command)
    rows = outcome_counts(ours)  # what the plan's tables show, row by row
    summary = plan_summary(prepared, rows, seats, stamped)
    extra = [("Seats", seats)] if seats.height else []
    written, notes = _reports(prepared.folder, "plan", prepared.parts, ours, summary, extra=extra)
    written += prepared.folder.write_frame("plan-seats", seats)
    counts = outcome_counts(
        [pl.DataFrame({"outcome": [e["outcome"] for e in entries]}, schema={"outcome": pl.String})],
        PLAN_OUTCOMES,
    )
    return PlanRun(
        folder=prepared.folder.path,
        reports=[prepared.folder.plan_path, *written],
        notes=notes,
        stamp=stamped,
        prepared=prepared,
        outcomes=counts,
        entries=entries,
        seats=seats,
        rows=rows,
    )


def _plan(prepared: Prepared, settings: Settings, progress: Shown) -> list[dict[str, Any]]:
    """One plan entry per change: what was read, the assessment, and the body to send."""
    from bulkpatch.apply.outcome import planned

    currents = prepared.session(settings, progress).read(prepared.changes)
    now = datetime.now(UTC)
    return [planned(change, currents[change.key], now) for change in prepared.changes]


# --- apply ---------------------------------------------------------------------------------------


def apply_file(
    path: str | Path | None = None,
    *,
    plan_dir: str | Path | None = None,
    resume_dir: str | Path | None = None,
    confirm: Callable[[Prepared, Callable[[], Preview]], bool] | None = None,
    **options: Any,
) -> ApplyRun:
    """Apply a sheet (or a plan folder, or resume a run folder) and write the results.

    `options` are those of `Options`. `confirm(prepared, preview)` may stop the run before
    anything is sent; `preview()` reads the current state and says what would happen (the
    guard rail of a live run).
    """
    if sum(x is not None for x in (path, plan_dir, resume_dir)) != 1:
        raise InputError("give exactly one of SHEET, --plan DIR or --resume DIR.")
    o = Options(**options)
    chosen, settings = o.resolved()
    prepared, done = _start(path, plan_dir, resume_dir, o, chosen)
    folder = prepared.folder
    keep = bool(folder.settings.get("keep_renewal_changes"))  # as the run was started
    settings = dataclasses.replace(settings, keep_renewal_changes=keep)
    try:
        if o.announce:
            o.announce(prepared)
        if confirm and not confirm(prepared, lambda: preview(prepared, settings, o.progress)):
            raise InputError("nothing was sent: the run was not confirmed.")
        if o.all_or_nothing or folder.settings.get("all_or_nothing"):  # a resume keeps it
            done = _all_or_nothing(prepared, settings, o.progress, done)
        session = prepared.session(settings, o.progress)  # its imports are not the run's time
        started = time.monotonic()
        sent = _send(prepared, session, done)
        results = {**{k: _result(v) for k, v in done.items()}, **sent.results}
        try:
            run = _finish(prepared, sent, results, time.monotonic() - started, o.command)
        except FolderFault as fault:
            raise fault.after(_applied(sent.results)) from None
    finally:
        folder.unlock()
    if plan_dir is not None:
        run.notes.append(f"The plan in {plan_dir} is unchanged; this run's files are here.")
    return run


def _all_or_nothing(
    prepared: Prepared, settings: Settings, progress: Shown, done: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`--all-or-nothing`: the results known before sending, with every change settled when
    one row would not go, so that nothing is sent.

    A row would not go when check found it invalid, or when the state read now (as `plan`
    reads it) makes it a conflict or a change Partner Center would refuse. Then those rows say
    why, as a plan run says it, and every other change is `not_sent` saying which rows stopped
    the run: the to-fix file lists them all. When every row would go, the run sends as usual
    (each change is still read and assessed again as it is sent).
    """
    invalid = sum(p.counts()["invalid"] for p in prepared.parts)
    todo = [c for c in prepared.changes if c.key not in done]
    entries = _plan(dataclasses.replace(prepared, changes=todo), settings, progress) if todo else []
    refused = {
        c.key: {
            "outcome": "failed" if e["outcome"] == "would_fail" else "conflict",
            "error_code": e.get("error_code"),
            "error_message": f"not sent: {e.get('error')}",
        }
        for c, e in zip(todo, entries, strict=True)
        if e["outcome"] in ("conflict", "would_fail")
    }
    refused |= {k: r for k, r in done.items() if r.get("outcome") in ("failed", "conflict")}
    if not invalid and not refused:
        return done
    why = [
        *([f"{plural(invalid, 'row')} {'is' if invalid == 1 else 'are'} invalid"] * bool(invalid)),
        *([f"{plural(len(refused), 'row')} would be refused"] * bool(refused)),
    ]
    unsent = {
        "outcome": "not_sent",
        "error_message": f"not sent: all or nothing (--all-or-nothing), and {' and '.join(why)}; "
        "fix those rows (they are in to-fix) and apply the sheet again",
    }
    return {c.key: done.get(c.key) or refused.get(c.key) or unsent for c in prepared.changes}


def _send(prepared: Prepared, session: Session, done: dict[str, dict[str, Any]]) -> Sent:
    """Send what is not done yet, journaled; a journal the disk refuses stops the run."""
    todo = [c for c in prepared.changes if c.key not in done]
    journal = prepared.folder.journal()
    journal.write(
        "start",
        target=prepared.target.name,
        changes=len(prepared.changes),
        already_done=len(done),
        damaged_lines=[d.line for d in prepared.recovery.damaged],  # as this resume found them
    )
    try:
        sent = session.send(todo, journal, prepared.intents)
    finally:
        journal.close()
    if journal.fault:
        raise FolderFault(prepared.folder.path, journal.fault, _applied(sent.results))
    return sent


def _applied(results: dict[str, Result]) -> int:

    return sum(r.outcome in APPLIED for r in results.values())


def _start(
    path: str | Path | None,
    plan_dir: str | Path | None,
    resume_dir: str | Path | None,
    o: Options,
    chosen: config.Profile,
) -> tuple[Prepared, dict[str, dict[str, Any]]]:
    """The run's folder (new for a sheet or a plan; the same for a resume), held by this
    process, its changes, and the results already known (from the plan or the journal)."""
    if path is not None:
        prepared = _prepare(Path(path), o, chosen, fresh=True)
        prepared.folder.lock()
        prepared.folder.write_plan([{"change": c.to_json()} for c in prepared.changes])
        return prepared, {}
    from bulkpatch.network.target import place_name

    if plan_dir is not None:
        planned = RunFolder.opened(plan_dir, o.target)
        if not o.add_again:
            entries = [e["change"] for e in planned.read_plan()]
            place = place_name(_resolved(planned.settings, chosen))
            not_again(planned.source, entries, place, planned.settings["target"])
        folder = RunFolder.from_plan(plan_dir, o.target, o.out, o.reports_base)
    else:
        folder = RunFolder.resumed(resume_dir, o.target)
    folder.lock()
    try:
        saved = folder.settings
        resolved = _resolved(saved, chosen)
        prepared = _changes(folder, resolved, _checked(folder.sheet, saved))
        prepared.changes, done, journaled = folder.settled(resume=resume_dir is not None)
        prepared.intents = journaled.intents
        if resume_dir is not None:  # what the readable journal does not tell, and the undo sheet
            earlier = folder.earlier_undo()
            prepared.recovery, rebuilt = recover.prepare(prepared.changes, journaled, done, earlier)
            prepared.intents = {**journaled.intents, **rebuilt}
    except BaseException:
        folder.unlock()
        raise
    return prepared, done


def _resolved(saved: dict[str, Any], chosen: config.Profile) -> Target:
    """The target a run folder's manifest names, resolved again with `chosen`."""
    from bulkpatch.network.target import resolve

    return resolve("sandbox" if saved["embedded"] else saved["target"], chosen)


def preview(prepared: Prepared, settings: Settings, progress: Shown = False) -> Preview:
    """Read the current state (as `plan` does) and count what the run would change."""
    return plan_preview(prepared.rows(), _plan(prepared, settings, progress))


def _result(entry: dict[str, Any]) -> Result:
    from bulkpatch.apply.outcome import Result

    known = Result.__dataclass_fields__
    return Result(**{k: v for k, v in entry.items() if k in known})


def _finish(
    prepared: Prepared,
    sent: Sent,
    results: dict[str, Result],
    elapsed: float,
    command: str | None,
) -> ApplyRun:
    """Write the results, the summary and the undo sheets of a run that sent what it could."""
    from bulkpatch.apply.outcome import Result
    from bulkpatch.network.target import place_name
    from bulkpatch.report import undo

    folder = prepared.folder
    unsent = f"not sent: {sent.engine.stopped or 'the run stopped before this change'}"
    per_change = [
        (c, results.get(c.key) or Result("not_sent", error_message=unsent, request_id=c.request_id))
        for c in prepared.changes
    ]
    per_change = recover.settle(prepared.recovery, per_change)
    ours = [
        result_rows(
            part,
            [(vars(c), r.to_json()) for c, r in per_change if c.kind == part.sheet.kind],
            prepared.held,
        )
        for part in prepared.parts
    ]
    figures = apply_figures(prepared, sent, outcome_counts(ours), elapsed)
    stamped = prepared.stamp(command)
    summary = apply_summary(prepared, figures, per_change, stamped)
    written, notes = _reports(folder, "results", prepared.parts, ours, summary)
    notes += recover.notes(prepared.recovery)
    written.append(folder.write_summary({"report": stamped.to_json(), **figures}))
    planned = [e["change"] for e in folder.read_plan()]  # as asked: seat changes, not totals
    printed = seat_changes(planned, place_name(prepared.target))
    if printed and any(r.outcome in APPLIED for r in results.values()):
        remember_applied(printed, folder.path)
    written += folder.write_undo(undo.frames(per_change, recover.kept_rows(prepared.recovery)))
    return ApplyRun(
        folder=folder.path,
        reports=written,
        notes=notes,
        stamp=stamped,
        prepared=prepared,
        figures=figures,
        interrupted=sent.interrupted,
    )


def reset_sandbox() -> dict[str, Any]:
    """Forget the built-in sandbox's state, so the next run seeds it afresh from its sheet;
    what `--json` prints: the state file, and whether there was one."""
    from bulkpatch.network.target import forget_sandbox_state, sandbox_state

    return {"reset": True, "state": str(sandbox_state()), "existed": forget_sandbox_state()}


# --- export --------------------------------------------------------------------------------------


def export_file(**options: Any) -> ExportRun:
    """Read what Partner Center holds and write it as a sheet to edit, check and apply: the
    customers (`customers=`, `customers_sheet=` or `all_customers=True`), the filters, where
    calls go and how fast (`target=`, `rate=`, ...) are `export.export`'s."""
    from bulkpatch.export.read import export

    return export(**options)


def template_file(kind: str = "subscriptions", **options: Any) -> ExportRun:
    """`bulkpatch template`: the export's workbook with no rows; `out=`, `reports_base=` as
    `export_file`'s."""
    from bulkpatch.export.read import template

    return template(kind, **options)  # type: ignore[arg-type]
