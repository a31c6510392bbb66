"""fast_sheet: rows streamed into a workbook xlsxwriter wrote read back, in openpyxl and in
LibreOffice, with the values and types xlsxwriter's own cell writers give them."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlsxwriter

from bulkpatch.export import book as export_book
from bulkpatch.export import fast_sheet
from bulkpatch.export.rows import headers
from bulkpatch.load.record import RECORD_SHEET

HEADERS = headers("subscriptions")
# column -> cells in row order: what each cell needs to show, in the export's own columns
CELLS = {
    "Customer": ["Zoë & Söhne <GmbH>", '株式会社 "Sakura" \'s', " padded ", "a_x0041_b\tc"],
    "Customer ID": ["c1", "c2", "c3", "c4"],
    "Subscription ID": ["s1", "s2", "s3", "s4"],
    "Friendly name": ['=HYPERLINK("http://x")', "+1 seat", "-5", "@SUM(A1)"],
    "Commitment end date": ["2027-01-31", None, "2026-12-31", None],
    "Current seats": ["12", "007", None, "ten"],
    "Quantity": ["13", "7", None, "ten"],
    "Current auto renew": ["TRUE", "FALSE", "maybe", None],
    "Auto renew": ["FALSE", "TRUE", None, "TRUE"],
}
# what the export wrote of them cell by cell with xlsxwriter's own writers, before fast_sheet
# (formula-like text as it is, Excel's quote prefix keeping it text: `QUOTED`)
TYPED = {
    "Customer": CELLS["Customer"],
    "Friendly name": CELLS["Friendly name"],
    "Commitment end date": CELLS["Commitment end date"],
    "Current seats": [12, 7, None, "ten"],
    "Quantity": [13, 7, None, "ten"],
    "Current auto renew": [True, False, "maybe", None],
    "Auto renew": [False, True, None, True],
}


QUOTED = {"Friendly name"}  # the columns holding text a spreadsheet would run


def _exported(path: Path) -> None:
    frame = pl.DataFrame(
        {h: CELLS.get(h, [None] * 4) for h in HEADERS}, schema=dict.fromkeys(HEADERS, pl.String)
    )
    export_book.write(path, "subscriptions", HEADERS, frame, "2026-11-21")


def _before(path: Path) -> None:
    """The typed cells through xlsxwriter's write_string, write_number and write_boolean."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    quoted = book.add_format({"quote_prefix": True})
    ws = book.add_worksheet("Subscriptions")
    ws.write_row(0, 0, list(TYPED))
    for row, values in enumerate(zip(*TYPED.values(), strict=True), start=1):
        for col, value in enumerate(values):
            if isinstance(value, bool):
                ws.write_boolean(row, col, value)
            elif isinstance(value, int):
                ws.write_number(row, col, value)
            elif value is not None:
                prefixed = list(TYPED)[col] in QUOTED
                ws.write_string(row, col, value, quoted if prefixed else None)
    book.close()


def _columns(path: Path) -> dict[str, list]:
    """The typed columns as openpyxl reads them: header -> cell values."""
    rows = list(openpyxl.load_workbook(path)["Subscriptions"].values)
    return {h: [r[i] for r in rows[1:]] for i, h in enumerate(rows[0]) if h in TYPED}


def test_an_export_reads_back_in_openpyxl_and_libreoffice_as_xlsxwriter_wrote_it(
    tmp_path, libreoffice
):
    ours, before = tmp_path / "ours" / "ours.xlsx", tmp_path / "before" / "before.xlsx"
    for path, write in ((ours, _exported), (before, _before)):
        path.parent.mkdir()
        write(path)
    read = _columns(ours)
    assert read == _columns(before)
    assert read["Quantity"] == [13, 7, None, "ten"] and read["Auto renew"][:2] == [False, True]
    assert read["Friendly name"][0] == '=HYPERLINK("http://x")'  # as read: bulkpatch reads it so
    assert read["Customer"][3] == "a_x005F_x0041_b\tc"  # a literal escape kept literal
    ws = openpyxl.load_workbook(ours)["Subscriptions"]
    assert ws.dimensions == "A1:AB5"  # Reseller ID is one more column (issue 25)
    cell = {c.value: ws.cell(2, c.column) for c in ws[1]}
    assert not cell["Quantity"].protection.locked  # each cell has its column's style
    assert cell["Current seats"].protection.locked
    assert cell["Customer"].fill.fgColor.rgb not in ("FFFFFFFF", "00000000")
    name = cell["Friendly name"]  # text, never a formula, and kept text when edited in Excel
    assert name.data_type == "s" and name.quotePrefix and not cell["Customer"].quotePrefix
    record = [r[0] for r in openpyxl.load_workbook(ours)[RECORD_SHEET].values]
    kept = json.loads(record[1])
    values = [dict(zip(kept, json.loads(r), strict=True)) for r in record[2:]]
    assert [r["Current seats"] for r in values] == CELLS["Current seats"]
    assert [r["Customer ID"] for r in values] == CELLS["Customer ID"]
    again = tmp_path / "libreoffice"
    rendered = subprocess.run(
        [libreoffice, "--headless", "--convert-to", "xlsx", "--outdir", again, ours, before],
        capture_output=True,
        timeout=300,
        env={**os.environ, "HOME": str(tmp_path)},  # LibreOffice keeps its profile there
    )
    assert rendered.returncode == 0, rendered.stderr
    opened = _columns(again / "ours.xlsx")
    assert opened == _columns(again / "before.xlsx")
    assert opened["Customer"] == [*CELLS["Customer"][:3], "a_x0041_b\tc"]  # LibreOffice decodes
    assert (
        opened["Quantity"] == read["Quantity"] and opened["Friendly name"] == TYPED["Friendly name"]
    )


def _book(path: Path, rows: fast_sheet.Rows) -> None:
    """A sheet whose header xlsxwriter writes, its second column dates, then `rows`."""
    package = path.with_suffix(".tmp")
    book = xlsxwriter.Workbook(str(package), {"constant_memory": True})
    ws = book.add_worksheet("Dates & text")
    ws.write_row(0, 0, ["text", "day", "flag"])
    ws.set_column(1, 1, 12, book.add_format({"num_format": "yyyy-mm-dd"}))
    book.close()
    fast_sheet.write(package.read_bytes(), path, {"Dates & text": rows})


def test_typed_cells_in_many_chunks_and_rows_that_would_overlap_are_refused(tmp_path):
    n = fast_sheet.CHUNK + 5
    frame = pl.DataFrame(
        {
            "text": [f"row {i}" for i in range(n)],
            "day": [date(2026, 1, 1) + timedelta(days=i) for i in range(n)],
            "flag": [i % 2 == 0 for i in range(n)],
        }
    )
    serial = (pl.col("day") - pl.date(1899, 12, 30)).dt.total_days()
    cells = [fast_sheet.text(pl.col("text")), fast_sheet.number(serial)]
    rows = fast_sheet.Rows(frame, [*cells, fast_sheet.boolean(pl.col("flag"))], 1)
    _book(tmp_path / "d.xlsx", rows)
    ws = openpyxl.load_workbook(tmp_path / "d.xlsx")["Dates & text"]
    assert ws.dimensions == f"A1:C{n + 1}"
    last = [c.value for c in ws[n + 1]]
    assert last == [f"row {n - 1}", datetime(2026, 1, 1) + timedelta(days=n - 1), (n - 1) % 2 == 0]
    with pytest.raises(ValueError, match="overlap"):
        _book(tmp_path / "o.xlsx", fast_sheet.Rows(frame, cells, 0))
