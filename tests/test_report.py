"""report: the check report as a finance analyst opens it, in CSV and in Excel."""

from __future__ import annotations

import csv

import openpyxl
import polars as pl
from conftest import CUSTOMER, SUB1, SUB2

from bulkpatch.commands import check_file


def read_csv_report(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    return list(csv.reader(raw.decode("utf-8-sig").splitlines()))


def test_csv_report_keeps_input_columns_then_row_outcome_errors(write_csv, tmp_path):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Notes"],
            [CUSTOMER, SUB1, "5.5", "first"],
            [CUSTOMER, SUB2, "7", "second"],
            [CUSTOMER, "a1b2c3d4-0000-4000-8000-000000000003", "", "third"],
        ]
    )
    run = check_file(path, out=tmp_path / "out")
    rows = read_csv_report(tmp_path / "out" / "check.csv")
    assert rows == [
        ["Customer ID", "Subscription ID", "Quantity", "Notes", "row", "outcome", "errors"],
        [CUSTOMER, SUB1, "5.5", "first", "2", "invalid", 'Quantity: "5.5" is not a whole number'],
        [CUSTOMER, SUB2, "7", "second", "3", "valid", ""],
        [CUSTOMER, "a1b2c3d4-0000-4000-8000-000000000003", "", "third", "4", "no_change", ""],
    ]
    assert run.counts() == {"valid": 1, "invalid": 1, "no_change": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["check.csv", "check.xlsx"]


def test_formula_text_is_quoted_in_csv_and_quote_prefixed_in_xlsx_and_numbers_stay(quirk, tmp_path):
    check_file(quirk("formula-text.csv"), out=tmp_path)
    rows = read_csv_report(tmp_path / "check.csv")
    assert [r[2:4] for r in rows[1:]] == [["'=1+1", "'@SUM(A1)"], ["-5", "'+cmd|' /C calc'!A0"]]
    sheet = openpyxl.load_workbook(tmp_path / "check.xlsx")["Subscriptions"]
    # in a workbook: the text as typed, no visible `'`, kept text by Excel's quote prefix
    formula, at_sign = sheet.cell(2, 3), sheet.cell(2, 4)
    assert [formula.value, at_sign.value] == ["=1+1", "@SUM(A1)"]
    assert formula.data_type == "s" and formula.quotePrefix and at_sign.quotePrefix
    assert sheet.cell(3, 3).value == "-5" and not sheet.cell(3, 3).quotePrefix


def test_xlsx_report_marks_bad_cells_and_summarises(write_csv, tmp_path):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Auto renew"],
            [CUSTOMER, SUB1, "5.5", "maybe"],
            [CUSTOMER, SUB2, "7", "yes"],
        ]
    )
    check_file(path, out=tmp_path)
    book = openpyxl.load_workbook(tmp_path / "check.xlsx")
    assert book.sheetnames == ["Subscriptions", "Summary"]
    data = book["Subscriptions"]
    assert data.freeze_panes == "A2"
    assert data.auto_filter.ref == "A1:G3"
    assert [c.value for c in data[1]] == [
        "Customer ID",
        "Subscription ID",
        "Quantity",
        "Auto renew",
        "row",
        "outcome",
        "errors",
    ]
    bad, good = data["C2"], data["C3"]
    assert bad.fill.fgColor.rgb.endswith("FFC7CE")
    assert bad.comment.text == 'Quantity: "5.5" is not a whole number'
    assert data["D2"].comment.text.startswith('Auto renew: "maybe" is not yes or no')
    assert good.comment is None and good.value == 7  # quantities are numbers in Excel
    assert data["F2"].value == "invalid" and data["E2"].value == 2
    summary = book["Summary"]
    cells = {r[0]: r[1] for r in summary.iter_rows(values_only=True) if r[0]}
    assert cells["valid"] == 1 and cells["invalid"] == 1 and cells["no_change"] == 0
    assert cells["not a whole number"] == 1 and cells["not yes or no"] == 1
    assert len(summary._charts) == 1


def test_workbook_with_two_sheets_gets_a_csv_each_and_one_xlsx(write_xlsx, tmp_path):
    path = write_xlsx(
        {
            "Subscriptions": [
                ["Customer ID", "Subscription ID", "Quantity"],
                [CUSTOMER, SUB1, 3.0],
            ],
            "Orders": [
                ["Customer ID", "Order ID", "Status"],
                [CUSTOMER, "ORD-1", "cancelled"],
                [CUSTOMER, "ORD-2", "closed"],
            ],
        }
    )
    run = check_file(path, out=tmp_path / "r")
    names = sorted(p.name for p in run.reports)
    assert names == ["check-orders.csv", "check-subscriptions.csv", "check.xlsx"]
    assert run.counts() == {"valid": 2, "invalid": 1, "no_change": 0}
    assert openpyxl.load_workbook(run.folder / "check.xlsx").sheetnames == [
        "Subscriptions",
        "Orders",
        "Summary",
    ]
    orders = pl.read_csv(run.folder / "check-orders.csv", infer_schema=False)
    assert orders.get_column("outcome").to_list() == ["valid", "invalid"]


def test_default_run_folder_is_timestamped_under_reports_and_no_temp_files(quirk, tmp_path):
    run = check_file(quirk("bom.csv"), reports_base=tmp_path / "reports")
    assert run.folder.parent == tmp_path / "reports"
    assert run.folder.name.endswith("-bom")
    assert sorted(p.name for p in run.folder.iterdir()) == ["check.csv", "check.xlsx"]
