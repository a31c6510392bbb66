"""The command line: parse options, call one library function, turn errors into exit codes.

Exit codes: 0 every row fine, 1 some rows invalid or failed, 2 the input or usage cannot be used
(nothing sent), 3 stopped by a fault outside the sheet (the run folder cannot be written), 130
interrupted. Errors are one line on stderr; a traceback only with `--verbose`. Options that
several commands share are declared once, in `cli_options`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkpatch import portable
from bulkpatch.cli import controls
from bulkpatch.cli.groups import auth_app, sandbox_app
from bulkpatch.cli.options import (
    NO_BROWSER,
    OUTPUT_OPTIONS,
    PRECEDENCE_HELP,
    PROFILE,
    REPORTS,
    RUN_OPTIONS,
    SETTING_OPTIONS,
    SHEET,
    SHEET_OPTIONS,
    TARGET_OPTIONS,
    UI_HOST,
    UI_PORT,
    VERBOSE,
    Output,
    SheetKind,
    with_options,
)
from bulkpatch.cli.run import STOPPED, as_run, run_job
from bulkpatch.cli.words import (
    print_apply,
    print_check,
    print_export,
    print_mapping,
    print_plan,
)
from bulkpatch.errors import BulkpatchError

if TYPE_CHECKING:  # the heavy modules load only in the commands that use them
    from bulkpatch.commands.prepared import Prepared
    from bulkpatch.report.totals import Preview

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Push spreadsheet changes to Microsoft Partner Center: check, plan, apply.",
)


def _version(shown: bool) -> None:
    if shown:
        from bulkpatch import __version__

        typer.echo(f"bulkpatch {__version__}")
        raise typer.Exit(0)


@app.callback()
def _commands(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and stop."
        ),
    ] = False,
) -> None:
    """Check a sheet, then apply it: see each command's --help."""


# --- check, plan, apply --------------------------------------------------------------------------


@app.command()
@with_options(SHEET_OPTIONS, OUTPUT_OPTIONS)
def check(
    sheet_path: SHEET,
    options: dict[str, Any],
    xlsx: Annotated[
        bool,
        typer.Option(
            "--xlsx/--no-xlsx", help="Also write check.xlsx (slow for very large sheets)."
        ),
    ] = True,
) -> None:
    """Check a sheet against Partner Center's field rules and write a report; send nothing."""
    from bulkpatch.report.stamp import Digest

    Digest.of(sheet_path)  # its SHA-256 for the report, hashed while the rest loads
    from bulkpatch.commands.api import check_file

    out = Output.of(options)
    run = run_job(
        out.verbose,
        lambda: check_file(sheet_path, xlsx=xlsx, command=as_run(), **options),
        out.as_json,
    )
    if not (out.as_json or out.quiet):
        print_mapping(run.parts)
    out.show(run, print_check)
    raise typer.Exit(1 if run.counts()["invalid"] else 0)


def _announce(prepared: Prepared) -> None:
    """Before anything is read or sent: how each column was read, and, for the sandbox, that
    nothing real changes."""
    print_mapping(prepared.parts)
    _sandbox_line(prepared)


def _sandbox_line(prepared: Prepared) -> None:
    """Plain words, even with --quiet: the sandbox changes nothing real, and where its state
    lives between runs (so a second run of a sheet shows what the first one did)."""
    target = prepared.target
    if target.embedded:
        from bulkpatch.network.target import sandbox_state

        why = " (not signed in to Partner Center)" if target.defaulted else ""
        typer.echo(f"Using the built-in sandbox{why}: nothing in Partner Center changes.", err=True)
        typer.echo(
            f"Its state stays in {sandbox_state()} between runs; `bulkpatch sandbox reset` "
            "starts it afresh.",
            err=True,
        )


@app.command(epilog=PRECEDENCE_HELP)
@with_options(*RUN_OPTIONS)
def plan(sheet_path: SHEET, options: dict[str, Any]) -> None:
    """Check, read the current state, and write what apply would change; send nothing."""
    from bulkpatch.commands.api import plan_file

    out = Output.of(options)
    announce = _announce if not out.quiet else _sandbox_line
    run = run_job(
        out.verbose,
        lambda: plan_file(
            sheet_path, progress=out.progress, announce=announce, command=as_run(), **options
        ),
        out.as_json,
    )
    out.show(run, print_plan)
    stopped = run.invalid_rows() or run.counts()["conflict"] or run.counts()["would_fail"]
    raise typer.Exit(1 if stopped else 0)


@app.command(epilog=PRECEDENCE_HELP)
@with_options(*RUN_OPTIONS)
def apply(
    options: dict[str, Any],
    sheet_path: Annotated[
        Path | None, typer.Argument(metavar="[SHEET]", help="CSV or Excel file.")
    ] = None,
    plan_dir: Annotated[
        Path | None,
        typer.Option("--plan", help="Apply exactly this plan folder (from `bulkpatch plan`)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Finish an interrupted run folder; nothing finished is sent again."
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before changing production (for automation).")
    ] = False,
    all_or_nothing: Annotated[
        bool,
        typer.Option(
            "--all-or-nothing",
            help="Send only when every row is valid and none would be refused (as plan "
            "finds them); otherwise send nothing, and the to-fix file says why.",
        ),
    ] = False,
) -> None:
    """Send the sheet's changes, read-modify-write, and write a result for every row."""
    from bulkpatch.commands.apply import apply_file

    out = Output.of(options)
    run = run_job(
        out.verbose,
        lambda: apply_file(
            sheet_path,
            plan_dir=plan_dir,
            resume_dir=resume,
            progress=out.progress,
            announce=_announce if not out.quiet else _sandbox_line,
            confirm=lambda prepared, preview: _confirm(prepared, preview, yes),
            command=as_run(),
            all_or_nothing=all_or_nothing,
            **options,
        ),
        out.as_json,
    )
    summary = run.summary()
    out.show(run, print_apply)
    if run.interrupted or summary["stopped"]:
        typer.echo(f"Resume with: {summary['resume']}", err=True)
    if run.interrupted:
        raise typer.Exit(130)
    if summary["stopped"]:  # the token refused, the service unreachable: a fault outside the sheet
        raise typer.Exit(STOPPED)
    counts = run.counts()
    stopped = ("invalid", "conflict", "failed", "not_sent")
    raise typer.Exit(1 if any(counts[o] for o in stopped) else 0)


def _confirm(prepared: Prepared, preview: Callable[[], Preview], yes: bool) -> bool:
    """A live run shows what it will do and asks; automation passes --yes."""
    if not prepared.target.live or yes:
        return True
    if not sys.stdin.isatty():
        raise BulkpatchError(
            "refusing to change production without a terminal to confirm: "
            "pass --yes to run unattended."
        )
    typer.echo(f"About to change {prepared.target.name}:", err=True)
    for line in preview().lines():
        typer.echo(f"  {line}", err=True)
    return typer.confirm("Send these changes?", default=False, err=True)


# --- export --------------------------------------------------------------------------------------


@app.command(epilog=PRECEDENCE_HELP)
@with_options(TARGET_OPTIONS, SETTING_OPTIONS, OUTPUT_OPTIONS)
def export(
    options: dict[str, Any],
    all_customers: Annotated[
        bool, typer.Option("--all", help="Every customer of the partner (read page by page).")
    ] = False,
    customers: Annotated[
        list[str] | None,
        typer.Option("--customer", metavar="ID", help="A customer's tenant id (repeatable)."),
    ] = None,
    customers_sheet: Annotated[
        Path | None,
        typer.Option(
            "--customers", metavar="SHEET", help="The customers a sheet's Customer ID column names."
        ),
    ] = None,
    kind: Annotated[
        SheetKind, typer.Option(help="One row per subscription, or per order line item.")
    ] = SheetKind.subscriptions,
    out: Annotated[
        Path | None,
        typer.Option(help="FILE.xlsx or FILE.csv (default: reports/<timestamp>-export.xlsx)."),
    ] = None,
    statuses: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only rows with this status (repeatable)."),
    ] = None,
    offer: Annotated[
        str | None, typer.Option(help="Only this offer: a part of its name, or its offer id.")
    ] = None,
    reseller: Annotated[
        str | None,
        typer.Option(
            metavar="ID",
            help="Only the subscriptions this indirect reseller provided (its partner id, the "
            "subscriptions' partnerId; for indirect providers).",
        ),
    ] = None,
    renewing_within: Annotated[
        str | None,
        typer.Option(
            help="Only subscriptions whose commitment ends between today and then: 30d, 8w, "
            "3m; and, unless --status says otherwise, only active or suspended ones (those that "
            "renew or can still be changed before renewal; expired, disabled and deleted do not)."
        ),
    ] = None,
) -> None:
    """Write what Partner Center holds as a sheet to edit, then check and apply."""
    from bulkpatch.export.read import export_file

    out_ = Output.of(options)
    run = run_job(
        out_.verbose,
        lambda: export_file(
            all_customers=all_customers,
            customers=customers,
            customers_sheet=customers_sheet,
            kind=kind.value,
            out=out,
            statuses=statuses,
            offer=offer,
            reseller=reseller,
            renewing_within=renewing_within,
            progress=out_.progress,
            **options,
        ),
        out_.as_json,
    )
    out_.show(run, print_export)
    raise typer.Exit(1 if run.failed else 0)


@app.command()
@with_options(OUTPUT_OPTIONS)
def template(
    options: dict[str, Any],
    kind: Annotated[SheetKind, typer.Argument(help="subscriptions or orders.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="FILE.xlsx, or FILE.csv for the headers only (default: "
            "reports/<timestamp>-template-<kind>.xlsx)."
        ),
    ] = None,
) -> None:
    """Write the export's workbook with no rows, to fill from other sources."""
    from bulkpatch.export.read import template_file

    out_ = Output.of(options)
    run = run_job(out_.verbose, lambda: template_file(kind.value, out=out), out_.as_json)
    out_.show(run, print_export)


app.add_typer(auth_app, name="auth")
app.add_typer(sandbox_app, name="sandbox")
app.command("approve")(controls.approve)
app.command("audit")(controls.audit)


@app.command()
def ui(
    port: UI_PORT = 0,
    host: UI_HOST = "127.0.0.1",
    no_browser: NO_BROWSER = False,
    reports: REPORTS = Path("reports"),
    profile: PROFILE = None,
    verbose: VERBOSE = False,
) -> None:
    """Open bulkpatch's page in your browser: check, plan and apply a sheet without a terminal."""
    from bulkpatch.ui import serve

    browser = not no_browser
    run_job(verbose, lambda: serve(host, port, browser, reports, say=typer.echo, profile=profile))


def main() -> None:
    """Entry point of the `bulkpatch` console script."""
    portable.break_is_ctrl_c()  # Windows: Ctrl-Break, as a scheduler sends it, is Ctrl-C
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
