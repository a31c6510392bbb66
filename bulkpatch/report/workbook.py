"""The XLSX report's data sheets as a reader sees them: the user's cells typed as the user gave
them, widths fitted to content, outcome colours with a legend, and a page setup that prints.

Streamed with xlsxwriter's constant-memory mode: rows are written in order, once, so column
widths and formats are settled from the frame before the first row. Values are converted with
whole-column Polars expressions; the per-cell loop only picks a writer.
"""

from __future__ import annotations

import math
import re
import sys
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.load.sheet import Typed
from bulkpatch.safe import FORMULA_START, NUMBER

if TYPE_CHECKING:
    import xlsxwriter
    from xlsxwriter.worksheet import Worksheet

    from bulkpatch.report.writers import Table

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
MESSAGES = ("errors", "error_message", "changes", "warnings", "reason")  # wrapped, wide
SAMPLE_ROWS = 1_000  # rows measured for column widths
MAX_WIDTH, MESSAGE_WIDTH = 50, 45  # in characters
LINE_HEIGHT, MAX_LINES = 15, 12  # points per line of wrapped text; lines at most in a row
EXCEL_EPOCH = pl.datetime(1899, 12, 30)  # day 0 of Excel's dates (after its 1900 leap day)
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_PLAIN_NUMBER = r"^-?(0|[1-9]\d*)(\.\d+)?$"  # no leading zero, no thousands: ids stay text
DATE, DATETIME = Typed("date", "yyyy-mm-dd"), Typed("datetime", "yyyy-mm-dd hh:mm:ss")
_formula = re.compile(FORMULA_START)
_number = re.compile(NUMBER)


def styles(book: xlsxwriter.Workbook) -> dict[str, Any]:
    """The outcome colours, the header, a bad cell, and text kept as typed (quote prefix)."""
    made = {
        name: book.add_format({"bg_color": fill, "font_color": font})
        for name, (fill, font) in STYLE.items()
    }
    header = {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True}
    made["header"] = book.add_format(header)
    made["header_quoted"] = book.add_format({**header, "quote_prefix": True})
    made["quoted"] = book.add_format({"quote_prefix": True})
    made["wrap"] = book.add_format({"text_wrap": True})
    made["title"] = book.add_format({"bold": True, "font_size": 12})
    made["count"] = book.add_format({"align": "left"})  # beside its word, not the next column
    made["cache"] = {}  # (number format, bad, quoted) -> format
    return made


def cell_format(
    book: xlsxwriter.Workbook, made: dict[str, Any], number: Any, bad: bool, quoted: bool = False
) -> Any:
    """The format of a cell: its number format, red when bad, quote prefix when formula-like;
    None when it needs none (the column's format applies)."""
    if not (number or bad or quoted):
        return None
    key = (number, bad, quoted)
    if key not in made["cache"]:
        spec: dict[str, Any] = {"quote_prefix": quoted}
        if number:
            spec["num_format"] = number
        if bad:
            spec.update(bg_color="#FFC7CE", font_color="#9C0006")
        made["cache"][key] = book.add_format(spec)
    return made["cache"][key]


# Column widths (in characters of the default font, about 0.08 in each) a landscape A4 page
# holds between its quarter-inch margins at the smallest scale a report prints at: 11.2 in
# / 0.08 in at 100% is 140; at 70% it is 200.
SMALLEST_SCALE = 70
PAGE_WIDTH_AT_SMALLEST = 200


def print_setup(ws: Worksheet, widths: list[int] | None = None) -> None:
    """Landscape A4, the header row on every page, narrow margins, and a footer with the file,
    the sheet and the page: a report prints as it reads. One page wide when its columns
    (`widths`) fit at 70% or more; a wider sheet prints at 70%, its further columns on the
    pages after, rather than shrunk past reading."""
    ws.set_landscape()
    ws.set_paper(9)  # A4: the size most partners print on; Letter printers scale it
    if widths is not None and sum(widths) > PAGE_WIDTH_AT_SMALLEST:
        ws.set_print_scale(SMALLEST_SCALE)
    else:
        ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.set_margins(left=0.25, right=0.25, top=0.75, bottom=0.75)
    ws.set_footer("&L&8&F&C&8&A&R&8Page &P of &N")


def kinds(t: Table) -> dict[int, Typed]:
    """How each column is written: the table's own types, CSV note columns (`auto`) settled by
    their cells (every non-blank cell a plain number: a number; an ISO date: a date). The note
    columns are looked at as one long column (two regexes in all, not two per column: a sheet
    of thousands of note columns costs its cells, not its columns times a regex)."""
    found = dict(t.typed)
    auto = [i for i, typed in t.typed.items() if typed.kind == "auto"]
    if auto:
        names = t.frame.columns  # a new list at each call: asked once
        cells = t.frame.select(pl.col(names[i]).alias(str(i)) for i in auto).unpivot()
        text = pl.col("value").str.strip_chars()
        blank = text.is_null() | (text == "")
        holds = cells.group_by("variable").agg(
            (blank | text.str.contains(_PLAIN_NUMBER)).all().alias("number"),
            (blank | text.str.contains(_ISO_DATE)).all().alias("date"),
        )
        found |= dict.fromkeys(auto, Typed("number"))  # no rows: nothing says otherwise
        for i, number, date in holds.iter_rows():
            found[int(i)] = Typed("number") if number else DATE if date else Typed("text")
    return {i: typed for i, typed in found.items() if typed.kind != "text"}


def _converted(name: str, dtype: pl.DataType, typed: Typed) -> pl.Expr:
    """Column `name` as Excel stores it: numbers and dates (as day numbers) in Float64,
    booleans in Boolean; null where a cell does not convert (it is written as text).

    fastexcel (fastexcel 0.21, `dtypes="string"`) renders a number cell as its shortest
    decimal (`12.5`, `0.25`; a float such as 0.1+0.2 comes as `0.3`), a boolean as `true` or
    `false`, a date or time cell as `2026-12-31 00:00:00` (a time alone on 1899-12-31, a
    duration such as 30 hours on 1900-01-01 06:00:00): each converts back to what Excel held."""
    if dtype != pl.String:
        if typed.kind in ("date", "datetime"):
            return _excel_days(pl.col(name).cast(pl.Datetime("ms")))
        return pl.col(name).cast(pl.Boolean if typed.kind == "boolean" else pl.Float64)
    text = pl.col(name).str.strip_chars()
    if typed.kind == "number":  # 400 digits make infinity, which no cell holds: kept as text
        number = text.cast(pl.Float64, strict=False)
        return pl.when(text.str.contains(NUMBER) & number.is_finite()).then(number)
    if typed.kind == "boolean":
        return text.str.to_lowercase().replace_strict(
            {"true": True, "false": False}, default=None, return_dtype=pl.Boolean
        )
    # fastexcel renders a date cell `2026-12-31 00:00:00`; a CSV holds `2026-12-31`
    moment = pl.coalesce(
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="ms", strict=False),
        text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("ms")),
    )
    return _excel_days(moment)


def _excel_days(moment: pl.Expr) -> pl.Expr:
    """Excel's day number of a datetime: days since 1899-12-30, one fewer before 1900-03-01
    (Excel counts a 29 February 1900 that never was; fastexcel reads those days that way)."""
    days = (moment - EXCEL_EPOCH).dt.total_milliseconds() / 86_400_000
    return pl.when(moment < pl.datetime(1900, 3, 1)).then(days - 1).otherwise(days)


def excel_frame(
    t: Table, typed: dict[int, Typed], wrapped: dict[int, float]
) -> tuple[pl.DataFrame, dict[int, int]]:
    """The table's columns converted for Excel, then the typed text columns as given (what a
    cell that did not convert shows), then the lines each row's wrapped cells take; and each
    typed column's place among those."""
    columns = t.frame.columns
    fallback = {
        i: len(columns) + n
        for n, i in enumerate(i for i in typed if t.frame.dtypes[i] == pl.String)
    }
    lines = [  # Excel does not grow a row for wrapped text it did not write itself
        (pl.col(columns[i]).str.len_chars() / (width - 1)).ceil().fill_null(1)
        for i, width in wrapped.items()
    ]
    frame = t.frame.select(
        *[
            _converted(c, t.frame.dtypes[i], typed[i]).alias(c) if i in typed else pl.col(c)
            for i, c in enumerate(columns)
        ],
        *[pl.col(columns[i]).alias(f"__as_given_{i}") for i in fallback],
        *(
            [pl.max_horizontal(lines).clip(1, MAX_LINES).cast(pl.Int32).alias("__lines")]
            if lines
            else []
        ),
    )
    return frame, fallback


def widths(ws: Worksheet, t: Table, typed: dict[int, Typed], made: dict[str, Any]) -> list[float]:
    """Each column as wide as its header and its first rows' cells need, capped; message
    columns wide and wrapped. Set before any row: constant-memory mode writes rows once."""
    head = t.frame.head(SAMPLE_ROWS)
    longest = (
        head.select(
            pl.col(c).cast(pl.String).str.len_chars().max().fill_null(0) for c in head.columns
        ).row(0)
        if head.height
        else (0,) * len(t.headers)
    )
    found = []
    for i, header in enumerate(t.headers):
        content = longest[i]
        if i in typed:
            content = _shown_length(typed[i], content)
        # a header wraps at its spaces; + 3: the filter button
        width = max(max(map(len, header.split() or [""])) + 3, content + 2, 6)
        found.append(min(width, MESSAGE_WIDTH if header in MESSAGES else MAX_WIDTH))
        ws.set_column(i, i, found[-1], made["wrap"] if header in MESSAGES else None)
    return found


def _shown_length(typed: Typed, given: int) -> int:
    """How long a typed cell shows (a number too narrow for its column shows as ####): a date
    as long as its format, a formatted number with room for separators and a currency."""
    shown = typed.num_format
    if typed.kind in ("date", "datetime"):
        return len(shown) if isinstance(shown, str) else 10 if typed.kind == "date" else 16
    return given + 4 if shown and typed.kind == "number" else given


def write_table(book: xlsxwriter.Workbook, made: dict[str, Any], t: Table, title: str) -> None:
    """One data sheet: header, typed cells, outcome colours, bad cells red with comments."""
    typed = kinds(t)
    ws = book.add_worksheet(title)
    fitted = widths(ws, t, typed, made)
    wrapped = {
        i: w for i, (h, w) in enumerate(zip(t.headers, fitted, strict=True)) if h in MESSAGES
    }
    frame, fallback = excel_frame(t, typed, wrapped)
    lines_at = frame.width - 1 if wrapped else None
    row_at = t.headers.index("row") if not t.plain else None  # a sheet to send again: neither
    cut = _printed(t.headers, row_at) if row_at is not None else None
    print_setup(ws, fitted[:cut] if cut else fitted)  # the columns printed decide the scale
    write_header(ws, made, t.headers, fitted)
    ws.autofilter(0, 0, max(frame.height, 1), len(t.headers) - 1)
    if cut:
        ws.print_area(0, 0, max(frame.height, 1), cut - 1)
    outcome_at = t.headers.index("outcome", row_at) if row_at is not None else -1
    rows = frame.iter_rows()
    if frame.height > 50_000 and sys.stderr.isatty():
        from tqdm import tqdm

        rows = tqdm(rows, total=frame.height, desc=t.title, unit="row", leave=False)
    plan = _plan(book, made, t, typed, fallback)
    marks, marked = t.marks, {row for row, _ in t.marks}
    string, number, boolean = ws.write_string, ws.write_number, ws.write_boolean
    for r, values in enumerate(rows, start=1):
        if lines_at is not None and values[lines_at] > 1:
            ws.set_row(r, LINE_HEIGHT * values[lines_at])
        sheet_row = values[row_at] if row_at is not None else None
        row_marked = sheet_row in marked
        for col, kind, given, unsafe, shown, style in plan:
            value = values[col]
            bad = False
            if row_marked and (notes := marks.get((sheet_row, col))):
                bad = col != outcome_at
                style = cell_format(book, made, shown, True) if bad else style
                if any(notes):
                    ws.write_comment(r, col, "\n".join(n for n in notes if n))
            if col == outcome_at:
                style = made.get(value)
            if value is None and given is not None:  # did not convert: the text as given
                value, kind = values[given], "text"
            if value is None or value == "":
                if bad or col == outcome_at:
                    ws.write_blank(r, col, None, style)
            elif kind == "text":
                if unsafe and _formula.match(value) and not _number.match(value):
                    style = cell_format(book, made, shown, bad, quoted=True)
                string(r, col, value, style)
            elif kind == "boolean":
                boolean(r, col, value, style)
            else:
                number(r, col, value, style)


def _printed(headers: list[str], row_at: int) -> int | None:
    """How many columns a printed report shows: up to `changes` (which tells before and
    after in words); the before and after numbers (for sums) and what a support ticket needs
    (ids, HTTP status, timings) stay on screen, so what a manager reads prints larger."""
    if "changes" not in headers[row_at:]:
        return None
    cut = headers.index("changes", row_at) + 1
    return cut if cut < len(headers) else None


def _plan(
    book: xlsxwriter.Workbook,
    made: dict[str, Any],
    t: Table,
    typed: dict[int, Typed],
    fallback: dict[int, int],
) -> list[tuple[int, str, int | None, bool, Any, Any]]:
    """Per column, settled once: its place, kind, text-as-given column, whether formula-like
    text may occur, its number format and its cell format."""
    plan = []
    for i in range(len(t.headers)):
        shown = typed[i].num_format if i in typed else 0
        kind = typed[i].kind if i in typed else "text"
        style = cell_format(book, made, shown, False)
        plan.append((i, kind, fallback.get(i), i in t.unsafe, shown, style))
    return plan


def write_header(
    ws: Worksheet, made: dict[str, Any], headers: list[str], fitted: list[float] | None = None
) -> None:
    """Row 1 in the header style, tall enough for its wrapped headers, frozen; a formula-like
    header stays text as typed."""
    if fitted:
        lines = max(math.ceil(len(h) / max(w - 3, 1)) for h, w in zip(headers, fitted, strict=True))
        ws.set_row(0, LINE_HEIGHT * min(lines, MAX_LINES))
    for col, header in enumerate(headers):
        quoted = _formula.match(header) and not _number.match(header)
        ws.write_string(0, col, header, made["header_quoted" if quoted else "header"])
    ws.freeze_panes(1, 0)


def write_plain(
    book: xlsxwriter.Workbook, made: dict[str, Any], title: str, frame: pl.DataFrame
) -> None:
    """A plain table (such as the plan's seats per offer): numbers as numbers, text as text."""
    ws = book.add_worksheet(title)
    head = frame.head(SAMPLE_ROWS)
    for col, name in enumerate(frame.columns):
        longest = head.get_column(name).cast(pl.String).str.len_chars().max() or 0
        ws.set_column(col, col, min(max(len(name) + 3, longest + 2, 6), MAX_WIDTH))
    print_setup(ws)
    write_header(ws, made, frame.columns)
    for r, values in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(values):
            if isinstance(value, str):
                quoted = _formula.match(value) and not _number.match(value)
                ws.write_string(r, c, value, made["quoted"] if quoted else None)
            elif value is not None:
                ws.write(r, c, value)
