"""Stage 5, report: the user's sheet handed back with a verdict on every row, as CSV and XLSX.

Every input column comes back as the user gave it, then our columns: in a workbook typed as
the input workbook stored them (see `workbook.py`), in a CSV as the text given, in the input's
separator and encoding family. Text a spreadsheet would run as a formula is neutralised in every
file: a leading `'` in CSV, Excel's quote prefix in a workbook. Files appear atomically (written
beside, then renamed), so a crash never leaves half a report that looks whole. The XLSX is
streamed with xlsxwriter's constant-memory mode: memory stays flat however many rows there are.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch import workbook
from bulkpatch.sheet import FORMULA_START, ROW, Dialect, Sheet, Typed
from bulkpatch.values import NUMBER
from bulkpatch.workbook import DATE, DATETIME, STYLE

if TYPE_CHECKING:
    import xlsxwriter

EXCEL_MAX_ROWS = 1_048_576
NUMERIC_TYPES = ("integer", "number")
CHART_COLOURS = {
    k: v[0].replace("C6EFCE", "63BE7B").replace("FFC7CE", "F8696B") for k, v in STYLE.items()
}


@dataclass
class Table:
    """One data sheet: the user's rows with our columns after them, and cells to mark.

    `frame` holds the cells as given (formula-like text too: each writer neutralises it its
    way, in the `unsafe` columns); `typed` says how a workbook writes a column back (`auto`: a
    CSV note column, typed by its cells); `dialect` is how the CSV reports are written."""

    title: str
    headers: list[str]
    frame: pl.DataFrame
    typed: dict[int, Typed]
    marks: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    unsafe: frozenset[int] = frozenset()
    dialect: Dialect = field(default_factory=Dialect)

    def for_csv(self) -> pl.DataFrame:
        """The frame as a CSV carries it: a `'` before formula-like text, and a workbook's dates
        as `2026-12-31` (fastexcel reads them `2026-12-31 00:00:00`)."""
        names = self.frame.columns
        dates = [
            names[i]
            for i, t in self.typed.items()
            if t.kind == "date" and self.frame.dtypes[i] == pl.String
        ]
        return self.frame.with_columns(
            *[neutralise(self.frame.get_column(names[i])) for i in self.unsafe],
            *[pl.col(n).str.strip_suffix(" 00:00:00") for n in dates if n not in self.unsafe],
        )


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
    headers = [c.header for c in sheet.columns] + ["row", *extra]
    typed = _input_types(sheet) | {
        len(names) + i: t
        for i, t in enumerate(_our_types(frame.select("row", *extra)))
        if t is not None
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
    at = {c: i for i, c in enumerate(frame.columns)}
    return Table(
        title or sheet.sheet_name or sheet.kind.title(),
        headers,
        frame,
        typed,
        marks,
        frozenset(at[c] for c in unsafe),
        sheet.dialect,
    )


def _input_types(sheet: Sheet) -> dict[int, Typed]:
    """How a workbook writes the input columns back: as the input workbook stored them; for a
    CSV, catalog numbers as numbers, catalog dates as dates where a cell is an ISO date
    (`2026-12-31`, as Excel itself reads it), and note columns by their cells (`auto`)."""
    if sheet.typed:
        return {
            i: sheet.typed[c.name] for i, c in enumerate(sheet.columns) if c.name in sheet.typed
        }
    found = {}
    for i, c in enumerate(sheet.columns):
        if c.field is None:
            found[i] = Typed("auto")
        elif c.field.type in NUMERIC_TYPES:
            found[i] = Typed("number")
        elif c.field.type == "datetime":
            found[i] = DATE
    return found


def _our_types(frame: pl.DataFrame) -> list[Typed | None]:
    """Our columns by their Polars type: numbers, booleans and dates as such, the rest text."""
    return [
        Typed("number")
        if d.is_numeric()
        else Typed("boolean")
        if d == pl.Boolean
        else DATE
        if d == pl.Date
        else DATETIME
        if d == pl.Datetime
        else None
        for d in frame.dtypes
    ]


def write_csv(
    path: Path, headers: list[str], frame: pl.DataFrame, dialect: Dialect | None = None
) -> None:
    """CSV with the user's headers, duplicates and all, in the input's separator; UTF-8 with a
    BOM (Excel reads UTF-8 only with it: a cp1252 input comes back lossless in it), or UTF-16
    for a UTF-16 input. With semicolons, decimals take a comma, as that Excel reads them."""
    dialect = dialect or Dialect()
    headers = [neutralise_text(h) for h in headers]
    options = {"separator": dialect.separator, "decimal_comma": dialect.separator == ";"}
    utf16 = dialect.encoding == "utf-16"
    with atomic(path) as tmp:
        if len(set(headers)) == len(headers) and not utf16:  # Polars writes by path: faster
            renamed = frame.rename(dict(zip(frame.columns, headers, strict=True)))
            renamed.write_csv(tmp, include_bom=True, **options)
            return
        line = io.StringIO()
        csv.writer(line, delimiter=dialect.separator, lineterminator="\n").writerow(headers)
        if utf16:  # Polars writes UTF-8 only
            body = frame.write_csv(include_header=False, **options)
            tmp.write_bytes((line.getvalue() + body).encode("utf-16"))
            return
        with tmp.open("wb") as handle:
            handle.write(codecs.BOM_UTF8 + line.getvalue().encode())
            frame.write_csv(handle, include_header=False, **options)


def write_json(path: Path, data: Any) -> None:
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def write_workbook(
    path: Path,
    tables: list[Table],
    summary: list[tuple[str, dict[str, Any]]],
    extra: list[tuple[str, pl.DataFrame]] = (),
) -> bool:
    """Data sheets, a Summary (first section charted, then the outcomes' legend), and plain
    extra sheets; every sheet set up to print.

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
        styles = workbook.styles(book)
        for t in tables:
            workbook.write_table(book, styles, t, _sheet_title(t.title, book))
        _write_summary(book, styles, summary)
        workbook.print_setup(book.get_worksheet_by_name("Summary"))
        workbook.write_legend(book, styles, _outcomes(tables))
        for title, frame in extra:
            workbook.write_plain(book, styles, _sheet_title(title, book), frame)
        book.close()
    return True


def _outcomes(tables: list[Table]) -> set[str]:
    """The outcomes the data sheets show (the legend explains those)."""
    return {o for t in tables if "outcome" in t.frame.columns for o in t.frame["outcome"].unique()}


def _write_summary(
    book: xlsxwriter.Workbook, styles: dict[str, Any], sections: list[tuple[str, dict[str, Any]]]
) -> None:
    ws = book.add_worksheet("Summary")
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1, 14)
    row = 0
    for n, (title, values) in enumerate(sections):
        ws.write_row(row, 0, [title, "Count" if n == 0 else ""], styles["header"])
        first = row + 1
        for key, value in values.items():
            row += 1
            ws.write(row, 0, neutralise_text(str(key)))
            ws.write(row, 1, value)
        if n == 0 and values:
            chart = book.add_chart({"type": "column"})
            chart.add_series(
                {
                    "name": title,
                    "categories": ["Summary", first, 0, row, 0],
                    "values": ["Summary", first, 1, row, 1],
                    "data_labels": {"value": True},
                    "points": [
                        {"fill": {"color": CHART_COLOURS.get(k, "#5B9BD5")}} for k in values
                    ],
                }
            )
            chart.set_title({"name": f"Rows by {title.lower()}"})
            chart.set_legend({"none": True})
            ws.insert_chart(0, 3, chart)
        row += 2


def _sheet_title(name: str, book: xlsxwriter.Workbook) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique, not `Summary`."""
    title = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Sheet"
    title = "Data" if title.lower() == "summary" else title
    taken = {ws.get_name().lower() for ws in book.worksheets()}
    candidate, n = title, 2
    while candidate.lower() in taken:
        candidate, n = f"{title[:28]} {n}", n + 1
    return candidate
