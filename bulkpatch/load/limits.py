"""The input limits: the most columns, rows and characters in a cell a sheet may have, and the
one line that refuses a sheet over them.

They are Excel's own limits (Microsoft's "Excel specifications and limits",
https://support.microsoft.com/office/excel-specifications-and-limits-1672b34d-7043-467e-8e27-269d656771c3:
16,384 columns, 1,048,576 rows, 32,767 characters in a cell), less room for what bulkpatch adds:
every run writes its report as a workbook too (`check.xlsx`, `plan.xlsx`, `results.xlsx`), the
sheet's own columns and rows beside bulkpatch's, and a workbook drops what is over them. A
sheet within them fits every report it makes, and reading it costs time and memory in
proportion to its cells (`benchmarks/run.py` measures the time per cell).
"""

from __future__ import annotations

import polars as pl

from bulkpatch.errors import InputError
from bulkpatch.load.headers import column_letter

MAX_COLUMNS = 16_000  # Excel's 16,384, less room for the columns the reports add
MAX_ROWS = 1_000_000  # Excel's 1,048,576, less room for the header and the reports' own rows
MAX_CELL = 32_767  # characters in one cell, as in Excel
# A workbook sheet is read whole into memory, empty cells too (about 50 bytes a cell): its used
# range (A1 to its last row and column) holds at most this many cells, a million rows by Z.
MAX_USED_RANGE = 30_000_000
SHOWN = 40  # characters of a header a message shows


def columns(label: str, count: int) -> None:
    """Refuse a sheet of more than `MAX_COLUMNS` columns (counted before it is read)."""
    if count > MAX_COLUMNS:
        raise InputError(
            f"{label}: the sheet has {count:,} columns; bulkpatch reads at most "
            f"{MAX_COLUMNS:,} (Excel holds 16,384, and every report is a workbook too). "
            "Delete the columns you do not need (notes only ride along) and try again."
        )


def rows(label: str, count: int) -> None:
    """Refuse a sheet of more than `MAX_ROWS` rows below its header."""
    if count > MAX_ROWS:
        raise InputError(
            f"{label}: the sheet has {count:,} rows below its header; bulkpatch reads at most "
            f"{MAX_ROWS:,} (Excel holds 1,048,576, and every report is a workbook too). Split "
            f"it into sheets of up to {MAX_ROWS:,} rows and run each."
        )


def used_range(label: str, rows: int, columns: int) -> None:
    """Refuse a workbook sheet whose used range (from A1 to its last row and column) holds
    more than `MAX_USED_RANGE` cells, before it is read."""
    if rows * columns > MAX_USED_RANGE:
        raise InputError(
            f"{label}: its cells reach row {rows:,} and column {column_letter(columns - 1)}: "
            f"{rows * columns:,} cells to hold, empty ones too; bulkpatch reads a sheet of up to "
            f"{MAX_USED_RANGE:,}. Delete the rows and columns below and right of your data "
            "(select them, Delete), save, and try again."
        )


def cells(label: str, grid: pl.DataFrame, first_row: int, headers: list[str]) -> None:
    """Refuse a sheet with a cell longer than `MAX_CELL` characters, naming the first such
    cell (`first_row`: the row number of the grid's first row). One pass over the cells' byte
    lengths (kept beside the text: nothing is counted); characters are counted only in a
    column whose bytes are over."""
    if not grid.height:
        return
    names = grid.columns  # a new list at each call: asked once
    longest = grid.select(pl.col(names).cast(pl.String).str.len_bytes().max()).row(0)
    found = []
    for at, most in enumerate(longest):
        if most is not None and most > MAX_CELL:
            hits = (grid.get_column(names[at]).str.len_chars() > MAX_CELL).arg_true()
            if hits.len():
                found.append((hits[0], at))
    if found:
        row, at = min(found)
        text = grid.get_column(names[at])[row]
        raise InputError(
            f"{label}: row {first_row + row}, column {column_letter(at)} "
            f"({shown(headers[at])!r}) holds {len(text):,} characters; a cell holds at most "
            f"{MAX_CELL:,}, as in Excel. Shorten it and try again."
        )


def shown(text: str) -> str:
    """A long text as a message shows it: its start."""
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
