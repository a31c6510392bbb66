"""Stage 5, report: the user's sheet handed back with a verdict on every row, as CSV and XLSX.

Every input column comes back as the user gave it, then our columns: in a workbook typed as
the input workbook stored them (see `workbook.py`), in a CSV as the text given, in the input's
separator and encoding family. Text a spreadsheet would run as a formula is neutralised in every
file: a leading `'` in CSV (with the record that has `load` take it off again: `quoting`),
Excel's quote prefix in a workbook. Files appear atomically (written beside, then renamed), so
a crash never leaves half a report that looks whole. The XLSX is streamed with xlsxwriter's
constant-memory mode: memory stays flat however many rows there are.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.load import quoting
from bulkpatch.load.sheet import ROW, Dialect, Sheet, Typed
from bulkpatch.outcomes import FIX, MEANING
from bulkpatch.report import workbook
from bulkpatch.report.stamp import COLOURS, Stamp
from bulkpatch.report.workbook import DATE, DATETIME, STYLE
from bulkpatch.safe import FORMULA_START, NUMBER, atomic, neutralise_text

if TYPE_CHECKING:
    import xlsxwriter

EXCEL_MAX_ROWS = 1_048_576
REASON, REASON_CODE = "Reason", "Reason code"
NUMERIC_TYPES = ("integer", "number")
CHART_ROWS = 12  # rows a Summary chart covers (480 x 220 pixels)
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
    plain: bool = False  # the user's columns alone (no row, no outcome): a sheet to send again
    exact: bool = False  # the sheet's cells are Partner Center's values (an undo sheet's)

    def for_csv(self) -> tuple[list[str], pl.DataFrame]:
        """The headers and frame as a CSV carries them: a `'` before formula-like text, with
        its record (`quoting`), and a workbook's dates as `2026-12-31` (fastexcel reads them
        `2026-12-31 00:00:00`)."""
        names = self.frame.columns
        dates = [
            names[i]
            for i, t in self.typed.items()
            if t.kind == "date" and self.frame.dtypes[i] == pl.String
        ]
        frame = self.frame.with_columns(pl.col(n).str.strip_suffix(" 00:00:00") for n in dates)
        frame, headers = quoting.quote(frame, self.headers, self.unsafe, self.exact)
        return headers, frame


def table(
    sheet: Sheet, ours: pl.DataFrame, issues: pl.DataFrame | None = None, title: str | None = None
) -> Table:
    """The sheet's columns as given, then `row` and `ours` (keyed by ROW), safe to open.

    Cells named in `issues` (row, column, message) and rows whose outcome failed are marked.
    """
    extra = [c for c in ours.columns if c != ROW]
    given, names, formulas = _apart(sheet, {"row", *extra})
    if ours.height == given.height and ours.get_column(ROW).equals(given.get_column(ROW)):
        joined = given.hstack(ours.drop(ROW))  # same rows, same order: no copy, no join
    else:
        joined = given.join(ours, on=ROW, how="left", maintain_order="left")
    text = [c for c in extra if joined.schema[c] == pl.String]  # load knows the sheet's own
    risky = joined.select(pl.col(text).str.contains(FORMULA_START).any()).row(0) if text else ()
    unsafe = formulas | {c for c, found in zip(text, risky, strict=True) if found}
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
        exact=sheet.exact,
    )


def given(sheet: Sheet) -> Table:
    """The sheet's own columns alone, safe to open: a sheet to use as input again (the
    matched sheet, `matched.csv`)."""
    t = table(sheet, sheet.frame.select(ROW))
    width = len(sheet.columns)
    return Table(
        t.title,
        t.headers[:width],
        t.frame.select(t.frame.columns[:width]),
        {i: typed for i, typed in t.typed.items() if i < width},
        unsafe=frozenset(i for i in t.unsafe if i < width),
        dialect=t.dialect,
        plain=True,
        exact=t.exact,
    )


def _apart(sheet: Sheet, ours: set[str]) -> tuple[pl.DataFrame, list[str], set[str]]:
    """The sheet's frame, its column names and formula columns, a column named as one of
    `ours` renamed (a results sheet applied again has its own `outcome` and `row`: both are
    kept, the user's first, under the same header)."""
    names = [c.name for c in sheet.columns]
    taken = set(names) | ours
    renamed = {}
    for name in (n for n in names if n in ours):
        free = f"{name} (given)"
        while free in taken:
            free += "_"
        renamed[name] = free
        taken.add(free)
    if not renamed:
        return sheet.frame, names, set(sheet.formulas)
    formulas = {renamed.get(n, n) for n in sheet.formulas}
    return sheet.frame.rename(renamed), [renamed.get(n, n) for n in names], formulas


def to_fix(t: Table, width: int, codes: pl.DataFrame) -> Table | None:
    """The rows of `t` that did not go (`FIX`), in the sheet's own `width` columns,
    a Reason and its Reason code (`codes`: ROW and the issue codes of the rows check refused,
    empty for a row refused later): a sheet `bulkpatch apply` takes as it is once fixed
    (Salesforce Data Loader's error file is the model). An earlier one's two are replaced."""
    message = "error_message" if "error_message" in t.frame.columns else "errors"
    bad = t.frame.filter(pl.col("outcome").is_in(FIX))
    if bad.is_empty():
        return None
    keep = [i for i in range(width) if t.headers[i] not in (REASON, REASON_CODE)]
    given = {*keep, t.frame.columns.index(message)}  # the Reason is the message column
    code = f"codes as {REASON_CODE}"  # named apart from the sheet's own columns
    found = codes.select(pl.col(ROW).alias("row"), pl.col("codes").fill_null("").alias(code))
    bad = bad.join(found, on="row", how="left", maintain_order="left")
    names = bad.columns  # a new list at each call: asked once
    frame = bad.select(
        *[names[i] for i in keep],
        pl.col(message).alias(f"{message} as {REASON}"),
        pl.col(code).fill_null(""),
    )
    at = {i: n for n, i in enumerate(keep)}  # a column's place in the to-fix sheet
    return Table(
        t.title,
        [t.headers[i] for i in keep] + [REASON, REASON_CODE],
        frame,
        {at[i]: typed for i, typed in t.typed.items() if i in at},
        unsafe=frozenset(at.get(i, len(keep)) for i in t.unsafe if i in given),
        dialect=t.dialect,
        plain=True,
        exact=t.exact,
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


def write_workbook(
    path: Path,
    tables: list[Table],
    summary: Summary | None,
    extra: list[tuple[str, pl.DataFrame]] = (),
) -> bool:
    """A Summary first (its stamp, rows by outcome with their meaning and a chart, other
    counts, small tables), then the data sheets and plain extra sheets; every sheet set up to
    print. No Summary for a sheet to send again.

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
        if summary:
            _write_summary(book, styles, summary)  # first: what the report is, before its rows
        for t in tables:
            workbook.write_table(book, styles, t, _sheet_title(t.title, book))
        for title, frame in extra:
            workbook.write_plain(book, styles, _sheet_title(title, book), frame)
        book.close()
    return True


@dataclass
class Summary:
    """The Summary sheet: what the report is (its stamp), rows by outcome (charted), other
    counts, and small tables (seats per customer and offer)."""

    stamp: Stamp | None
    counts: list[tuple[str, dict[str, Any]]]
    tables: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    details: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # for support, last
    # A section of counts -> a column written beside its counts (its header, key -> text): the
    # problems by rule get each rule's issue code
    beside: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


def _write_summary(book: xlsxwriter.Workbook, styles: dict[str, Any], summary: Summary) -> None:
    """What the report is, rows by outcome with their meaning (the legend) and a chart, the
    other counts, small tables, then the figures a support ticket needs."""
    ws = book.add_worksheet("Summary")
    ws.set_column(0, 0, 38)
    ws.set_column(1, 1, 36)
    ws.set_column(2, 7, 13)
    workbook.print_setup(ws)
    row = _write_stamp(book, ws, summary.stamp, styles) if summary.stamp else 0
    (title, values), *others = summary.counts
    row = _write_counts(ws, styles, row, title, values, legend=True)
    if values:
        ws.insert_chart(row, 0, _chart(book, title, values, row - len(values) - 1, row - 2))
        row += CHART_ROWS + 1
    for title, values in others:
        row = _write_counts(ws, styles, row, title, values, beside=summary.beside.get(title))
    for title, frame in summary.tables:
        ws.write_string(row, 0, title, styles["title"])
        ws.write_row(row + 1, 0, [c.replace("_", " ") for c in frame.columns], styles["header"])
        for r, cells in enumerate(frame.iter_rows(), start=row + 2):
            for c, value in enumerate(cells):
                if isinstance(value, str):
                    _text(ws, r, c, value, styles)
                elif value is not None:
                    ws.write(r, c, value)
        row += frame.height + 3
    for title, values in summary.details:
        row = _write_counts(ws, styles, row, title, values)


def _write_counts(
    ws: Any,
    styles: dict[str, Any],
    row: int,
    title: str,
    values: dict[str, Any],
    legend: bool = False,
    beside: tuple[str, dict[str, str]] | None = None,
) -> int:
    """One section of counts from `row`; with `legend`, each outcome in its colour and what it
    means beside it; with `beside`, that column's text beside each count. Returns the next free
    row, after a blank one."""
    if legend:
        beside = ("What it means", MEANING)
    header = [title, "Rows" if legend else "Count", *(beside[:1] if beside else ())]
    ws.write_row(row, 0, header, styles["header"])
    if not values:
        row += 1
        ws.write_string(row, 0, "none")
    for key, value in values.items():
        row += 1
        _text(ws, row, 0, str(key), styles, styles.get(key) if legend else None)
        ws.write(row, 1, value, styles["count"])
        if beside and key in beside[1]:
            _text(ws, row, 2, beside[1][key], styles)
    return row + 2


def _text(
    ws: Any, row: int, col: int, text: str, styles: dict[str, Any], style: Any = None
) -> None:
    """A text cell of the Summary; formula-like text keeps Excel's quote prefix."""
    risky = re.match(FORMULA_START, text) and not re.match(NUMBER, text)
    ws.write_string(row, col, text, styles["quoted"] if risky else style)


def _write_stamp(book: xlsxwriter.Workbook, ws: Any, stamp: Stamp, styles: dict[str, Any]) -> int:
    """The banner (where the changes went, in its colour) and the report's identity; returns
    the next free row."""
    fill, font = COLOURS[stamp.where]
    banner = book.add_format(
        {"bold": True, "font_size": 14, "bg_color": fill, "font_color": font, "border": 1}
    )
    ws.set_row(0, 24)
    ws.merge_range(0, 0, 0, 7, stamp.target, banner)
    label = book.add_format({"bold": True})
    for row, (key, value) in enumerate(stamp.lines().items(), start=1):
        ws.write_string(row, 0, key, label)
        _text(ws, row, 1, value, styles)
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
    chart.set_size({"width": 480, "height": 220})
    chart.set_legend({"none": True})
    return chart


def _sheet_title(name: str, book: xlsxwriter.Workbook) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique, not `Summary`."""
    title = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Sheet"
    title = "Data" if title.lower() == "summary" else title
    taken = {ws.get_name().lower() for ws in book.worksheets()}
    candidate, n = title, 2
    while candidate.lower() in taken:
        candidate, n = f"{title[:28]} {n}", n + 1
    return candidate
