"""Stage 5, report: the user's sheet handed back with a verdict on every row, as CSV and XLSX.

Every input column comes back as the user gave it, then our columns. Text a spreadsheet would
run as a formula is neutralised in every file. Files appear atomically (written beside, then
renamed), so a crash never leaves half a report that looks whole. The XLSX is streamed with
xlsxwriter's constant-memory mode: memory stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import polars as pl
import xlsxwriter
from tqdm import tqdm

from bulkpatch.check import NUMBER, Checked
from bulkpatch.load import ROW

FORMULA_START = r"^[=+\-@\t\r]"
EXCEL_MAX_ROWS = 1_048_576
NUMERIC_TYPES = ("integer", "number")


def run_folder(base: Path, source: Path) -> Path:
    """A new folder `<base>/<timestamp>-<input name>/` for one run's files."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-") or "sheet"
    folder = base / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}"
    candidate, n = folder, 2
    while candidate.exists():
        candidate, n = folder.with_name(f"{folder.name}-{n}"), n + 1
    candidate.mkdir(parents=True)
    return candidate


def neutralise(name: str) -> pl.Expr:
    """Prefix `'` to text a spreadsheet would run (`=`, `+`, `-`, `@`, tab, CR); numbers stay."""
    expr = pl.col(name)
    risky = expr.str.contains(FORMULA_START) & ~expr.str.contains(NUMBER)
    return pl.when(risky).then(pl.lit("'") + expr).otherwise(expr).alias(name)


def neutralise_text(text: str) -> str:
    """The same rule for one string (headers, sheet names in the summary)."""
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


def result_frame(checked: Checked) -> tuple[list[str], pl.DataFrame]:
    """Headers as the user gave them plus ours, and the safe-to-open rows beneath them."""
    sheet = checked.sheet
    frame = sheet.frame.join(checked.outcomes, on=ROW, how="left", maintain_order="left")
    names = [c.name for c in sheet.columns]
    frame = frame.select(
        *[neutralise(n) for n in names],
        pl.col(ROW).alias("row"),
        "outcome",
        neutralise("errors"),
    )
    headers = [neutralise_text(c.header) for c in sheet.columns] + ["row", "outcome", "errors"]
    return headers, frame


def write_csv(path: Path, headers: list[str], frame: pl.DataFrame) -> None:
    """CSV with a BOM (so Excel reads UTF-8) and the user's headers, duplicates and all."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(headers)
    with atomic(path) as tmp, tmp.open("wb") as handle:
        handle.write(b"\xef\xbb\xbf" + line.getvalue().encode())
        frame.write_csv(handle, include_header=False)


def write_check_xlsx(path: Path, parts: list[Checked]) -> bool:
    """One sheet per checked part plus a Summary; False when a part is too big for Excel."""
    if any(p.sheet.frame.height >= EXCEL_MAX_ROWS for p in parts):
        return False
    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with atomic(path) as tmp:
        book = xlsxwriter.Workbook(str(tmp), options)
        styles = _styles(book)
        for part in parts:
            _write_data_sheet(book, styles, part)
        _write_summary(book, styles, parts)
        book.close()
    return True


def _styles(book: xlsxwriter.Workbook) -> dict[str, object]:
    return {
        "header": book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1}),
        "bad": book.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006"}),
        "invalid": book.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006", "bold": True}),
        "valid": book.add_format({"bg_color": "#C6EFCE", "font_color": "#006100"}),
        "no_change": book.add_format({"bg_color": "#EDEDED"}),
        "bold": book.add_format({"bold": True}),
    }


def _write_data_sheet(book: xlsxwriter.Workbook, styles: dict, part: Checked) -> None:
    sheet = part.sheet
    headers, frame = result_frame(part)
    ws = book.add_worksheet(_sheet_title(sheet.sheet_name or sheet.kind.title()))
    ws.write_row(0, 0, headers, styles["header"])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(frame.height, 1), len(headers) - 1)
    ws.set_column(0, len(headers) - 1, 16)
    ws.set_column(len(headers) - 1, len(headers) - 1, 60)
    numeric = {i for i, c in enumerate(sheet.columns) if c.field and c.field.type in NUMERIC_TYPES}
    position = {c.header: i for i, c in enumerate(sheet.columns)}
    bad: dict[tuple[int, int], list[str]] = {}
    for row, column, message in part.issues.select("row", "column", "message").iter_rows():
        bad.setdefault((row, position.get(column, -1)), []).append(message)
    outcome_at, row_at = len(headers) - 2, len(headers) - 3
    rows = frame.iter_rows()
    if frame.height > 50_000 and sys.stderr.isatty():
        rows = tqdm(rows, total=frame.height, desc="check.xlsx", unit="row", leave=False)
    for r, values in enumerate(rows, start=1):
        sheet_row = values[row_at]
        for col, value in enumerate(values):
            messages = bad.get((sheet_row, col))
            style = styles["bad"] if messages else None
            if col == outcome_at:
                style = styles[value]
            if value is None:
                ws.write_blank(r, col, None, style)
            elif col == row_at or (col in numeric and re.fullmatch(NUMBER[1:-1], value)):
                ws.write_number(r, col, float(value), style)
            else:
                ws.write_string(r, col, value, style)
            if messages:
                ws.write_comment(r, col, "\n".join(messages))


def _write_summary(book: xlsxwriter.Workbook, styles: dict, parts: list[Checked]) -> None:
    ws = book.add_worksheet("Summary")
    ws.set_column(0, 0, 34)
    ws.set_column(1, 2, 12)
    ws.write_row(0, 0, ["Sheet", "Kind", "Rows"], styles["header"])
    row = 1
    for part in parts:
        ws.write_row(
            row, 0, [neutralise_text(part.sheet.label), part.sheet.kind, part.sheet.frame.height]
        )
        row += 1
    row += 1
    ws.write_row(row, 0, ["Outcome", "Rows"], styles["header"])
    first = row + 1
    totals = _add_counts([p.counts() for p in parts])
    for outcome, count in totals.items():
        row += 1
        ws.write_row(row, 0, [outcome, count])
    chart = book.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": "Rows by outcome",
            "categories": ["Summary", first, 0, row, 0],
            "values": ["Summary", first, 1, row, 1],
            "points": [{"fill": {"color": c}} for c in ("#63BE7B", "#F8696B", "#A5A5A5")],
            "data_labels": {"value": True},
        }
    )
    chart.set_title({"name": "Rows by outcome"})
    chart.set_legend({"none": True})
    ws.insert_chart(1, 4, chart)
    row += 2
    ws.write_row(row, 0, ["Problem (rule)", "Cells"], styles["header"])
    for rule, count in _add_counts([p.rule_counts() for p in parts]).items():
        row += 1
        ws.write_row(row, 0, [rule, count])


def _add_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in counts:
        for key, value in one.items():
            total[key] = total.get(key, 0) + value
    return total


def _sheet_title(name: str) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\ and not `Summary`."""
    title = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Sheet"
    return "Data" if title.lower() == "summary" else title
