"""The export's file: a workbook made for editing (or a CSV), written in one go at the end.

Each column is shown by its role as `load` will read it: settable columns white, unlocked and
validated (a list for choices and yes/no, a whole number from the field's minimum for seats, a
date for dates), with an input message; key, expected and note columns grey and locked. The
sheet is protected without a password: it guards against a slip, and anyone who means to can
unprotect it. The header and the id columns are frozen; an Instructions sheet says what to do,
and a hidden sheet (`export_record`) records what was read, so the round trip is three-way.
Numbers and yes/no cells are Excel numbers and booleans, so the sheet reads back as it was
written. The file appears atomically (`safe.atomic`): an export stopped half-way leaves no
file that could be taken for a whole one. xlsxwriter writes all but the rows; `fast_sheet`
streams the rows in, made by whole-column expressions: memory stays flat however many rows.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from xlsxwriter.utility import xl_rowcol_to_cell

from bulkpatch import safe
from bulkpatch.catalog.fields import Field, Kind, header_index, normalize_header
from bulkpatch.errors import InputError
from bulkpatch.export import fast_sheet
from bulkpatch.export import instructions as export_help
from bulkpatch.load import quoting
from bulkpatch.load.record import EXPORTED_ON, RECORD_SHEET
from bulkpatch.report import writers as report

if TYPE_CHECKING:
    import xlsxwriter

ROLE_STYLE = {  # the role as the mapping shows it -> (header fill, cell fill)
    "set": ("#FFFFFF", None),
    "key": ("#BFBFBF", "#EDEDED"),
    "expected": ("#D9D9D9", "#F2F2F2"),
    "note": ("#D9D9D9", "#F2F2F2"),
    "match": ("#D9D9D9", "#F2F2F2"),  # the company name: a note on a row with ids
}
FROZEN = {"subscriptions": 3, "orders": 4}  # Customer and the ids stay in view
TEMPLATE_ROWS = 1000  # rows a template (or a small export) validates: room to add rows
BOOLEANS = ["TRUE", "FALSE"]  # what `check` reads as yes/no and Excel stores as a boolean
# What a protected sheet still lets the user do (xlsxwriter's `protect` options).
Current = tuple[int, str] | None  # a settable column's `Current ...` column: index, header
ALLOWED = {"autofilter": True, "sort": True, "format_columns": True, "format_rows": True}


def fields(kind: Kind, headers: list[str]) -> list[Field | None]:
    """The catalog field each header maps to (None: a note), as `load` matches headers."""
    index = header_index(kind)
    return [index.get(normalize_header(h)) for h in headers]


def write(path: Path, kind: Kind, headers: list[str], frame: pl.DataFrame, exported: str) -> None:
    """Write the rows to `path` (.csv, else a workbook), text a spreadsheet would run
    neutralised: in a CSV a `'` and its record (`quoting`), in a workbook Excel's quote prefix
    on the columns holding such text (a style: the cells hold the text as read, and so does the
    hidden record). `exported` is the export's date (a template: empty)."""
    if path.suffix.lower() == ".csv":
        frame, headers = quoting.quote(frame, headers)
        if exported:  # before the record: `load` finds either by its header
            frame = frame.with_columns(pl.lit(exported).alias(EXPORTED_ON))
            headers = [*headers, EXPORTED_ON]
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
    package = io.BytesIO()
    book = xlsxwriter.Workbook(package, options)
    known = fields(kind, headers)
    quoted = quoting.formula_columns(frame)
    prefixed = [n in quoted for n in frame.columns]
    _sheet(book, kind, (headers, known, prefixed), frame.height, template=not exported)
    export_help.write_instructions(book, kind, kind.title(), not exported, exported)
    rows = {kind.title(): fast_sheet.Rows(frame, _cells(known, frame), 1)}
    if exported:
        rows[RECORD_SHEET] = _record(book, headers, known, frame, exported)
    book.close()
    with safe.atomic(path) as tmp:
        fast_sheet.write(package.getvalue(), tmp, rows)


def _sheet(
    book: xlsxwriter.Workbook,
    kind: Kind,
    columns: tuple[list[str], list[Field | None], list[bool]],
    height: int,
    template: bool,
) -> None:
    """The one data sheet but its rows (`fast_sheet` adds them). Fills, locks and the quote
    prefix are column formats, which the rows' cells take. `columns`: the headers, their
    fields, and whether a column holds text a spreadsheet would run."""
    ws = book.add_worksheet(kind.title())
    last = max(height, TEMPLATE_ROWS)
    headers, known, prefixed = columns
    for col, (header, f) in enumerate(zip(headers, known, strict=True)):
        role = f.shown_role if f else "note"
        head, fill = ROLE_STYLE[role]
        # A template's ids and current values come from elsewhere: only its header is locked.
        look = {"bg_color": fill} if fill else {}
        look["locked"] = role != "set" and not template
        if prefixed[col]:
            look["quote_prefix"] = True
        ws.write_string(
            0, col, header, book.add_format({"bold": True, "border": 1, "bg_color": head})
        )
        ws.set_column(col, col, 18, book.add_format(look))
        if role == "set" and f:
            read = f"current:{f.name}"
            current = next(
                ((i, headers[i]) for i, g in enumerate(known) if g and g.name == read), None
            )
            _validate(ws, kind, (col, current), last, header, f)
    ws.freeze_panes(1, FROZEN[kind])
    ws.autofilter(0, 0, max(height, 1), len(headers) - 1)
    ws.protect("", ALLOWED)


def _validate(
    ws: Any, kind: Kind, cols: tuple[int, Current], last: int, header: str, f: Field
) -> None:
    """The settable column's input message on its header, and its check on rows 1..last: one
    validation per column range, never per cell. `cols`: the column, and its `Current ...`
    column (index, header) if it has one."""
    col, current = cols
    words = export_help.message(kind, header)
    if words:
        ws.data_validation(
            0, col, 0, col, {"validate": "any", "input_title": header, "input_message": words}
        )
    rule: dict[str, Any] | None = None
    if f.type == "enum" and f.enum:
        rule = {"validate": "list", "source": list(f.enum)}
    elif f.type == "boolean":
        rule = {"validate": "list", "source": BOOLEANS}
    elif f.type == "integer":
        rule = _whole(header, f, col, current)
    elif f.type == "datetime":
        rule = {"validate": "date", "criteria": ">", "value": date(1900, 1, 1)}
        rule["error_message"] = f"{header}: write a date, such as 2026-12-31."
    if rule:
        rule.setdefault("error_message", f"{header}: pick a value from the list.")
        rule["error_title"] = header
        ws.data_validation(1, col, last, col, rule)


def _whole(header: str, f: Field, col: int, current: Current) -> dict[str, Any]:
    """A whole number from the field's minimum, or, beside a `Current ...` column, also the
    value that column holds: that value asks for nothing (`check` does not judge it), and
    the export writes what Partner Center holds, such as 0 seats on a cancelled order's line
    item, which the workbook must not then call wrong. One formula for the whole column, its
    cells relative to the first row's."""
    least = f.minimum if f.minimum is not None else 0
    words = f"{header}: write a whole number of at least {least}."
    if current is None:
        return {"validate": "integer", "criteria": ">=", "value": least, "error_message": words}
    cell, read = xl_rowcol_to_cell(1, col), xl_rowcol_to_cell(1, current[0])
    whole = f"AND(ISNUMBER({cell}),{cell}=INT({cell}),{cell}>={least})"
    return {
        "validate": "custom",
        "value": f'=OR({whole},AND({read}<>"",{cell}={read}))',
        "error_message": words[:-1] + f", or leave it as {current[1]} says.",
    }


def _cells(known: list[Field | None], frame: pl.DataFrame) -> list[pl.Expr]:
    """How each column's cells are written: whole numbers of integer fields as numbers, TRUE
    and FALSE of yes/no fields as booleans, any other text as text; null cells not at all.
    (Up to 15 digits: more than Excel keeps exactly stays text.)"""
    made = []
    for f, name in zip(known, frame.columns, strict=True):
        value = pl.col(name)
        cell = fast_sheet.text(value)
        if f and f.type == "integer":
            whole = value.str.contains(r"^[0-9]{1,15}$")
            cell = (
                pl.when(whole)
                .then(fast_sheet.number(value.cast(pl.Int64, strict=False)))
                .otherwise(cell)
            )
        elif f and f.type == "boolean":
            flag = value.is_in(BOOLEANS)
            cell = pl.when(flag).then(fast_sheet.boolean(value == "TRUE")).otherwise(cell)
        made.append(cell)
    return made


def _record(
    book: xlsxwriter.Workbook,
    headers: list[str],
    known: list[Field | None],
    frame: pl.DataFrame,
    day: str,
) -> fast_sheet.Rows:
    """The very hidden record of what was read: the export's date, then per row its keys and
    the value read of each settable field (its `Current ...` column), as one JSON list per row
    under a JSON list of headers (one cell per row: a cell per value cost as much as the whole
    visible sheet). `load` reads it back by name, so sorting, filtering or editing the visible
    sheet cannot change what was read. Returns its rows, for `fast_sheet` to write."""
    kept = [h for h, f in zip(headers, known, strict=True) if f and (f.shown_role == "key" or f.of)]
    ws = book.add_worksheet(RECORD_SHEET)
    ws.very_hidden()
    ws.write_row(0, 0, [EXPORTED_ON, day])
    ws.write_string(1, 0, json.dumps(kept, ensure_ascii=False))
    # A struct of one list field encodes as {"v":[...]}: the list is what follows `{"v":`.
    listed = pl.struct(pl.concat_list(kept).alias("v")).struct.json_encode()
    values = listed.str.strip_prefix('{"v":').str.strip_suffix("}")
    return fast_sheet.Rows(frame, [fast_sheet.text(values)], 2)
