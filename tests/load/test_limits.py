"""The input limits (`limits.py`): a sheet over them is refused in one line before it is read
whole, one within them is read in full; the time it takes is in benchmarks/run.py."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import xlsxwriter
from conftest import CUSTOMER, SUB1, SUB2

from bulkpatch.check.checker import check
from bulkpatch.errors import InputError
from bulkpatch.load.limits import MAX_CELL, MAX_COLUMNS, MAX_ROWS
from bulkpatch.load.reader import load
from bulkpatch.load.sheet import ROW

KEYS = ["Customer ID", "Subscription ID", "Quantity"]


def wide(tmp_path: Path, columns: int, header: list[str] | None = None) -> Path:
    """A CSV of `columns` columns (the keys, then notes) and two rows."""
    names = header or [*KEYS, *(f"Note {i}" for i in range(columns - len(KEYS)))]
    rows = [
        [CUSTOMER, sub, "3", *(f"{sub[-1]}-{i}" for i in range(columns - 3))]
        for sub in (SUB1, SUB2)
    ]
    path = tmp_path / f"wide-{columns}.csv"
    path.write_text("\n".join(",".join(r) for r in [names, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("columns", [100_000, 20_000, MAX_COLUMNS + 1])
def test_a_sheet_wider_than_the_limit_is_refused_in_one_line(tmp_path, columns):
    with pytest.raises(InputError) as refused:
        load(wide(tmp_path, columns))
    assert str(refused.value).startswith(
        f"{tmp_path / f'wide-{columns}.csv'}: the sheet has {columns:,} columns; bulkpatch "
        f"reads at most {MAX_COLUMNS:,} (Excel holds 16,384"
    )


def test_a_sheet_as_wide_as_the_limit_is_read_whole(tmp_path):
    (sheet,) = load(wide(tmp_path, MAX_COLUMNS))
    assert len(sheet.columns) == MAX_COLUMNS
    last = sheet.columns[-1]
    assert last.header == f"Note {MAX_COLUMNS - 4}" and last.field is None  # a note
    assert sheet.frame.get_column(last.name).to_list() == [
        f"1-{MAX_COLUMNS - 4}",
        f"2-{MAX_COLUMNS - 4}",
    ]
    assert check(sheet).outcomes.get_column("outcome").to_list() == ["valid", "valid"]


def test_separators_and_line_breaks_inside_quoted_headers_are_not_columns(tmp_path):
    quoted = [f'"Note {i}, part\nof one header"' for i in range(MAX_COLUMNS - len(KEYS))]
    (sheet,) = load(wide(tmp_path, MAX_COLUMNS, [*KEYS, *quoted]))
    assert len(sheet.columns) == MAX_COLUMNS
    assert sheet.columns[3].header == "Note 0, part\nof one header"
    with pytest.raises(InputError, match=f"has {MAX_COLUMNS + 1:,} columns"):
        load(wide(tmp_path, MAX_COLUMNS + 1, [*KEYS, *quoted, "one more"]))


def test_a_sheet_longer_than_the_limit_is_refused_in_one_line(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(",".join(KEYS) + "\n" + f"{CUSTOMER},{SUB1},1\n" * (MAX_ROWS + 1))
    with pytest.raises(InputError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: the sheet has {MAX_ROWS + 1:,} rows below its header; bulkpatch reads at most "
        f"{MAX_ROWS:,} (Excel holds 1,048,576, and every report is a workbook too). Split it "
        f"into sheets of up to {MAX_ROWS:,} rows and run each."
    )


def test_a_cell_longer_than_excel_holds_is_refused_naming_its_row_and_column(tmp_path):
    path = tmp_path / "long-cell.csv"
    fits, over = "é" * MAX_CELL, "x" * (MAX_CELL + 1)  # characters are counted, not bytes
    lines = [
        ",".join([*KEYS, "Notes"]),
        f"{CUSTOMER},{SUB1},1,{fits}",
        f"{CUSTOMER},{SUB2},2,{over}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: row 3, column D ('Notes') holds {MAX_CELL + 1:,} characters; a cell holds at "
        f"most {MAX_CELL:,}, as in Excel. Shorten it and try again."
    )
    path.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    (sheet,) = load(path)
    assert sheet.frame.get_column("Notes").to_list() == [fits]


def small_book(path: Path, last_cell: tuple[int, int] | None = None) -> Path:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = book.add_worksheet("Subscriptions")
    ws.write_row(0, 0, KEYS)
    ws.write_row(1, 0, [CUSTOMER, SUB1, 3])
    ws.write_row(2, 0, [CUSTOMER, SUB2, 4])
    if last_cell:
        ws.write_string(*last_cell, "far away")
    book.close()
    return path


def test_a_workbook_whose_cells_reach_far_is_refused_before_it_is_read(tmp_path):
    # fastexcel would hold every cell from A1 to XFD1048576 in memory: 550 GB, and the
    # process would die without a word
    path = small_book(tmp_path / "far.xlsx", (1_048_575, 16_383))
    with pytest.raises(InputError) as refused:
        load(path)
    assert str(refused.value).startswith(
        f"{path} [Subscriptions]: its cells reach row 1,048,576 and column XFD: "
        "17,179,869,184 cells to hold, empty ones too; bulkpatch reads a sheet of up to "
        "30,000,000."
    )
    (sheet,) = load(small_book(tmp_path / "near.xlsx", (999_999, 25)))  # a million rows by Z
    assert sheet.frame.get_column(ROW).to_list() == [2, 3, 1_000_000]
    assert sheet.frame.get_column("column Z").to_list() == [None, None, "far away"]


def test_cells_merged_down_to_the_last_row_are_reported_on_the_rows_there_are(tmp_path):
    path = small_book(tmp_path / "merged.xlsx")
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    sheet_xml = parts["xl/worksheets/sheet1.xml"]
    merge = b'<mergeCells count="1"><mergeCell ref="A3:C1048576"/></mergeCells>'
    parts["xl/worksheets/sheet1.xml"] = re.sub(rb"(</sheetData>)", rb"\1" + merge, sheet_xml)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    (sheet,) = load(path)
    checked = check(sheet)
    assert checked.issues.select("row", "column").rows() == [
        (3, "Customer ID"),
        (3, "Subscription ID"),
        (3, "Quantity"),
    ]
    assert checked.outcomes.get_column("outcome").to_list() == ["valid", "invalid"]
