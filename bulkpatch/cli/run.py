"""How a command runs: one job, our errors turned into one line and an exit code (2, or 3 for
a run stopped by a fault outside the sheet), anything else a bug report; with `--json` the
failure is one JSON object on stdout too. Shared by every command of the CLI."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import typer

from bulkpatch.errors import BulkpatchError, StoppedError

T = TypeVar("T")
STOPPED = 3  # a fault outside the sheet stopped the run; it may have sent something


def run_job(verbose: bool, job: Callable[[], T], as_json: bool = False) -> T:
    """Run `job`; our errors become one line and exit 2 (3 for a stopped run), anything else
    is a bug report. With `as_json` the failure is also one JSON object on stdout."""
    try:
        return job()
    except BulkpatchError as exc:
        fail(f"bulkpatch: {exc}", STOPPED if isinstance(exc, StoppedError) else 2, verbose, as_json)
    except KeyboardInterrupt:
        fail("bulkpatch: interrupted.", 130, False, as_json)
    except BaseException as exc:  # also a panic inside Polars, which is not an Exception
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        line = (
            f"bulkpatch: unexpected error: {exc!r}. Run again with --verbose for details "
            "and report it."
        )
        fail(line, 2, verbose, as_json)
    raise AssertionError("unreachable")  # fail always exits


def fail(line: str, code: int, verbose: bool, as_json: bool) -> None:
    if verbose:
        traceback.print_exc()
    typer.echo(line, err=True)
    if as_json:
        typer.echo(json.dumps({"error": line.removeprefix("bulkpatch: "), "exit_code": code}))
    raise typer.Exit(code) from None


def as_run() -> str:
    """The command line as typed, secrets hidden: the reports say how they were made."""
    from bulkpatch.report.stamp import command_line

    return command_line(sys.argv[1:])
