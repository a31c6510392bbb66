"""The command line: parse options, call one library function, turn errors into exit codes.

Exit codes: 0 every row fine, 1 some rows invalid or failed, 2 the input or usage cannot be used,
130 interrupted. Errors are one line on stderr; a traceback only with `--verbose`.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from bulkpatch.errors import BulkpatchError, InputError

if TYPE_CHECKING:  # the heavy modules load only in the commands that use them
    from bulkpatch.apply import Settings
    from bulkpatch.config import Profile
    from bulkpatch.run import Prepared, Preview
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


VERBOSE = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")]
JSON = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
QUIET = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


@app.command()
def check(
    sheet_path: Annotated[Path, typer.Argument(metavar="SHEET", help="CSV or Excel file.")],
    sheet: Annotated[
        str | None, typer.Option("--sheet", help="Worksheet name in a workbook.")
    ] = None,
    kind: Annotated[
        SheetKind | None,
        typer.Option("--kind", help="What the rows describe (default: from the headers)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder (default: reports/<timestamp>-<sheet name>/)."),
    ] = None,
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
    from bulkpatch.api import check_file

    run = _run(
        verbose,
        lambda: check_file(
            sheet_path, sheet=sheet, kind=kind.value if kind else None, out=out, xlsx=xlsx
        ),
    )
    counts = run.counts()
    if as_json:
        typer.echo(json.dumps(run.summary()))
    else:
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
    raise typer.Exit(1 if counts["invalid"] else 0)


PRECEDENCE_HELP = (
    "Settings come from the command-line flag, then the environment, then the profile, then "
    "the default."
)
TARGET = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="sandbox (built in), production, or a URL such as a `bulkpatch sandbox`. "
        "Default: production when signed in (BULKPATCH_TOKEN or a profile), else the sandbox.",
    ),
]
PROFILE = Annotated[
    str | None,
    typer.Option(
        "--profile", help="Profile from bulkpatch.toml (working folder, then ~/.config/bulkpatch/)."
    ),
]
SHEET_OPT = Annotated[str | None, typer.Option("--sheet", help="Worksheet name in a workbook.")]
KIND = Annotated[SheetKind | None, typer.Option("--kind", help="What the rows describe.")]
OUT = Annotated[
    Path | None,
    typer.Option("--out", help="Run folder (default: reports/<timestamp>-<sheet name>/)."),
]
RATE = Annotated[
    float | None,
    typer.Option(
        "--rate",
        min=1,
        help="Calls per minute for each of the subscription and order budgets (default: 500).",
    ),
]
CONCURRENCY = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, max=64, help="Calls in flight at most (default: 8)."),
]
SCOPE = Annotated[
    str | None,
    typer.Option(
        "--limit-scope", help="Count the rate per partner or per customer (default: partner)."
    ),
]


def _profile(name: str | None) -> Profile:
    from bulkpatch.config import load_profile

    return load_profile(name)


def _settings(
    profile: Profile, rate: float | None, concurrency: int | None, scope: str | None
) -> Settings:
    from bulkpatch.apply import Settings

    scope = profile.get("limit_scope", scope)
    if scope not in ("partner", "customer"):
        raise InputError(f"--limit-scope must be partner or customer, not {scope!r}.")
    return Settings(
        rate=float(profile.get("rate", rate)),
        order_rate=profile.get("order_rate"),
        concurrency=int(profile.get("concurrency", concurrency)),
        scope=scope,
    )


def _announce(resolved: Target, chosen: bool) -> None:
    """One plain line before anything is read or sent: the sandbox changes nothing real."""
    if resolved.embedded:
        why = "" if chosen else " (not signed in to Partner Center)"
        typer.echo(f"Using the built-in sandbox{why}: nothing in Partner Center changes.", err=True)


@app.command(epilog=PRECEDENCE_HELP)
def plan(
    sheet_path: Annotated[Path, typer.Argument(metavar="SHEET", help="CSV or Excel file.")],
    target: TARGET = None,
    profile: PROFILE = None,
    sheet: SHEET_OPT = None,
    kind: KIND = None,
    out: OUT = None,
    rate: RATE = None,
    concurrency: CONCURRENCY = None,
    limit_scope: SCOPE = None,
    as_json: JSON = False,
    quiet: QUIET = False,
    verbose: VERBOSE = False,
) -> None:
    """Check, read the current state, and write what apply would change; send nothing."""
    from bulkpatch.run import plan_file

    def job():
        chosen = _profile(profile)
        from bulkpatch.target import resolve

        _announce(resolve(target, chosen), chosen=target == "sandbox")
        return plan_file(
            sheet_path,
            sheet=sheet,
            kind=kind.value if kind else None,
            target=target,
            out=out,
            profile=chosen,
            settings=_settings(chosen, rate, concurrency, limit_scope),
            progress=not quiet and sys.stderr.isatty(),
        )

    run = _run(verbose, job)
    counts = {o: run.outcomes.get(o, 0) for o in ("change", "no_change", "would_fail")}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "run_folder": str(run.prepared.folder),
                    **counts,
                    "reports": [str(p) for p in run.reports],
                }
            )
        )
    else:
        typer.echo(
            f"Planned {len(run.prepared.changes)} changes against "
            f"{run.prepared.target.name}: {counts['change']} to send, "
            f"{counts['no_change']} already done, {counts['would_fail']} would fail"
        )
        typer.echo("Plan: " + "\n      ".join(str(p) for p in run.reports))
        typer.echo(f"Apply it with: bulkpatch apply --plan {run.prepared.folder}")


@app.command(epilog=PRECEDENCE_HELP)
def apply(
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
    target: TARGET = None,
    profile: PROFILE = None,
    sheet: SHEET_OPT = None,
    kind: KIND = None,
    out: OUT = None,
    rate: RATE = None,
    concurrency: CONCURRENCY = None,
    limit_scope: SCOPE = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before changing production (for automation).")
    ] = False,
    as_json: JSON = False,
    quiet: QUIET = False,
    verbose: VERBOSE = False,
) -> None:
    """Send the sheet's changes, read-modify-write, and write a result for every row."""
    from bulkpatch.run import apply_file

    if sum(x is not None for x in (sheet_path, plan_dir, resume)) != 1:
        typer.echo("bulkpatch: give exactly one of SHEET, --plan DIR or --resume DIR.", err=True)
        raise typer.Exit(2)

    def job():
        chosen = _profile(profile)
        return apply_file(
            sheet_path,
            sheet=sheet,
            kind=kind.value if kind else None,
            target=target,
            out=out,
            settings=_settings(chosen, rate, concurrency, limit_scope),
            plan_dir=plan_dir,
            resume_dir=resume,
            progress=not quiet and sys.stderr.isatty(),
            profile=chosen,
            confirm=lambda prepared, preview: _confirm(prepared, preview, yes),
        )

    run = _run(verbose, job)
    summary = run.summary
    counts = summary["outcomes"]
    if as_json:
        typer.echo(json.dumps({**summary, "reports": [str(p) for p in run.reports]}))
    else:
        shown = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in counts.items() if n)
        typer.echo(f"Applied {summary['rows']} rows to {summary['target']}: {shown or 'nothing'}")
        if summary["stopped"]:
            typer.echo(f"Stopped: {summary['stopped']}.")
        typer.echo("Results: " + "\n         ".join(str(p) for p in run.reports))
    if run.interrupted or summary["stopped"]:
        typer.echo(f"Resume with: {summary['resume']}", err=True)
    if run.interrupted:
        raise typer.Exit(130)
    bad = counts["invalid"] + counts["failed"] + counts["not_sent"]
    raise typer.Exit(1 if bad else 0)


def _confirm(prepared: Prepared, preview: Callable[[], Preview], yes: bool) -> bool:
    """A live run shows what it will do and asks; automation passes --yes."""
    _announce(prepared.target, chosen=prepared.manifest["settings"]["target"] == "sandbox")
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


auth_app = typer.Typer(
    help="Sign in to Partner Center, see who is signed in, sign out.", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")


def _provider(profile: str | None):
    from bulkpatch.auth import TokenProvider

    return TokenProvider(_profile(profile).credentials())


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


def _limit(text: str | None) -> tuple[int, float] | None:
    """`500/60` is 500 calls per 60 seconds; a bare `500` is per minute."""
    if text is None:
        return None
    calls, _, seconds = text.partition("/")
    try:
        limit = (int(calls), float(seconds or 60))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not CALLS/SECONDS, e.g. 500/60") from None
    if limit[0] < 1 or limit[1] <= 0:
        raise typer.BadParameter(f"{text!r}: calls and seconds must be positive")
    return limit


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        customers, per = (int(p) for p in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not CUSTOMERS,SUBSCRIPTIONS, e.g. 40,50") from None
    return customers, per


SHARE = {"min": 0.0, "max": 1.0}


@app.command()
def sandbox(
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
    token: Annotated[
        str | None, typer.Option(help="Accept only this bearer token (default: any).")
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="Added to every call.", min=0)] = 0.0,
    rate_limit: Annotated[
        str | None,
        typer.Option(metavar="CALLS/SECONDS", help="Limit on subscription calls, e.g. 500/60."),
    ] = None,
    order_rate_limit: Annotated[
        str | None,
        typer.Option(
            metavar="CALLS/SECONDS", help="Limit on order calls (default: as --rate-limit)."
        ),
    ] = None,
    limit_scope: Annotated[
        str, typer.Option(help="Count the limit per partner or per customer.")
    ] = "partner",
    accepted_share: Annotated[
        float, typer.Option(help="Share of PATCHes answered 202 Accepted.", **SHARE)
    ] = 0.0,
    accepted_delay: Annotated[
        float, typer.Option(help="Seconds before a 202 change shows.", min=0)
    ] = 1.0,
    fail_share: Annotated[
        float, typer.Option(help="Share of calls answered 500/503.", **SHARE)
    ] = 0.0,
    conflict_share: Annotated[
        float, typer.Option(help="Share of calls answered 409 (800082).", **SHARE)
    ] = 0.0,
    drop_share: Annotated[
        float,
        typer.Option(
            help="Share of calls whose connection is cut after the work is done.", **SHARE
        ),
    ] = 0.0,
    slow_share: Annotated[
        float, typer.Option(help="Share of calls answered only after --slow-seconds.", **SHARE)
    ] = 0.0,
    slow_seconds: Annotated[float, typer.Option(min=0)] = 60.0,
    random_seed: Annotated[int, typer.Option(help="Seed for every fault drawn.")] = 0,
    verbose: VERBOSE = False,
) -> None:
    """Serve the built-in Partner Center sandbox over HTTP (on 127.0.0.1 by default)."""
    from bulkpatch.sandbox import SandboxConfig, SeedSpec
    from bulkpatch.sandbox.serve import serve

    if limit_scope not in ("partner", "customer"):
        raise typer.BadParameter("--limit-scope is partner or customer")
    size = _size(seed)
    spec = SeedSpec(sheets=list(seed_from or []), synthetic=size)
    limit = _limit(rate_limit)
    config = SandboxConfig(
        db=str(db),
        seed=spec if (seed_from or size) else SeedSpec.samples(),
        token=token,
        rate_limit=limit,
        order_rate_limit=_limit(order_rate_limit) or limit,
        limit_scope=limit_scope,  # type: ignore[arg-type]
        latency_ms=latency_ms,
        accepted_share=accepted_share,
        accepted_delay=accepted_delay,
        fail_share=fail_share,
        conflict_share=conflict_share,
        drop_share=drop_share,
        slow_share=slow_share,
        slow_seconds=slow_seconds,
        random_seed=random_seed,
    )

    def announce(url: str) -> None:
        typer.echo(
            f"Sandbox serving on {url} (state in {db}). Nothing here reaches Partner Center."
        )
        typer.echo(f"Use it with: bulkpatch apply SHEET --target {url}   (Ctrl-C stops it)")

    _run(
        verbose,
        lambda: serve(config, host, port, reseed=bool(seed_from or size), announce=announce),
    )


def main() -> None:
    """Entry point of the `bulkpatch` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
