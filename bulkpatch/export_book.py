"""The export's file: a workbook made for editing (or a CSV), written in one go at the end.

Each column is shown by its role as `load` will read it: settable columns white (the ones to
edit), key, expected and note columns grey, the header and the id columns frozen. Numbers and
yes/no cells are Excel numbers and booleans, so the sheet reads back as it was written. The
file appears atomically (`report.atomic`): an export stopped half-way leaves no file that could
be taken for a whole one. Streamed with xlsxwriter's constant-memory mode: memory stays flat
however many rows. (Dropdowns, validations, protection and an Instructions sheet build on
`ROLE_STYLE` later.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from bulkpatch import report
from bulkpatch.catalog import Field, Kind, header_index, normalize_header
from bulkpatch.errors import InputError

if TYPE_CHECKING:
    import xlsxwriter

ROLE_STYLE = {  # the role as the mapping shows it -> (header fill, cell fill)
    "set": ("#FFFFFF", None),
    "key": ("#BFBFBF", "#EDEDED"),
    "expected": ("#D9D9D9", "#F2F2F2"),
    "note": ("#D9D9D9", "#F2F2F2"),
}
FROZEN_COLUMNS = 3  # Customer, Customer ID and the resource id stay in view


def fields(kind: Kind, headers: list[str]) -> list[Field | None]:
    """The catalog field each header maps to (None: a note), as `load` matches headers."""
    index = header_index(kind)
    return [index.get(normalize_header(h)) for h in headers]


def write(path: Path, kind: Kind, headers: list[str], frame: pl.DataFrame) -> None:
    """Write the rows to `path` (.csv, else a workbook), text a spreadsheet would run
    neutralised."""
    frame = frame.with_columns(report.neutralise(frame.get_column(c)) for c in frame.columns)
    if path.suffix.lower() == ".csv":
        report.write_csv(path, headers, frame)
        return
    if frame.height >= report.EXCEL_MAX_ROWS:
        raise InputError(
            f"{path}: {frame.height} rows are more than Excel can open; export to a .csv file."
        )
    import xlsxwriter

    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with report.atomic(path) as tmp:
        book = xlsxwriter.Workbook(str(tmp), options)
        _sheet(book, kind, headers, frame)
        book.close()


def _sheet(book: xlsxwriter.Workbook, kind: Kind, headers: list[str], frame: pl.DataFrame) -> None:
    """The one data sheet. Fills are column formats and an empty cell is not written at all:
    xlsxwriter's own work per written cell is what a large export costs."""
    ws = book.add_worksheet(kind.title())
    known = fields(kind, headers)
    roles = [f.shown_role if f else "note" for f in known]
    for col, (header, role) in enumerate(zip(headers, roles, strict=True)):
        head, fill = ROLE_STYLE[role]
        ws.write_string(
            0, col, header, book.add_format({"bold": True, "border": 1, "bg_color": head})
        )
        ws.set_column(col, col, 18, book.add_format({"bg_color": fill}) if fill else None)
    ws.freeze_panes(1, FROZEN_COLUMNS)
    ws.autofilter(0, 0, max(frame.height, 1), len(headers) - 1)
    numbers = {i for i, f in enumerate(known) if f and f.type == "integer"}
    flags = {i for i, f in enumerate(known) if f and f.type == "boolean"}
    write_number, write_boolean, write_string = ws.write_number, ws.write_boolean, ws.write_string
    for r, values in enumerate(frame.iter_rows(), start=1):
        for col, value in enumerate(values):
            if value is None:
                continue
            if col in numbers and value.isdigit():
                write_number(r, col, int(value))
            elif col in flags and value in ("TRUE", "FALSE"):
                write_boolean(r, col, value == "TRUE")
            else:
                write_string(r, col, value)
