"""What the command line says, in words: how columns were read, the problems found, what a
plan or a run did, who is signed in. JSON output needs none of it (`--json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from bulkpatch.report.words import plural

if TYPE_CHECKING:
    from bulkpatch.check.checker import Checked
    from bulkpatch.commands.results import ApplyRun, CheckRun, PlanRun
    from bulkpatch.export.result import ExportRun


def print_check(run: CheckRun) -> None:
    print_problems(run.parts)
    for part in run.parts:
        if part.matching.height:  # README, "Matching"
            names = "names its" if part.matching.height == 1 else "name their"
            typer.echo(
                f"  {plural(part.matching.height, 'row')} {names} customer or subscription "
                "without ids: `bulkpatch plan` finds the ids (and shows how) before anything "
                "is sent"
            )
    for note in run.notes:
        typer.echo(f"Note: {note}")
    typer.echo("Report: " + "\n        ".join(str(p) for p in run.reports))


def print_problems(parts: list[Checked]) -> None:
    """Each sheet's counts by outcome and its first problems (row, column, value, what to do)."""
    for part in parts:
        c = part.counts()
        typer.echo(
            f"Checked {part.sheet.label} ({part.sheet.kind}, {plural(sum(c.values()), 'row')}): "
            f"{c['valid']} valid, {c['invalid']} invalid, {c['no_change']} no_change"
        )
        for row, message in part.issues.select("row", "message").head(5).iter_rows():
            typer.echo(f"  row {row}: {message}")
        if part.issues.height > 5:
            typer.echo(f"  ... and {plural(part.issues.height - 5, 'more problem')} in the report")


def print_mapping(parts: list[Checked]) -> None:
    """How each header was read (key, set, expected, delta, note...) and what load skipped,
    on stderr: the user sees it before anything is sent, and `--json` output stays clean."""
    for part in parts:
        typer.echo(f"Columns of {part.sheet.label}:", err=True)
        rows = [
            (m.header, m.role, m.describes or m.field or "", m.remark) for m in part.sheet.mapping()
        ]
        widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
        for *cells, remark in rows:
            line = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            typer.echo(f"  {line}  {remark}".rstrip(), err=True)
        for note in part.sheet.notes:
            typer.echo(f"  Note: {note}", err=True)


def print_plan(run: PlanRun) -> None:
    """The whole story: rows check refused, changes that would not go (conflict, refusal),
    warnings (renewal changes removed), then the counts and what to do next."""
    print_matching(run.prepared.parts)
    print_problems(run.prepared.parts)
    said = [
        (e["change"]["rows"], e.get("error") or "; ".join(e.get("warnings", [])))
        for e in run.entries
        if e["outcome"] in ("conflict", "would_fail") or e.get("warnings")
    ]
    for rows, why in said[:10]:
        typer.echo(f"  row {', '.join(map(str, rows))}: {why}")
    if len(said) > 10:
        typer.echo(f"  ... and {len(said) - 10} more in the plan")
    c, planned = run.counts(), plural(len(run.prepared.changes), "change")
    typer.echo(
        f"Planned {planned} against {run.prepared.target.name}: "
        f"{c['change']} change (to send), {c['no_change']} no_change, {c['conflict']} conflict "
        f"(the sheet's expected values differ), {c['would_fail']} would_fail; "
        f"{plural(run.invalid_rows(), 'row')} invalid"
    )
    typer.echo("Plan: " + "\n      ".join(str(p) for p in run.reports))
    if run.needs_approval:
        typer.echo(
            f"Approval needed ({'; '.join(run.needs_approval)}): a second person reviews and "
            f"approves it with `bulkpatch approve {run.folder}`; then apply it with "
            f"`bulkpatch apply --plan {run.folder}`."
        )
    elif c["change"]:
        typer.echo(f"Apply it with: bulkpatch apply --plan {run.folder}")
    else:
        typer.echo("Nothing to send: no row would change what Partner Center holds.")


def print_matching(parts: list[Checked]) -> None:
    """How each row without ids was matched (README, "Matching"), before the problems."""
    from bulkpatch.commands.matching import shown

    for line in shown(parts):
        typer.echo(line)


def print_apply(run: ApplyRun) -> None:
    print_matching(run.prepared.parts)
    summary = run.summary()
    shown = ", ".join(f"{n} {o}" for o, n in run.counts().items() if n)
    rows = plural(summary["rows"], "row")
    typer.echo(f"Applied {rows} to {summary['target']}: {shown or 'nothing'}")
    if summary["stopped"]:
        typer.echo(f"Stopped: {summary['stopped']}.")
    for note in run.notes:
        typer.echo(f"Note: {note}")
    typer.echo("Results: " + "\n         ".join(str(p) for p in run.reports))


def print_export(run: ExportRun) -> None:
    """What was exported, from where, to which file, and what to do next."""
    if run.template:
        _template(run)
        return
    rows = plural(run.rows, "subscription" if run.kind == "subscriptions" else "order line")
    calls = plural(sum(run.calls.values()), "call")
    read = plural(run.customers - len(run.failed), "customer")
    typer.echo(f"Exported {rows} of {read} from {run.target} to {run.output} ({calls}).")
    _unread(run)
    told = {f"customer {c}: {why}" for c, why in run.failed.items()}  # `_unread` said these
    for note in run.notes:
        if note not in told:
            typer.echo(f"Note: {note}")
    if run.rows:
        typer.echo(f"Next: {run.next_step()}.")
    else:
        typer.echo("Nothing to edit: the file has no rows.")


def _template(run: ExportRun) -> None:
    """Where the template went; `next_step` says where its example row is."""
    if run.output.suffix.lower() == ".csv":
        typer.echo(f"Wrote an empty {run.kind} CSV (the headers only) to {run.output}.")
    else:
        typer.echo(f"Wrote an empty {run.kind} workbook to {run.output}.")
    typer.echo(f"Next: {run.next_step()}.")


def _unread(run: ExportRun) -> None:
    """The customers whose list Partner Center refused, each with why: plainly, since the
    file looks whole without their rows."""
    if not run.failed:
        return
    if len(run.failed) == run.customers:
        typer.echo("Could not read any customer:")
    else:
        typer.echo(
            f"Could not read {len(run.failed)} of {plural(run.customers, 'customer')}; the file "
            "has none of their rows:"
        )
    for customer, why in run.failed.items():
        typer.echo(f"  {customer}: {why}")
