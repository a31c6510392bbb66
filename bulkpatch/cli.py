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
    OUTPUT_OPTIONS,
    PRECEDENCE_HELP,
    PROFILE,
    RUN_OPTIONS,
    SHEET,
    SHEET_OPTIONS,
    VERBOSE,
    Output,
    sandbox_options,
    with_options,
)
from bulkpatch.errors import BulkpatchError, StoppedError

if TYPE_CHECKING:  # the heavy modules load only in the commands that use them
    from bulkpatch.check import Checked
    from bulkpatch.results import ApplyRun, CheckRun, PlanRun, Prepared
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
    run = _run(out.verbose, lambda: check_file(sheet_path, xlsx=xlsx, **options), out.as_json)
    if not (out.as_json or out.quiet):
        _print_mapping(run.parts)
    out.show(run, _print_check)
    raise typer.Exit(1 if run.counts()["invalid"] else 0)


def _print_check(run: CheckRun) -> None:
    for part in run.parts:
        c = part.counts()
        typer.echo(
            f"Checked {part.sheet.label} ({part.sheet.kind}, {sum(c.values())} rows): "
            f"{c['valid']} valid, {c['invalid']} invalid, {c['no_change']} no change"
        )
        for row, message in part.issues.select("row", "message").head(5).iter_rows():
            typer.echo(f"  row {row}: {message}")
        if part.issues.height > 5:
            typer.echo(f"  ... and {part.issues.height - 5} more problems in the report")
    for note in run.notes:
        typer.echo(f"Note: {note}")
    typer.echo("Report: " + "\n        ".join(str(p) for p in run.reports))


def _announce(prepared: Prepared) -> None:
    """Before anything is read or sent: how each column was read, and, for the sandbox, that
    nothing real changes."""
    _print_mapping(prepared.parts)
    _sandbox_line(prepared)


def _sandbox_line(prepared: Prepared) -> None:
    """One plain line, even with --quiet: the sandbox changes nothing real."""
    target = prepared.target
    if target.embedded:
        why = " (not signed in to Partner Center)" if target.defaulted else ""
        typer.echo(f"Using the built-in sandbox{why}: nothing in Partner Center changes.", err=True)


def _print_mapping(parts: list[Checked]) -> None:
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


@app.command(epilog=PRECEDENCE_HELP)
@with_options(*RUN_OPTIONS)
def plan(sheet_path: SHEET, options: dict[str, Any]) -> None:
    """Check, read the current state, and write what apply would change; send nothing."""
    from bulkpatch.commands import plan_file

    out = Output.of(options)
    announce = _announce if not out.quiet else _sandbox_line
    run = _run(
        out.verbose,
        lambda: plan_file(sheet_path, progress=out.progress, announce=announce, **options),
        out.as_json,
    )
    out.show(run, _print_plan)


def _print_plan(run: PlanRun) -> None:
    counts = run.counts()
    typer.echo(
        f"Planned {len(run.prepared.changes)} changes against "
        f"{run.prepared.target.name}: {counts['change']} to send, "
        f"{counts['no_change']} already done, {counts['conflict']} in conflict with the sheet's "
        f"expected values, {counts['would_fail']} would fail"
    )
    typer.echo("Plan: " + "\n      ".join(str(p) for p in run.reports))
    typer.echo(f"Apply it with: bulkpatch apply --plan {run.folder}")


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
            **options,
        ),
        out.as_json,
    )
    summary = run.summary()
    out.show(run, _print_apply)
    if run.interrupted or summary["stopped"]:
        typer.echo(f"Resume with: {summary['resume']}", err=True)
    if run.interrupted:
        raise typer.Exit(130)
    if summary["stopped"]:  # the token refused, the service unreachable: a fault outside the sheet
        raise typer.Exit(STOPPED)
    counts = run.counts()
    stopped = ("invalid", "conflict", "failed", "not_sent")
    raise typer.Exit(1 if any(counts[o] for o in stopped) else 0)


def _print_apply(run: ApplyRun) -> None:
    summary = run.summary()
    shown = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in run.counts().items() if n)
    typer.echo(f"Applied {summary['rows']} rows to {summary['target']}: {shown or 'nothing'}")
    if summary["stopped"]:
        typer.echo(f"Stopped: {summary['stopped']}.")
    for note in run.notes:
        typer.echo(f"Note: {note}")
    typer.echo("Results: " + "\n         ".join(str(p) for p in run.reports))


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
    typer.echo(_describe(status))


@auth_app.command("status")
def auth_status(profile: PROFILE = None, as_json: JSON = False, verbose: VERBOSE = False) -> None:
    """Who is signed in, to which tenant, and until when (never the token)."""
    status = _run(verbose, lambda: _provider(profile).status(), as_json)
    typer.echo(json.dumps(status) if as_json else _describe(status))
    raise typer.Exit(0 if status["signed_in"] else 1)


@auth_app.command("logout")
def auth_logout(profile: PROFILE = None, verbose: VERBOSE = False) -> None:
    """Forget the cached tokens of the profile."""
    removed = _run(verbose, lambda: _provider(profile).logout())
    typer.echo("Signed out: cached tokens removed." if removed else "No cached tokens to remove.")


def _describe(status: dict) -> str:
    if status["method"] == "token":
        return _describe_token(status)
    if not status["signed_in"]:
        return f"Not signed in ({status['method']}, tenant {status['tenant']})."
    return (
        f"Signed in as {status['who']} to tenant {status['tenant']} ({status['method']}); "
        f"token valid until {status['expires']}."
    )


def _describe_token(status: dict) -> str:
    source = status["source"]
    if not status["set"]:
        return (
            f"Not signed in: {source} is not set and no profile names a sign-in method. Set "
            f"{source} to a Partner Center token, or sign in with a profile (see `bulkpatch "
            "auth login --help`). Until then, commands use the built-in sandbox."
        )
    if status["who"] is None and status["tenant"] is None:
        return f"Using the token in {source} (it does not say who it belongs to)."
    until = status["expires"] or "an unknown time"
    state = "valid until" if status["signed_in"] else "EXPIRED at"
    return (
        f"Using the token in {source}: {status['who'] or 'unknown identity'} in tenant "
        f"{status['tenant'] or 'unknown'}, {state} {until}."
    )


# --- sandbox -------------------------------------------------------------------------------------


@app.command()
@with_options(sandbox_options())
def sandbox(
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
    from bulkpatch.sandbox.serve import configure, serve

    def job() -> None:
        config, reseed = configure(options, db, seed_from or [], seed)
        serve(config, host, port, reseed=reseed, announce=_serving(db))

    _run(verbose, job)


def _serving(db: Path) -> Callable[[str], None]:
    def announce(url: str) -> None:
        typer.echo(
            f"Sandbox serving on {url} (state in {db}). Nothing here reaches Partner Center."
        )
        typer.echo(f"Use it with: bulkpatch apply SHEET --target {url}   (Ctrl-C stops it)")

    return announce


def main() -> None:
    """Entry point of the `bulkpatch` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
