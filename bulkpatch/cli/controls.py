"""The controls' commands: `bulkpatch approve PLAN_DIR` (review a plan, then approve or reject
it) and `bulkpatch audit` (list and verify the audit log). The library does the work
(`commands.controls`); this module asks, prints and sets the exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkpatch.cli.options import JSON, PROFILE, REPORTS, VERBOSE
from bulkpatch.cli.run import as_run, run_job
from bulkpatch.errors import BulkpatchError, InputError

if TYPE_CHECKING:
    from bulkpatch.controls.approval import Review

YES_HELP = (
    "Approve without typing the number of changes: a pipeline's approval step, with no "
    "terminal (recorded as such)."
)


def approve(
    plan_dir: Annotated[
        Path, typer.Argument(metavar="PLAN_DIR", help="A `bulkpatch plan` folder.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help=YES_HELP)] = False,
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the plan (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why: the planner reads it (required with --reject).")
    ] = None,
    profile: PROFILE = None,
    as_json: JSON = False,
    verbose: VERBOSE = False,
) -> None:
    """Review a plan someone else made, then approve it (type its number of changes) or reject
    it; the decision goes in the plan folder and the audit log."""
    from bulkpatch.commands.controls import approve_plan

    done = run_job(
        verbose,
        lambda: approve_plan(
            plan_dir,
            confirm=lambda review, planner: _asked(review, planner, yes, reject, as_json),
            reject=reject,
            reason=reason,
            profile=profile,
            command=as_run(),
        ),
        as_json,
    )
    typer.echo(json.dumps(done.to_json()) if as_json else done.words())


def _asked(review: Review, planner: dict[str, Any], yes: bool, reject: bool, quiet: bool) -> str:
    """Show what the plan will do; the approver types its number of changes (or passes
    --yes); how they agreed, as the approval records it."""
    from bulkpatch.report.words import identity_words

    if not quiet:
        typer.echo(f"Planned by {identity_words(planner)}. The plan will:", err=True)
        for line in review.lines():
            typer.echo(f"  {line}", err=True)
    if reject:
        return "rejected"
    terminal = sys.stdin.isatty()
    if yes:
        return "--yes at a terminal" if terminal else "--yes without a terminal"
    if not terminal:
        raise BulkpatchError(
            "approving needs a terminal to type the number of changes; a pipeline's approval "
            "step passes --yes."
        )
    typed = typer.prompt(f"Type the number of changes to approve ({review.changes})", err=True)
    if typed.strip() != str(review.changes):
        raise InputError(
            f"nothing was recorded: you typed {typed.strip()!r}, and the plan has "
            f"{review.changes} changes."
        )
    return "typed the number of changes"


def audit(
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="Only lines since this day, 2026-12-01.")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check the chain (exit 1 naming the line where it breaks) and that the newest "
            "run folders' lines are in the log.",
        ),
    ] = False,
    log: Annotated[
        Path | None, typer.Option(help="The log to read (default: the profile's, or the tenant's).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Whose log: sandbox, production or a URL.")
    ] = None,
    reports: REPORTS = Path("reports"),
    profile: PROFILE = None,
    as_json: JSON = False,
    verbose: VERBOSE = False,
) -> None:
    """List who planned, approved, rejected, applied and was refused, from the audit log."""
    from bulkpatch.commands.controls import audit_trail

    trail = run_job(
        verbose,
        lambda: audit_trail(
            since=since,
            verify=verify,
            log=log,
            target=target,
            profile=profile,
            reports_base=reports,
        ),
        as_json,
    )
    if as_json:
        typer.echo(json.dumps(trail.to_json(), default=str))
    else:
        _print_trail(trail)
    raise typer.Exit(1 if trail.problems else 0)


def _print_trail(trail: Any) -> None:
    from bulkpatch.report.words import identity_words, plural

    typer.echo(f"Audit log {trail.log} ({plural(trail.total, 'line')}):")
    for line in trail.lines:
        counts = ", ".join(f"{n} {o}" for o, n in (line.get("counts") or {}).items() if n)
        typer.echo(
            f"  {line.get('n'):>4}  {line.get('at')}  {line.get('event'):<8}  "
            f"{identity_words(line.get('by'))}  {line.get('run_folder') or ''}"
            + (f"  ({counts})" if counts else "")
        )
    for problem in trail.problems:
        typer.echo(f"Broken: {problem.message}.", err=True)
    if trail.verified and not trail.problems:
        typer.echo("The chain holds, and the newest run folders' lines are in the log.")
