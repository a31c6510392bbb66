"""The command line: parse options, call one library function, turn errors into exit codes.

Exit codes: 0 every row fine, 1 some rows invalid or failed, 2 the input or usage cannot be used
(nothing sent), 3 stopped by a fault outside the sheet (the run folder cannot be written), 130
interrupted. Errors are one line on stderr; a traceback only with `--verbose`. Options that
several commands share are declared once, in `cli_options`.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bulkpatch.cli_options import (
    JSON,
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
    sandbox_options,
    with_options,
)
from bulkpatch.cli_words import (
    describe,
    print_apply,
    print_check,
    print_export,
    print_mapping,
    print_plan,
)
from bulkpatch.errors import BulkpatchError, StoppedError

if TYPE_CHECKING:  # the heavy modules load only in the commands that use them
    from bulkpatch.results import Prepared
    from bulkpatch.tables import Preview

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Push spreadsheet changes to Microsoft Partner Center: check, plan, apply.",
)
T = TypeVar("T")
STOPPED = 3  # a fault outside the sheet stopped the run; it may have sent something


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


def _run(verbose: bool, job: Callable[[], T], as_json: bool = False) -> T:
    """Run `job`; our errors become one line and exit 2 (3 for a stopped run), anything else
    is a bug report. With `as_json` the failure is also one JSON object on stdout."""
    try:
        return job()
    except BulkpatchError as exc:
        _fail(
            f"bulkpatch: {exc}", STOPPED if isinstance(exc, StoppedError) else 2, verbose, as_json
        )
    except KeyboardInterrupt:
        _fail("bulkpatch: interrupted.", 130, False, as_json)
    except BaseException as exc:  # also a panic inside Polars, which is not an Exception
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        line = (
            f"bulkpatch: unexpected error: {exc!r}. Run again with --verbose for details "
            "and report it."
        )
        _fail(line, 2, verbose, as_json)
    raise AssertionError("unreachable")  # _fail always exits


def _fail(line: str, code: int, verbose: bool, as_json: bool) -> None:
    if verbose:
        traceback.print_exc()
    typer.echo(line, err=True)
    if as_json:
        typer.echo(json.dumps({"error": line.removeprefix("bulkpatch: "), "exit_code": code}))
    raise typer.Exit(code) from None


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
    from bulkpatch.commands import check_file

    out = Output.of(options)
    run = _run(
        out.verbose,
        lambda: check_file(sheet_path, xlsx=xlsx, command=_as_run(), **options),
        out.as_json,
    )
    if not (out.as_json or out.quiet):
        print_mapping(run.parts)
    out.show(run, print_check)
    raise typer.Exit(1 if run.counts()["invalid"] else 0)


def _as_run() -> str:
    """The command line as typed, secrets hidden: the reports say how they were made."""
    from bulkpatch.stamp import command_line

    return command_line(sys.argv[1:])


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
        from bulkpatch.target import sandbox_state

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
    from bulkpatch.commands import plan_file

    out = Output.of(options)
    announce = _announce if not out.quiet else _sandbox_line
    run = _run(
        out.verbose,
        lambda: plan_file(
            sheet_path, progress=out.progress, announce=announce, command=_as_run(), **options
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
) -> None:
    """Send the sheet's changes, read-modify-write, and write a result for every row."""
    from bulkpatch.commands import apply_file

    out = Output.of(options)
    run = _run(
        out.verbose,
        lambda: apply_file(
            sheet_path,
            plan_dir=plan_dir,
            resume_dir=resume,
            progress=out.progress,
            announce=_announce if not out.quiet else _sandbox_line,
            confirm=lambda prepared, preview: _confirm(prepared, preview, yes),
            command=_as_run(),
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
    renewing_within: Annotated[
        str | None,
        typer.Option(
            help="Only subscriptions whose commitment ends between today and then: 30d, 8w, 3m."
        ),
    ] = None,
) -> None:
    """Write what Partner Center holds as a sheet to edit, then check and apply."""
    from bulkpatch.commands import export_file

    out_ = Output.of(options)
    run = _run(
        out_.verbose,
        lambda: export_file(
            all_customers=all_customers,
            customers=customers,
            customers_sheet=customers_sheet,
            kind=kind.value,
            out=out,
            statuses=statuses,
            offer=offer,
            renewing_within=renewing_within,
            progress=out_.progress,
            **options,
        ),
        out_.as_json,
    )
    out_.show(run, print_export)
    raise typer.Exit(1 if run.failed else 0)


# --- auth ----------------------------------------------------------------------------------------

auth_app = typer.Typer(
    help="Sign in to Partner Center, see who is signed in, sign out.", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")


def _provider(profile: str | None):
    from bulkpatch.auth import Credentials, TokenProvider
    from bulkpatch.config import load_profile

    return TokenProvider(Credentials.of(load_profile(profile)))


@auth_app.command("login")
def auth_login(profile: PROFILE = None, verbose: VERBOSE = False) -> None:
    """Sign in with the profile's method (device code shows a code to enter in a browser)."""
    status = _run(
        verbose, lambda: _provider(profile).login(lambda message: typer.echo(message, err=True))
    )
    typer.echo(describe(status))


@auth_app.command("status")
def auth_status(profile: PROFILE = None, as_json: JSON = False, verbose: VERBOSE = False) -> None:
    """Who is signed in, to which tenant, and until when (never the token)."""
    status = _run(verbose, lambda: _provider(profile).status(), as_json)
    typer.echo(json.dumps(status) if as_json else describe(status))
    raise typer.Exit(0 if status["signed_in"] else 1)


@auth_app.command("logout")
def auth_logout(profile: PROFILE = None, verbose: VERBOSE = False) -> None:
    """Forget the cached tokens of the profile."""
    removed = _run(verbose, lambda: _provider(profile).logout())
    typer.echo("Signed out: cached tokens removed." if removed else "No cached tokens to remove.")


# --- sandbox -------------------------------------------------------------------------------------


sandbox_app = typer.Typer(
    help="Serve the Partner Center sandbox over HTTP, or reset the built-in one "
    "(`bulkpatch sandbox reset`)."
)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.callback(invoke_without_command=True)
@with_options(sandbox_options())
def sandbox(
    ctx: typer.Context,
    options: dict[str, Any],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8765,
    db: Annotated[Path, typer.Option(help="SQLite file holding the state across restarts.")] = Path(
        "bulkpatch-sandbox.db"
    ),
    seed_from: Annotated[
        list[Path] | None,
        typer.Option("--seed-from", help="Seed every id this sheet names (repeatable)."),
    ] = None,
    seed: Annotated[
        str | None,
        typer.Option(
            "--seed", metavar="N,M", help="Seed N synthetic customers with M subscriptions each."
        ),
    ] = None,
    verbose: VERBOSE = False,
) -> None:
    """Serve the built-in Partner Center sandbox over HTTP (on 127.0.0.1 by default)."""
    if ctx.invoked_subcommand is not None:
        return
    from bulkpatch.sandbox.serve import configure, serve

    def job() -> None:
        config, reseed = configure(options, db, seed_from or [], seed)
        serve(config, host, port, reseed=reseed, announce=_serving(db))

    _run(verbose, job)


@sandbox_app.command("reset")
def sandbox_reset(as_json: JSON = False, verbose: VERBOSE = False) -> None:
    """Forget the built-in sandbox's state: the next run seeds it afresh from its sheet."""
    from bulkpatch.commands import reset_sandbox

    done = _run(verbose, reset_sandbox, as_json)
    if as_json:
        typer.echo(json.dumps(done))
    elif done["existed"]:
        typer.echo(
            f"Reset the built-in sandbox: removed {done['state']}; the next run seeds it "
            "afresh from its sheet."
        )
    else:
        typer.echo(
            f"The built-in sandbox holds no state yet ({done['state']}); the next run seeds "
            "it from its sheet."
        )


def _serving(db: Path) -> Callable[[str], None]:
    def announce(url: str) -> None:
        typer.echo(
            f"Sandbox serving on {url} (state in {db}). Nothing here reaches Partner Center."
        )
        typer.echo(f"Use it with: bulkpatch apply SHEET --target {url}   (Ctrl-C stops it)")

    return announce


@app.command()
def ui(
    port: UI_PORT = 0,
    host: UI_HOST = "127.0.0.1",
    no_browser: NO_BROWSER = False,
    reports: REPORTS = Path("reports"),
    verbose: VERBOSE = False,
) -> None:
    """Open bulkpatch's page in your browser: check, plan and apply a sheet without a terminal."""
    from bulkpatch.ui import serve

    _run(verbose, lambda: serve(host, port, not no_browser, reports, say=typer.echo))


def main() -> None:
    """Entry point of the `bulkpatch` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
