"""The library function behind `bulkpatch apply`: a sheet, a plan folder or a resume sent,
read-modify-write, under the controls, and its results written.

It starts where `plan_file` does (`commands.api`: the sheet checked, matched and turned into
changes in a run folder), then holds the sheet (one run of it at a time), writes its audit
line, sends through the session, and writes the results, the to-fix and the undo sheets.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkpatch import settings as config
from bulkpatch.catalog.fields import Kind
from bulkpatch.commands import matching
from bulkpatch.commands.api import (
    _changes,
    _checked,
    _matched,
    _options,
    _plan,
    _prepare,
    _reports,
    _write_matched,
)
from bulkpatch.commands.controls import audited, gate, no_sheet_when_required
from bulkpatch.commands.prepared import Options, Prepared
from bulkpatch.commands.results import ApplyRun, apply_figures
from bulkpatch.commands.summaries import apply_summary
from bulkpatch.errors import FolderFault, InputError, StoppedError
from bulkpatch.outcomes import APPLIED
from bulkpatch.plan.changes import Change
from bulkpatch.report.rows import outcome_counts, result_rows
from bulkpatch.report.stamp import file_sha256
from bulkpatch.report.totals import Preview
from bulkpatch.report.totals import preview as plan_preview
from bulkpatch.report.words import plural
from bulkpatch.runs import recover
from bulkpatch.runs.claim import Claim, claim
from bulkpatch.runs.folder import RunFolder
from bulkpatch.runs.ledger import not_again, remember_applied, seat_changes
from bulkpatch.settings import Settings

# The network side (asyncio, httpx, msal) is imported by the functions that call out: `check`
# never does, and these imports cost it a tenth of its run time.
if TYPE_CHECKING:
    from bulkpatch.apply.outcome import Result
    from bulkpatch.apply.session import Sent, Session, Shown, Watch
    from bulkpatch.network.target import Target


def apply_file(
    path: str | Path | None = None,
    *,
    plan_dir: str | Path | None = None,
    resume_dir: str | Path | None = None,
    confirm: Callable[[Prepared, Callable[[], Preview]], bool] | None = None,
    sheet: str | None = None,
    kind: Kind | None = None,
    target: str | None = None,
    profile: str | config.Profile | None = None,
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
    settings: Settings | None = None,
    rate: float | None = None,
    order_rate: float | None = None,
    limit_scope: str | None = None,
    concurrency: int | None = None,
    notes: list[str] | None = None,
    accept_differences: bool = False,
    add_again: bool = False,
    keep_renewal_changes: bool = False,
    all_or_nothing: bool = False,
    progress: str | bool | Watch = False,
    announce: Callable[[Prepared], None] | None = None,
    command: str | None = None,
) -> ApplyRun:
    """Apply a sheet (or a plan folder, or resume a run folder) and write the results.

    The keywords are `plan_file`'s, and `all_or_nothing`: send only when every row is valid
    and none would be refused (else nothing is sent). `confirm(prepared, preview)` may stop
    the run before anything is sent; `preview()` reads the current state and says what would
    happen (the guard rail of a live run).
    """
    if sum(x is not None for x in (path, plan_dir, resume_dir)) != 1:
        raise InputError("give exactly one of SHEET, --plan DIR or --resume DIR.")
    o = _options(locals())
    chosen, settings = o.resolved()
    # The sheet is held before the ledger of applied seat changes is read (see `claim`); a
    # resume reads no ledger, and its own folder's lock speaks first.
    held = _claimed(path, plan_dir) if resume_dir is None else None
    try:
        prepared, done = _start(path, plan_dir, resume_dir, o, chosen)
        folder = prepared.folder
        try:
            held = held or claim(folder.manifest["sha256"], folder.source)
        except InputError:
            folder.unlock()
            raise
        held.name(folder.path)
        event = "resume" if resume_dir is not None else "apply"
        run = _apply(prepared, done, settings, confirm, o, chosen, event)
    finally:
        if held:
            held.release()
    if plan_dir is not None:
        run.notes.append(f"The plan in {plan_dir} is unchanged; this run's files are here.")
    return run


def _claimed(path: str | Path | None, plan_dir: str | Path | None) -> Claim | None:
    """The hold on the sheet given, or on the one the plan was made for; None for a file
    that is not there (loading it says so)."""
    if path is not None:
        return claim(file_sha256(Path(path)), Path(path)) if Path(path).is_file() else None
    planned = RunFolder.opened(plan_dir, None)  # type: ignore[arg-type]
    return claim(planned.manifest["sha256"], planned.source)


def _apply(
    prepared: Prepared,
    done: dict[str, dict[str, Any]],
    settings: Settings,
    confirm: Callable[[Prepared, Callable[[], Preview]], bool] | None,
    o: Options,
    chosen: config.Profile,
    event: str,
) -> ApplyRun:
    """Send what the run's folder (held by this process) has left to send, and write the
    results; `event` (apply, resume) is what the audit log calls it."""
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
        _audit_start(prepared, chosen, event, len(done), o.command)
        session = prepared.session(settings, o.progress)  # its imports are not the run's time
        started = time.monotonic()
        sent = _send(prepared, session, done)
        results = {**{k: _result(v) for k, v in done.items()}, **sent.results}
        try:
            run = _finish(prepared, sent, results, time.monotonic() - started, o.command)
        except FolderFault as fault:
            raise fault.after(_applied(sent.results)) from None
        _audit_end(run, chosen, f"{event}d" if event == "resume" else "applied", results)
    finally:
        folder.unlock()
    return run


def _audit_start(
    prepared: Prepared, chosen: config.Profile, event: str, done: int, command: str | None
) -> None:
    """The audit line before anything is sent: a log that cannot be written sends nothing."""
    found = prepared.folder.approval()
    try:
        audited(
            event,
            prepared.target,
            chosen,
            prepared.folder,
            command,
            changes=len(prepared.changes),
            already_done=done,
            approved_by=found.get("by") if found else None,
            approved_at=found.get("at") if found else None,
        )
    except StoppedError as fault:
        raise StoppedError(f"{fault}, so nothing was sent.") from None


def _audit_end(run: ApplyRun, chosen: config.Profile, event: str, results: dict) -> None:
    """The audit line of what the run did: rows by outcome, seats added and removed."""
    moved = [r.diffs.get("quantity") for r in results.values() if r.outcome in APPLIED]
    moved = [(b or 0, a or 0) for b, a in (m for m in moved if m)]
    try:
        audited(
            event,
            run.prepared.target,
            chosen,
            run.prepared.folder,
            run.stamp.command if run.stamp else None,
            counts=run.counts(),
            seats_added=sum(max(a - b, 0) for b, a in moved),
            seats_removed=sum(max(b - a, 0) for b, a in moved),
            stopped=run.figures.get("stopped"),
        )
    except StoppedError as fault:
        raise StoppedError(
            f"{fault}: the changes were sent and their results are in {run.folder}."
        ) from None


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
    """How many changes reached Partner Center (a stop reports them)."""
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
    from bulkpatch.network.target import place_name, resolve

    if path is not None:
        no_sheet_when_required(chosen, Path(path), resolve(o.target, chosen), o.command)
        prepared = _prepare(Path(path), o, chosen, fresh=True)
        prepared.folder.lock()
        prepared.folder.write_plan([{"change": c.to_json()} for c in prepared.changes])
        return prepared, {}
    if plan_dir is not None:
        planned = RunFolder.opened(plan_dir, o.target)
        gate(planned, _resolved(planned.settings, chosen), chosen, o.command)
        if not o.add_again:
            entries = [e["change"] for e in planned.read_plan()]
            place = place_name(_resolved(planned.settings, chosen))
            not_again(planned.source, entries, place, planned.settings["target"])
        folder = RunFolder.from_plan(plan_dir, o.target, o.out, o.reports_base)
    else:
        folder = RunFolder.resumed(resume_dir, o.target)
        gate(folder, _resolved(folder.settings, chosen), chosen, o.command, resuming=True)
    folder.lock()
    try:
        saved = folder.settings
        resolved = _resolved(saved, chosen)
        parts, listed = _checked(folder.sheet, saved), {}
        planned_changes = [e["change"] for e in folder.read_plan()]
        if resume_dir is not None:  # the ids the plan recorded: what was sent is about them
            parts = matching.recorded(parts, [Change(**c) for c in planned_changes])
        else:  # matched again from fresh reads: a plan whose names moved is refused
            parts, listed = _matched(parts, resolved, folder.sheet, o)
            matching.moved(parts, planned_changes)
        prepared = _changes(folder, resolved, parts)
        prepared.listed = listed
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
    written += _write_matched(prepared)
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
