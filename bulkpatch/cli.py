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
from typing import Annotated, TypeVar

import typer

from bulkpatch.errors import BulkpatchError

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
    except Exception as exc:
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


def main() -> None:
    """Entry point of the `bulkpatch` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
