"""Stage 5, report: the user's sheet handed back with a verdict on every row, as CSV and XLSX.

Every input column comes back as the user gave it, then our columns. Text a spreadsheet would
run as a formula is neutralised in every file. Files appear atomically (written beside, then
renamed), so a crash never leaves half a report that looks whole. The XLSX is streamed with
xlsxwriter's constant-memory mode: memory stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.sheet import FORMULA_START, ROW, Sheet
from bulkpatch.stamp import COLOURS, Stamp
from bulkpatch.values import NUMBER

if TYPE_CHECKING:
    import xlsxwriter

EXCEL_MAX_ROWS = 1_048_576
FIX_OUTCOMES = ("invalid", "conflict", "would_fail", "failed", "not_sent")  # rows to send again
REASON = "Reason"
NUMERIC_TYPES = ("integer", "number")
STYLE = {  # outcome -> (fill, font)
    "valid": ("#C6EFCE", "#006100"),
    "ok": ("#C6EFCE", "#006100"),
    "change": ("#C6EFCE", "#006100"),
    "invalid": ("#FFC7CE", "#9C0006"),
    "failed": ("#FFC7CE", "#9C0006"),
    "would_fail": ("#FFC7CE", "#9C0006"),
    "conflict": ("#F8CBAD", "#843C0C"),
    "not_sent": ("#FCE4D6", "#833C0B"),
    "accepted": ("#FFEB9C", "#9C5700"),
    "no_change": ("#EDEDED", "#404040"),
}
CHART_COLOURS = {
    k: v[0].replace("C6EFCE", "63BE7B").replace("FFC7CE", "F8696B") for k, v in STYLE.items()
}


@dataclass
class Table:
    """One data sheet: the user's rows with our columns after them, and cells to mark."""

    title: str
    headers: list[str]
    frame: pl.DataFrame
    numeric: set[int]
    marks: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    plain: bool = False  # the user's columns alone (no row, no outcome): a sheet to send again


def neutralise(column: pl.Series) -> pl.Series:
    """Prefix `'` to text a spreadsheet would run (`=`, `+`, `-`, `@`, tab, CR); numbers stay.

    Only those cells are rewritten (few are): a whole-column expression would copy every cell.
    """
    starts = column.str.contains(FORMULA_START).arg_true()
    cells = column.gather(starts)
    risky = ~cells.str.contains(NUMBER)
    return column.clone().scatter(starts.filter(risky), "'" + cells.filter(risky))


def neutralise_text(text: str) -> str:
    """The same rule for one string (headers, labels)."""
    if re.match(FORMULA_START, text) and not re.match(NUMBER, text):
        return "'" + text
    return text


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if writing succeeded."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def table(
    sheet: Sheet, ours: pl.DataFrame, issues: pl.DataFrame | None = None, title: str | None = None
) -> Table:
    """The sheet's columns as given, then `row` and `ours` (keyed by ROW), safe to open.

    Cells named in `issues` (row, column, message) and rows whose outcome failed are marked.
    """
    names = [c.name for c in sheet.columns]
    extra = [c for c in ours.columns if c != ROW]
    if ours.height == sheet.frame.height and ours.get_column(ROW).equals(
        sheet.frame.get_column(ROW)
    ):
        joined = sheet.frame.hstack(ours.drop(ROW))  # same rows, same order: no copy, no join
    else:
        joined = sheet.frame.join(ours, on=ROW, how="left", maintain_order="left")
    text = [c for c in extra if joined.schema[c] == pl.String]  # load knows the sheet's own
    risky = joined.select(pl.col(text).str.contains(FORMULA_START).any()).row(0) if text else ()
    unsafe = sheet.formulas | {c for c, found in zip(text, risky, strict=True) if found}
    frame = joined.select(*names, pl.col(ROW).alias("row"), *extra)
    frame = frame.with_columns(neutralise(frame.get_column(c)) for c in unsafe)
    headers = [neutralise_text(c.header) for c in sheet.columns] + ["row", *extra]
    numeric = {i for i, c in enumerate(sheet.columns) if c.field and c.field.type in NUMERIC_TYPES}
    numeric |= {
        len(names) + i
        for i, c in enumerate(["row", *extra])
        if c == "row" or ours.schema[c].is_integer()
    }
    marks: dict[tuple[int, int], list[str]] = {}
    position = {c.header: i for i, c in enumerate(sheet.columns)}
    if issues is not None:
        for row, column, message in issues.select("row", "column", "message").iter_rows():
            marks.setdefault((row, position.get(column, -1)), []).append(message)
    if "error_message" in extra:
        outcome = len(names) + 1 + extra.index("outcome")
        failed = joined.filter(
            pl.col("outcome").is_in(["failed", "not_sent", "would_fail", "conflict"])
        )
        for row, message in failed.select(ROW, "error_message").iter_rows():
            marks.setdefault((row, outcome), []).append(message or "")
    return Table(title or sheet.sheet_name or sheet.kind.title(), headers, frame, numeric, marks)


def to_fix(t: Table, width: int) -> Table | None:
    """The rows of `t` that did not go (`FIX_OUTCOMES`), in the sheet's own `width` columns
    and a Reason: a sheet `bulkpatch apply` takes as it is once fixed (Salesforce Data
    Loader's error file is the model). The Reason column of an earlier one is replaced."""
    message = "error_message" if "error_message" in t.frame.columns else "errors"
    bad = t.frame.filter(pl.col("outcome").is_in(FIX_OUTCOMES))
    if bad.is_empty():
        return None
    keep = [i for i in range(width) if t.headers[i] != REASON]
    frame = bad.select(
        *[bad.columns[i] for i in keep], pl.col(message).alias(f"{message} as {REASON}")
    )
    numeric = {keep.index(i) for i in t.numeric if i in keep}
    return Table(t.title, [t.headers[i] for i in keep] + [REASON], frame, numeric, plain=True)


def write_csv(path: Path, headers: list[str], frame: pl.DataFrame) -> None:
    """CSV with a BOM (so Excel reads UTF-8) and the user's headers, duplicates and all."""
    if len(set(headers)) == len(headers):  # Polars writes by path: about twice as fast
        with atomic(path) as tmp:
            frame.rename(dict(zip(frame.columns, headers, strict=True))).write_csv(
                tmp, include_bom=True
            )
        return
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(headers)
    with atomic(path) as tmp, tmp.open("wb") as handle:
        handle.write(b"\xef\xbb\xbf" + line.getvalue().encode())
        frame.write_csv(handle, include_header=False)


def write_json(path: Path, data: Any) -> None:
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def write_workbook(
    path: Path,
    tables: list[Table],
    summary: Summary | None,
    extra: list[tuple[str, pl.DataFrame]] = (),
) -> bool:
    """Data sheets, a Summary (its stamp, then counts, the first charted), and plain extra
    sheets.

    Returns False (and writes nothing) when a sheet has more rows than Excel can open.
    """
    if any(t.frame.height >= EXCEL_MAX_ROWS for t in tables):
        return False
    import xlsxwriter  # only when a workbook is written

    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with atomic(path) as tmp:
        book = xlsxwriter.Workbook(str(tmp), options)
        styles = _styles(book)
        if summary:
            _write_summary(book, styles, summary)  # first: what the report is, before its rows
        for t in tables:
            _write_table(book, styles, t)
        for title, frame in extra:
            _write_plain(book, styles, title, frame)
        book.close()
    return True


def _styles(book: xlsxwriter.Workbook) -> dict[str, Any]:
    styles = {
        name: book.add_format({"bg_color": fill, "font_color": font})
        for name, (fill, font) in STYLE.items()
    }
    styles["header"] = book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
    styles["bad"] = book.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006"})
    styles["title"] = book.add_format({"bold": True, "font_size": 12})
    return styles


def _write_table(book: xlsxwriter.Workbook, styles: dict[str, Any], t: Table) -> None:
    ws = book.add_worksheet(_sheet_title(t.title, book))
    last = len(t.headers) - 1
    ws.write_row(0, 0, t.headers, styles["header"])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(t.frame.height, 1), last)
    ws.set_column(0, last, 16)
    ws.set_column(last, last, 50)
    row_at = t.headers.index("row") if not t.plain else 0
    outcome_at = t.headers.index("outcome", row_at) if not t.plain else -1
    rows = t.frame.iter_rows()
    if t.frame.height > 50_000 and sys.stderr.isatty():
        from tqdm import tqdm

        rows = tqdm(rows, total=t.frame.height, desc=t.title, unit="row", leave=False)
    for r, values in enumerate(rows, start=1):
        sheet_row = values[row_at]
        for col, value in enumerate(values):
            notes = t.marks.get((sheet_row, col))
            style = styles.get(value) if col == outcome_at else (styles["bad"] if notes else None)
            if value is None or value == "":
                ws.write_blank(r, col, None, style)
            elif col in t.numeric and (
                not isinstance(value, str) or re.fullmatch(NUMBER[1:-1], value)
            ):
                ws.write_number(r, col, float(value), style)
            else:
                ws.write_string(r, col, str(value), style)
            if notes and any(notes):
                ws.write_comment(r, col, "\n".join(n for n in notes if n))


@dataclass
class Summary:
    """The Summary sheet: what the report is (its stamp), rows by outcome (charted), other
    counts, and small tables (seats per customer and offer)."""

    stamp: Stamp | None
    counts: list[tuple[str, dict[str, Any]]]
    tables: list[tuple[str, pl.DataFrame]] = field(default_factory=list)


def _write_summary(book: xlsxwriter.Workbook, styles: dict[str, Any], summary: Summary) -> None:
    ws = book.add_worksheet("Summary")
    ws.set_column(0, 0, 38)
    ws.set_column(1, 1, 44)
    ws.set_column(2, 7, 13)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    row = _write_stamp(book, ws, summary.stamp) if summary.stamp else 0
    for n, (title, values) in enumerate(summary.counts):
        ws.write_row(row, 0, [title, "Rows" if n == 0 else "Count"], styles["header"])
        first = row + 1
        if not values:
            row += 1
            ws.write_string(row, 0, "none")
        for key, value in values.items():
            row += 1
            ws.write_string(row, 0, neutralise_text(str(key)))
            ws.write(row, 1, value)
        if n == 0 and values:
            ws.insert_chart(first - 1, 3, _chart(book, title, values, first, row))
            row = max(row, first + 14)  # the chart's height: the next section starts below it
        row += 2
    for title, frame in summary.tables:
        ws.write_string(row, 0, title, styles["title"])
        ws.write_row(row + 1, 0, [c.replace("_", " ") for c in frame.columns], styles["header"])
        for r, values in enumerate(frame.iter_rows(), start=row + 2):
            for c, value in enumerate(values):
                if isinstance(value, str):
                    ws.write_string(r, c, neutralise_text(value))
                elif value is not None:
                    ws.write(r, c, value)
        row += frame.height + 4


def _write_stamp(book: xlsxwriter.Workbook, ws: Any, stamp: Stamp) -> int:
    """The banner (where the changes went, in its colour) and the report's identity; returns
    the next free row."""
    fill, font = COLOURS[stamp.where]
    banner = book.add_format(
        {"bold": True, "font_size": 14, "bg_color": fill, "font_color": font, "border": 1}
    )
    ws.set_row(0, 24)
    ws.merge_range(0, 0, 0, 7, neutralise_text(stamp.target), banner)
    label = book.add_format({"bold": True})
    for row, (key, value) in enumerate(stamp.lines().items(), start=1):
        ws.write_string(row, 0, key, label)
        ws.write_string(row, 1, neutralise_text(value))
    return len(stamp.lines()) + 2


def _chart(book: xlsxwriter.Workbook, title: str, values: dict[str, Any], first: int, last: int):
    """A column chart of rows by outcome, each bar in its outcome's colour."""
    chart = book.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": title,
            "categories": ["Summary", first, 0, last, 0],
            "values": ["Summary", first, 1, last, 1],
            "data_labels": {"value": True},
            "points": [{"fill": {"color": CHART_COLOURS.get(k, "#5B9BD5")}} for k in values],
        }
    )
    chart.set_title({"name": f"Rows by {title.lower()}"})
    chart.set_legend({"none": True})
    return chart


def _write_plain(
    book: xlsxwriter.Workbook, styles: dict[str, Any], title: str, frame: pl.DataFrame
) -> None:
    ws = book.add_worksheet(_sheet_title(title, book))
    ws.write_row(0, 0, frame.columns, styles["header"])
    ws.freeze_panes(1, 0)
    ws.set_column(0, max(frame.width - 1, 0), 18)
    for r, values in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(values):
            if isinstance(value, str):
                ws.write_string(r, c, neutralise_text(value))
            elif value is not None:
                ws.write(r, c, value)


def _sheet_title(name: str, book: xlsxwriter.Workbook) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique, not `Summary`."""
    title = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Sheet"
    title = "Data" if title.lower() == "summary" else title
    taken = {ws.get_name().lower() for ws in book.worksheets()}
    candidate, n = title, 2
    while candidate.lower() in taken:
        candidate, n = f"{title[:28]} {n}", n + 1
    return candidate
