"""report: the check report as a finance analyst opens it, in CSV and in Excel."""

from __future__ import annotations

import csv
import os
import subprocess
from datetime import date, datetime, time, timedelta

import openpyxl
import polars as pl
from conftest import CUSTOMER, SAMPLES, SUB1, SUB2

from bulkpatch.commands.api import check_file


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
        [
            "Customer ID",
            "Subscription ID",
            "Quantity",
            "Notes",
            "row",
            "outcome",
            "errors",
            "codes",
        ],
        [
            *[CUSTOMER, SUB1, "5.5", "first", "2", "invalid"],
            *['Quantity: "5.5" is not a whole number', "integer.not_whole"],
        ],
        [CUSTOMER, SUB2, "7", "second", "3", "valid", "", ""],
        [CUSTOMER, "a1b2c3d4-0000-4000-8000-000000000003", "", "third", "4", "no_change", "", ""],
    ]
    assert run.counts() == {"valid": 1, "invalid": 1, "no_change": 1}
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["check.csv", "check.xlsx", "to-fix.csv"]


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
    assert book.sheetnames == ["Summary", "Subscriptions"]  # what it is, first
    data = book["Subscriptions"]
    assert data.freeze_panes == "A2"
    assert data.auto_filter.ref == "A1:H3"
    assert [c.value for c in data[1]] == [
        "Customer ID",
        "Subscription ID",
        "Quantity",
        "Auto renew",
        "row",
        "outcome",
        "errors",
        "codes",
    ]
    assert data["H2"].value == "integer.not_whole; boolean.not_yes_or_no"  # as the errors are
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
    beside = {r[0]: r[2] for r in summary.iter_rows(values_only=True) if r[0]}
    assert beside["not a whole number"] == "integer.not_whole"  # each rule's issue code
    assert beside["not yes or no"] == "boolean.not_yes_or_no"
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
    assert names == ["check-orders.csv", "check-subscriptions.csv", "check.xlsx", "to-fix.xlsx"]
    assert run.counts() == {"valid": 2, "invalid": 1, "no_change": 0}
    assert openpyxl.load_workbook(run.folder / "check.xlsx").sheetnames == [
        "Summary",
        "Subscriptions",
        "Orders",
    ]
    orders = pl.read_csv(run.folder / "check-orders.csv", infer_schema=False)
    assert orders.get_column("outcome").to_list() == ["valid", "invalid"]


def test_default_run_folder_is_timestamped_under_reports_and_no_temp_files(quirk, tmp_path):
    run = check_file(quirk("bom.csv"), reports_base=tmp_path / "reports")
    assert run.folder.parent == tmp_path / "reports"
    assert run.folder.name.endswith("-bom")
    assert sorted(p.name for p in run.folder.iterdir()) == ["check.csv", "check.xlsx"]


def test_a_workbook_gets_its_rows_to_fix_as_a_workbook_with_the_same_sheets(write_xlsx, tmp_path):
    path = write_xlsx(
        {
            "Subscriptions": [
                ["Customer ID", "Subscription ID", "Quantity", "Notes"],
                [CUSTOMER, SUB1, 3.0, "fine"],
                [CUSTOMER, SUB2, -2.0, "too few"],
            ],
            "Orders": [
                ["Customer ID", "Order ID", "Status"],
                [CUSTOMER, "ORD-1", "closed"],
            ],
        }
    )
    run = check_file(path, out=tmp_path / "r")
    assert run.folder / "to-fix.xlsx" in run.reports
    book = openpyxl.load_workbook(run.folder / "to-fix.xlsx")
    assert book.sheetnames == ["Subscriptions", "Orders"]  # no Summary: a sheet to send again
    subs = list(book["Subscriptions"].iter_rows(values_only=True))
    assert subs[0] == (
        "Customer ID",
        "Subscription ID",
        "Quantity",
        "Notes",
        "Reason",
        "Reason code",
    )
    assert subs[1][:4] == (CUSTOMER, SUB2, -2, "too few") and "Quantity" in subs[1][4]
    assert subs[1][5] == "number.below_minimum"
    assert len(subs) == 2
    again = check_file(run.folder / "to-fix.xlsx", out=tmp_path / "s")
    assert again.counts() == {"valid": 0, "invalid": 2, "no_change": 0}  # read as it was


LONG_NOTE = "checked with the customer's finance team on the phone; " * 6


def typed_workbook(path):
    """A workbook as finance keeps it: dates, money, a share, a flag, seats, formula-like notes."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Subscriptions"
    ws.append(["Customer ID", "Subscription ID", "Quantity", "Signed on", "Unit price"])
    ws["F1"], ws["G1"], ws["H1"], ws["I1"] = "Discount", "Reviewed", "Notes", "Comment"
    rows = [
        [CUSTOMER, SUB1, 12, date(2026, 12, 31), 12.5, 0.25, True, "=SUM(A1)", LONG_NOTE],
        [CUSTOMER, SUB2, 7, date(2026, 1, 5), 1234.5, 1, False, "-5 EUR", "ok"],
    ]
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            ws.cell(r, c, value)
        ws.cell(r, 4).number_format = "dd/mm/yyyy"
        ws.cell(r, 5).number_format = '#,##0.00\\ "€"'
        ws.cell(r, 6).number_format = "0%"
    ws["H2"].data_type = "s"  # text that looks like a formula, as Excel keeps '=SUM(A1)
    book.save(path)
    return path


def test_apply_results_workbook_gives_back_the_users_types_and_formats(cli, tmp_path):
    sheet = typed_workbook(tmp_path / "month-end.xlsx")
    done = cli("apply", sheet, "--target", "sandbox", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    data = openpyxl.load_workbook(tmp_path / "run" / "results.xlsx")["Subscriptions"]
    header = [c.value for c in data[1]]
    cell = {name: data.cell(2, header.index(name) + 1) for name in header}
    assert cell["Signed on"].is_date and cell["Signed on"].value == datetime(2026, 12, 31)
    assert cell["Signed on"].number_format == "dd/mm/yyyy"
    assert cell["Unit price"].value == 12.5
    assert cell["Unit price"].number_format == '#,##0.00\\ "€"'
    assert (cell["Discount"].value, cell["Discount"].number_format) == (0.25, "0%")
    assert cell["Reviewed"].value is True and data.cell(3, 7).value is False
    assert cell["Quantity"].value == 12 and cell["Quantity"].data_type == "n"
    assert cell["http_status"].value == 200 and cell["outcome"].value == "ok"
    # formula-like text: shown as typed, kept text by the quote prefix, no visible '
    assert cell["Notes"].value == "=SUM(A1)" and cell["Notes"].data_type == "s"
    assert cell["Notes"].quotePrefix and data.cell(3, 8).value == "-5 EUR"
    assert data.cell(3, 8).quotePrefix


def test_apply_results_workbook_fits_columns_prints_and_explains_colours(cli, tmp_path):
    sheet = typed_workbook(tmp_path / "month-end.xlsx")
    assert cli("apply", sheet, "--target", "sandbox", "--out", tmp_path / "run").returncode == 0
    book = openpyxl.load_workbook(tmp_path / "run" / "results.xlsx")
    data = book["Subscriptions"]
    header = {c.value: c.column_letter for c in data[1]}
    by_column = {  # openpyxl groups neighbours of one width into one entry
        n: d.width for d in data.column_dimensions.values() for n in range(d.min, d.max + 1)
    }
    width = {c.value: by_column[c.column] for c in data[1]}
    assert width["Subscription ID"] > 36 > width["Quantity"]  # a GUID is 36 characters
    assert 50 <= width["Comment"] <= 51  # a long note is capped
    assert 10 < width["changes"] <= 61 and data.cell(2, 1).value == CUSTOMER
    changes = data[f"{header['changes']}2"]
    assert changes.alignment.wrap_text  # messages wrap in their capped width
    for ws in book.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        # issue 24: one page wide when that is 70% or more, else at 70% over more pages
        one_wide = ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0
        assert one_wide or ws.page_setup.scale == 70, ws.title
        assert ws.page_setup.paperSize == 9 and "&F" in ws.oddFooter.left.text
    assert data.print_title_rows == "$1:$1" and data.freeze_panes == "A2"
    changes_at = header["changes"]  # printed up to it: before/after numbers, ids stay on screen
    assert data.print_area.endswith(f"$A$1:${changes_at}$3")
    legend = {  # the outcome counts are the legend: each word in its colour, and its meaning
        r[0].value: (r[0].fill.fgColor.rgb, r[1].value, r[2].value)
        for r in book["Summary"].iter_rows(max_col=3)
        if r[0].value
    }
    assert legend["Outcome"][1:] == ("Rows", "What it means")
    assert legend["ok"][0].endswith("C6EFCE") and legend["ok"][1] == 2  # its two rows
    assert "Partner Center now shows" in legend["ok"][2]
    assert legend["invalid"][0].endswith("FFC7CE") and "problem to fix" in legend["invalid"][2]


def test_semicolon_cp1252_csv_gives_semicolon_utf8_bom_results(cli, tmp_path):
    sheet = tmp_path / "true-up.csv"
    sheet.write_bytes(
        "Customer ID;Subscription ID;Quantity;Notes\n"
        f"{CUSTOMER};{SUB1};12;Café 12,50 €\n"
        f"{CUSTOMER};{SUB2};abc;=1+1\n".encode("cp1252")
    )
    done = cli("apply", sheet, "--target", "sandbox", "--out", tmp_path / "run")
    assert done.returncode == 1, done.stderr  # one row is invalid
    raw = (tmp_path / "run" / "results.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert rows[0][:6] == ["Customer ID", "Subscription ID", "Quantity", "Notes", "row", "outcome"]
    assert rows[1][3] == "Café 12,50 €" and rows[1][5] == "ok"
    assert rows[2][3] == "'=1+1" and rows[2][5] == "invalid"  # the visible ' is for CSV
    undo = (tmp_path / "run" / "undo.csv").read_bytes().decode("utf-8-sig")
    assert undo.splitlines()[0].startswith("Customer ID;Subscription ID;")


def test_utf16_tab_csv_gives_utf16_tab_results(quirk, tmp_path):
    run = check_file(quirk("utf16.csv"), out=tmp_path)
    raw = (run.folder / "check.csv").read_bytes()
    assert raw.startswith((b"\xff\xfe", b"\xfe\xff"))  # UTF-16 with its BOM
    given = quirk("utf16.csv").read_bytes().decode("utf-16").splitlines()
    rows = raw.decode("utf-16").splitlines()
    assert rows[0].split("\t") == [*given[0].split("\t"), "row", "outcome", "errors", "codes"]
    assert [r.split("\t")[:3] for r in rows[1:]] == [g.split("\t")[:3] for g in given[1:]]


def test_csv_note_columns_of_numbers_or_iso_dates_are_typed_in_the_workbook(write_csv, tmp_path):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Budget", "Due", "Code", "Mixed"],
            [CUSTOMER, SUB1, "5", "1250.5", "2026-12-31", "007", "12"],
            [CUSTOMER, SUB2, "7", "", "2027-01-31", "12", "n/a"],
        ]
    )
    check_file(path, out=tmp_path)
    data = openpyxl.load_workbook(tmp_path / "check.xlsx")["Subscriptions"]
    assert data["D2"].value == 1250.5 and data["D3"].value is None
    assert data["E2"].is_date and data["E2"].value == datetime(2026, 12, 31)
    assert data["E2"].number_format == "yyyy-mm-dd"
    assert data["F2"].value == "007" and data["F3"].value == "12"  # an id-like code stays text
    assert data["G2"].value == "12"  # a column with text in it stays text
    assert data["C2"].value == 5 and data["E2"].value != "2026-12-31"


def test_times_and_durations_come_back_as_excel_keeps_them(tmp_path):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Subscriptions"
    ws.append(["Customer ID", "Subscription ID", "Quantity", "Call at", "Time spent"])
    ws.append([CUSTOMER, SUB1, 5, time(12, 30), timedelta(hours=30)])
    ws["D2"].number_format, ws["E2"].number_format = "hh:mm", "[h]:mm"
    book.save(tmp_path / "times.xlsx")
    check_file(tmp_path / "times.xlsx", out=tmp_path / "out")
    data = openpyxl.load_workbook(tmp_path / "out" / "check.xlsx")["Subscriptions"]
    assert (data["D2"].value, data["D2"].number_format) == (time(12, 30), "hh:mm")
    assert (data["E2"].value, data["E2"].number_format) == (timedelta(hours=30), "[h]:mm")


def test_a_long_message_wraps_and_its_row_grows_to_show_it(write_csv, tmp_path):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Auto renew", "Status"],
            [CUSTOMER, SUB1, "5.5", "maybe", "paused"],
            [CUSTOMER, SUB2, "7", "yes", "active"],
        ]
    )
    check_file(path, out=tmp_path)
    data = openpyxl.load_workbook(tmp_path / "check.xlsx")["Subscriptions"]
    errors = data["H2"]
    assert data["H1"].value == "errors" and len(errors.value) > 100
    assert errors.alignment.wrap_text
    assert data.row_dimensions[2].height >= 3 * 15  # every line of the message shows
    assert data.row_dimensions[3].height is None  # a short row keeps Excel's height


def test_the_month_end_results_print_summary_first_and_data_no_smaller_than_70_percent(
    cli, tmp_path, libreoffice
):
    run = tmp_path / "run"
    assert cli("apply", SAMPLES / "month-end.xlsx", "--out", run, "--quiet").returncode == 0
    rendered = subprocess.run(
        [
            libreoffice,
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            tmp_path,
            run / "results.xlsx",
        ],
        capture_output=True,
        timeout=300,
        env={**os.environ, "HOME": str(tmp_path)},  # LibreOffice keeps its profile there
    )
    assert rendered.returncode == 0 and (tmp_path / "results.pdf").is_file()
    pages = subprocess.run(
        ["pdftotext", "-layout", tmp_path / "results.pdf", "-"], capture_output=True, text=True
    ).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    first = pages[0]
    assert "SANDBOX (built-in): nothing in Partner Center changed" in first
    assert "Input SHA-256" in first and "Rows by outcome" in first
    # issue 24: a data sheet too wide for one page at 70% prints at 70%, its further columns
    # on the next pages (a few), rather than shrunk past reading
    footers = [p.strip().splitlines()[-1] for p in pages]
    assert 1 <= sum("Subscriptions" in f for f in footers) <= 3
    assert 1 <= sum("Orders" in f for f in footers) <= 3
    assert all("Page" in f and "of" in f for f in footers)
