"""The command line: parse options, call one library function, turn errors into exit codes.

Exit codes: 0 every row fine, 1 some rows invalid or failed, 2 the input or usage cannot be used,
130 interrupted. Errors are one line on stderr; a traceback only with `--verbose`. Options that
several commands share are declared once, as groups (`_with`); the run settings' options come
from `config.Settings` and the sandbox's from `SandboxConfig`, so help and defaults never drift.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import traceback
import typing
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bulkpatch.config import USER_SETTINGS
from bulkpatch.errors import BulkpatchError

if TYPE_CHECKING:  # the heavy modules load only in the commands that use them
    from bulkpatch.commands import ApplyRun, CheckRun, PlanRun, Prepared
    from bulkpatch.tables import Preview
    from bulkpatch.target import Target

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Push spreadsheet changes to Microsoft Partner Center: check, plan, apply.",
)
T = TypeVar("T")


@app.callback()
def _commands() -> None:
    """Check a sheet, then apply it: see each command's --help."""


class SheetKind(StrEnum):
    """What the rows of a sheet describe."""

    subscriptions = "subscriptions"
    orders = "orders"


def _run(verbose: bool, job: Callable[[], T]) -> T:
    """Run `job`; our errors become one line and exit 2, anything else is a bug report."""
    try:
        return job()
    except BulkpatchError as exc:
        if verbose:
            traceback.print_exc()
        typer.echo(f"bulkpatch: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("bulkpatch: interrupted.", err=True)
        raise typer.Exit(130) from None
    except BaseException as exc:  # also a panic inside Polars, which is not an Exception
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        if verbose:
            traceback.print_exc()
        typer.echo(
            f"bulkpatch: unexpected error: {exc!r}. Run again with --verbose for details "
            "and report it.",
            err=True,
        )
        raise typer.Exit(2) from None


# --- option groups, declared once ----------------------------------------------------------------


def _option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _with(*groups: list[inspect.Parameter]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a command the options of `groups`; it receives their values as `options`."""

    def decorate(command: Callable[..., T]) -> Callable[..., T]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()]
        own = [p for p in own if p.name != "options"]
        extra = [p for group in groups for p in group]
        names = {p.name for p in extra}

        @functools.wraps(command)
        def wrapper(**given: Any) -> T:
            options = {
                k: v.value if isinstance(v, StrEnum) else v for k, v in given.items() if k in names
            }
            return command(**{k: v for k, v in given.items() if k not in names}, options=options)

        wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *extra]}
        return wrapper

    return decorate


VERBOSE = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")]
JSON = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
QUIET = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
SHEET = Annotated[Path, typer.Argument(metavar="SHEET", help="CSV or Excel file.")]
SHEET_OPTIONS = [
    _option("sheet", Annotated[str | None, typer.Option(help="Worksheet name in a workbook.")]),
    _option(
        "kind",
        Annotated[
            SheetKind | None,
            typer.Option(help="What the rows describe (default: from the headers)."),
        ],
    ),
    _option(
        "out",
        Annotated[
            Path | None,
            typer.Option(help="Run folder (default: reports/<timestamp>-<sheet name>/)."),
        ],
    ),
]
PROFILE = Annotated[
    str | None,
    typer.Option(help="Profile from bulkpatch.toml (working folder, then ~/.config/bulkpatch/)."),
]
TARGET_OPTIONS = [
    _option(
        "target",
        Annotated[
            str | None,
            typer.Option(
                help="sandbox (built in), production, or a URL such as a `bulkpatch sandbox`. "
                "Default: production when signed in (BULKPATCH_TOKEN or a profile), else the "
                "sandbox."
            ),
        ],
    ),
    _option("profile", PROFILE),
]
SETTING_OPTIONS = [
    _option(
        name,
        Annotated[
            {int: int, str: str}.get(key.type, float) | None,  # type: ignore[call-overload]
            typer.Option(
                f"--{name.replace('_', '-')}",
                help=key.help
                + (f" Default: {key.default}." if key.default is not None else "")
                + f" Environment: {key.env}.",
            ),
        ],
    )
    for name, key in USER_SETTINGS.items()
]
PRECEDENCE_HELP = (
    "Settings come from the command-line flag, then the environment, then the profile, then "
    "the default."
)


# --- check, plan, apply --------------------------------------------------------------------------


@app.command()
@_with(SHEET_OPTIONS)
def check(
    sheet_path: SHEET,
    options: dict[str, Any],
    xlsx: Annotated[
        bool,
        typer.Option(
            "--xlsx/--no-xlsx", help="Also write check.xlsx (slow for very large sheets)."
        ),
    ] = True,
    as_json: JSON = False,
    verbose: VERBOSE = False,
) -> None:
    """Check a sheet against Partner Center's field rules and write a report; send nothing."""
    from bulkpatch.commands import check_file

    run = _run(verbose, lambda: check_file(sheet_path, xlsx=xlsx, **options))
    typer.echo(json.dumps(run.summary())) if as_json else _print_check(run)
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


def _announce(target: Target) -> None:
    """One plain line before anything is read or sent: the sandbox changes nothing real."""
    if target.embedded:
        why = " (not signed in to Partner Center)" if target.defaulted else ""
        typer.echo(f"Using the built-in sandbox{why}: nothing in Partner Center changes.", err=True)


def _progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@app.command(epilog=PRECEDENCE_HELP)
@_with(TARGET_OPTIONS, SHEET_OPTIONS, SETTING_OPTIONS)
def plan(
    sheet_path: SHEET,
    options: dict[str, Any],
    as_json: JSON = False,
    quiet: QUIET = False,
    verbose: VERBOSE = False,
) -> None:
    """Check, read the current state, and write what apply would change; send nothing."""
    from bulkpatch.commands import plan_file

    run = _run(
        verbose,
        lambda: plan_file(sheet_path, progress=_progress(quiet), announce=_announce, **options),
    )
    typer.echo(json.dumps(run.summary())) if as_json else _print_plan(run)


def _print_plan(run: PlanRun) -> None:
    counts = run.counts()
    typer.echo(
        f"Planned {len(run.prepared.changes)} changes against "
        f"{run.prepared.target.name}: {counts['change']} to send, "
        f"{counts['no_change']} already done, {counts['would_fail']} would fail"
    )
    typer.echo("Plan: " + "\n      ".join(str(p) for p in run.reports))
    typer.echo(f"Apply it with: bulkpatch apply --plan {run.folder}")


@app.command(epilog=PRECEDENCE_HELP)
@_with(TARGET_OPTIONS, SHEET_OPTIONS, SETTING_OPTIONS)
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
    as_json: JSON = False,
    quiet: QUIET = False,
    verbose: VERBOSE = False,
) -> None:
    """Send the sheet's changes, read-modify-write, and write a result for every row."""
    from bulkpatch.commands import apply_file

    run = _run(
        verbose,
        lambda: apply_file(
            sheet_path,
            plan_dir=plan_dir,
            resume_dir=resume,
            progress=_progress(quiet),
            announce=_announce,
            confirm=lambda prepared, preview: _confirm(prepared, preview, yes),
            **options,
        ),
    )
    summary = run.summary()
    typer.echo(json.dumps(summary)) if as_json else _print_apply(run)
    if run.interrupted or summary["stopped"]:
        typer.echo(f"Resume with: {summary['resume']}", err=True)
    if run.interrupted:
        raise typer.Exit(130)
    counts = run.counts()
    raise typer.Exit(1 if counts["invalid"] + counts["failed"] + counts["not_sent"] else 0)


def _print_apply(run: ApplyRun) -> None:
    summary = run.summary()
    shown = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in run.counts().items() if n)
    typer.echo(f"Applied {summary['rows']} rows to {summary['target']}: {shown or 'nothing'}")
    if summary["stopped"]:
        typer.echo(f"Stopped: {summary['stopped']}.")
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
    status = _run(verbose, lambda: _provider(profile).status())
    typer.echo(json.dumps(status) if as_json else _describe(status))
    raise typer.Exit(0 if status["signed_in"] else 1)


@auth_app.command("logout")
def auth_logout(profile: PROFILE = None, verbose: VERBOSE = False) -> None:
    """Forget the cached tokens of the profile."""
    removed = _run(verbose, lambda: _provider(profile).logout())
    typer.echo("Signed out: cached tokens removed." if removed else "No cached tokens to remove.")


def _describe(status: dict) -> str:
    if status["method"] == "token":
        state = "set" if status["signed_in"] else "not set"
        return f"Using a ready token from {status['source']} ({state})."
    if not status["signed_in"]:
        return f"Not signed in ({status['method']}, tenant {status['tenant']})."
    return (
        f"Signed in as {status['who']} to tenant {status['tenant']} ({status['method']}); "
        f"token valid until {status['expires']}."
    )


# --- sandbox -------------------------------------------------------------------------------------


def _sandbox_options() -> list[inspect.Parameter]:
    """One option per documented SandboxConfig field, its help and default from there."""
    from bulkpatch.sandbox import SandboxConfig

    hints = typing.get_type_hints(SandboxConfig)
    made = []
    for f in dataclasses.fields(SandboxConfig):
        if "help" not in f.metadata:
            continue
        meta = f.metadata
        kind = str | None if "parse" in meta or f.default is None else hints[f.name]
        kind = str if "choices" in meta else kind
        limits = {k: meta[k] for k in ("min", "max") if k in meta}
        option = typer.Option(help=meta["help"], metavar=meta.get("metavar"), **limits)
        made.append(_option(f.name, Annotated[kind, option], f.default))
    return made


@app.command()
@_with(_sandbox_options())
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
