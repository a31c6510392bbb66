"""The library API: one function per command, each reading as the pipeline.

`check_file` checks a sheet; `plan_file` also reads Partner Center and writes what would
change (`apply_file`, which sends it, is `commands.apply`'s; `export_file`, what Partner
Center holds as a sheet to edit, is the export stage's own). Each returns a result of one
shape (`results`), which the CLI and the web page show. Settings merge here (keyword,
environment, profile, default): a script gets what the CLI gets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch import settings as config
from bulkpatch.catalog.fields import Kind
from bulkpatch.check.checker import Checked, check
from bulkpatch.commands import matching
from bulkpatch.commands.controls import audited
from bulkpatch.commands.prepared import Options, Prepared
from bulkpatch.commands.results import CheckRun, PlanRun
from bulkpatch.commands.summaries import check_summary, plan_summary
from bulkpatch.controls.approval import Policy, Review
from bulkpatch.errors import StoppedError
from bulkpatch.load.reader import load
from bulkpatch.outcomes import PLAN_OUTCOMES
from bulkpatch.plan.changes import Change
from bulkpatch.plan.changes import changes as plan_changes
from bulkpatch.report import writers as report
from bulkpatch.report.rows import Held, outcome_counts, plan_rows
from bulkpatch.report.stamp import Digest, now, run_by, stamp
from bulkpatch.report.totals import customer_names, seat_totals
from bulkpatch.report.words import fix_note
from bulkpatch.runs.folder import RunFolder, make_folder
from bulkpatch.runs.ledger import not_again
from bulkpatch.settings import Settings

# The network side (asyncio, httpx, msal) is imported by the functions that call out: `check`
# never does, and these imports cost it a tenth of its run time.
if TYPE_CHECKING:
    from bulkpatch.apply.session import Shown, Watch
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
    parts, listed = _matched(_checked(source, saved), resolved, source, o)
    if fresh and not o.add_again and any(p.sheet.has_delta for p in parts):
        asked, _ = _asked(parts, "")
        not_again(source, [c.to_json() for c in asked], place_name(resolved), saved["target"])
    folder = RunFolder.new(source, saved, o.out, o.reports_base, fresh, run_by(resolved))
    prepared = _changes(folder, resolved, parts)
    prepared.listed = listed
    return prepared


def _matched(
    parts: list[Checked], target: Target, source: Path, o: Options
) -> tuple[list[Checked], dict[str, Any]]:
    """The sheets with their rows without ids matched from fresh reads (README, "Matching"),
    and the subscription lists read (the run's reads of those customers)."""
    if not matching.needs_matching(parts):
        return parts, {}
    from bulkpatch.apply.session import Session

    return matching.match_parts(parts, Session(target, source, o.resolved()[1], o.progress))


def _write_matched(prepared: Prepared) -> list[Path]:
    """`matched.csv` (or `.xlsx`: the input's format); none when no row was matched."""
    if all(p.found is None for p in prepared.parts):
        return []
    tables = [report.given(p.sheet) for p in prepared.parts]
    excel = prepared.parts[0].sheet.sheet_name is not None
    return prepared.folder.write_matched(tables, excel)


def plan_file(
    path: str | Path,
    *,
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
    progress: str | bool | Watch = False,
    announce: Callable[[Prepared], None] | None = None,
    command: str | None = None,
) -> PlanRun:
    """Check, read the current state with as few calls as possible, and write the plan files.

    Where calls go and how fast (`target`, `profile`, `rate`, ...) merge as on the command
    line: the keyword, then the environment, then the profile, then the default. `sheet` and
    `kind` choose a workbook's sheet; `notes` are headers to keep as notes; `progress` is
    "bar", "lines" or a page's `Watch`; `announce` hears the run before anything is read.
    """
    o = _options(locals())
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
    written += _write_matched(prepared)
    counts = outcome_counts(
        [pl.DataFrame({"outcome": [e["outcome"] for e in entries]}, schema={"outcome": pl.String})],
        PLAN_OUTCOMES,
    )
    required = _plan_audited(prepared, chosen, entries, counts, o.command)
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
        needs_approval=required,
    )


def _options(given: dict[str, Any]) -> Options:
    """The keywords a public function was given (its `locals()`, first thing), as `Options`."""
    return Options(
        **{f.name: given[f.name] for f in dataclasses.fields(Options) if f.name in given}
    )


def _plan_audited(
    prepared: Prepared,
    chosen: config.Profile,
    entries: list[dict[str, Any]],
    counts: dict[str, int],
    command: str | None,
) -> list[str]:
    """The plan's audit line (a log that cannot be written stops the command, exit 3), and
    why the plan needs approval before it is sent (none: it needs none)."""
    review = Review.of(entries)
    required = Policy.of(chosen).reasons(entries)
    try:
        audited(
            "plan",
            prepared.target,
            chosen,
            prepared.folder,
            command,
            counts=counts,
            seats_added=review.added,
            seats_removed=review.removed,
            required_by=required,
        )
    except StoppedError as fault:
        raise StoppedError(f"{fault}: the plan in {prepared.folder.path} is not audited.") from None
    return required


def _plan(prepared: Prepared, settings: Settings, progress: Shown) -> list[dict[str, Any]]:
    """One plan entry per change: what was read, the assessment, and the body to send."""
    from bulkpatch.apply.outcome import planned

    currents = prepared.session(settings, progress).read(prepared.changes)
    now = datetime.now(UTC)
    return [planned(change, currents[change.key], now) for change in prepared.changes]
