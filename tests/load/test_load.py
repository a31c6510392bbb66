"""load: every encoding, separator and Excel quirk a finance sheet arrives with."""

from __future__ import annotations

from datetime import datetime

import openpyxl
import pytest
import xlsxwriter
from conftest import CUSTOMER, SUB1, SUB2

from bulkpatch.check.checker import check
from bulkpatch.errors import InputError
from bulkpatch.load.reader import load
from bulkpatch.load.sheet import ROW


def cells(sheet, header: str) -> list[str | None]:
    column = next(c for c in sheet.columns if c.header == header)
    return sheet.frame.get_column(column.name).to_list()


@pytest.mark.parametrize(
    ("name", "second_name"),
    [
        ("bom.csv", "Ørsted – Büro"),
        ("utf16.csv", "Ørsted – Büro"),
        ("utf16-no-bom.csv", "Ørsted – Büro"),
        ("cp1252.csv", "Müller – 5€"),
        ("semicolon.csv", "Ørsted – Büro"),
        ("tab.csv", "Ørsted – Büro"),
    ],
)
def test_encodings_and_separators_read_the_same_cells(quirk, name, second_name):
    (sheet,) = load(quirk(name))
    assert sheet.kind == "subscriptions"
    assert [c.header for c in sheet.columns] == [
        "Customer ID",
        "Subscription ID",
        "Quantity",
        "Friendly name",
    ]
    assert cells(sheet, "Customer ID") == [CUSTOMER, CUSTOMER]
    assert cells(sheet, "Friendly name") == ["Café Zürich", second_name]
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]


def test_quoted_newlines_stay_in_one_cell_and_one_row(quirk):
    (sheet,) = load(quirk("quoted-newline.csv"))
    assert cells(sheet, "Notes") == ["line one\nline two, with comma", "plain"]
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]


def test_ragged_rows_short_ones_are_blank_long_ones_are_flagged(quirk):
    (sheet,) = load(quirk("ragged.csv"))
    assert cells(sheet, "Quantity") == [None, "7"]
    # issue 24: row 2 ends before its Quantity (a cell that is sent): flagged, not left as is
    assert sheet.issues.get_column("row").to_list() == [2, 3]
    assert "this row has 2 cells but the header has 4" in sheet.issues.get_column("message")[0]
    assert "more cells than the header" in sheet.issues.get_column("message")[1]


def test_blank_lines_above_the_header_keep_the_row_numbers_a_spreadsheet_shows(quirk):
    (sheet,) = load(quirk("blank-lines-above-header.csv"))
    assert [c.header for c in sheet.columns][:3] == ["Customer ID", "Subscription ID", "Quantity"]
    assert cells(sheet, "Friendly name") == ["Café Zürich", "Ørsted – Büro"]
    assert sheet.frame.get_column(ROW).to_list() == [5, 6]
    assert sheet.issues.get_column("row").to_list() == [6]  # its extra cell


def test_empty_rows_above_an_excel_header_keep_excel_row_numbers(write_xlsx):
    header = ["Customer ID", "Subscription ID", "Quantity"]
    path = write_xlsx(
        {"Subscriptions": [[], [], header, [CUSTOMER, SUB1, 3], [], [CUSTOMER, SUB2, 4]]}
    )
    (sheet,) = load(path)
    assert [c.header for c in sheet.columns] == header
    assert sheet.frame.get_column(ROW).to_list() == [4, 6]


def test_headers_match_ignoring_case_spaces_and_dashes_and_values_are_kept_raw(quirk):
    (sheet,) = load(quirk("spaces.csv"))
    fields = [c.field.name for c in sheet.columns]
    assert fields == ["customer_id", "subscription_id", "quantity", "autoRenewEnabled"]
    assert [c.header for c in sheet.columns] == [
        "Customer ID",
        "subscription_id",
        "QUANTITY",
        "auto-renew",
    ]
    # two empty trailing rows are dropped; row numbers stay those Excel shows
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]
    assert cells(sheet, "Customer ID")[0] == f" {CUSTOMER}\u00a0"


def test_ids_stay_exact_text(quirk):
    (sheet,) = load(quirk("numeric-ids.csv"))
    assert sheet.kind == "orders"
    assert cells(sheet, "Order ID") == ["000123", "1234567890123456789"]


def test_unknown_columns_are_carried_and_duplicates_kept_apart(quirk):
    (sheet,) = load(quirk("duplicate-unknown-headers.csv"))
    notes = [c for c in sheet.columns if c.header == "Note"]
    assert [c.field for c in notes] == [None, None]
    assert [sheet.frame.get_column(c.name)[0] for c in notes] == ["first", "second"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty.csv", "empty.csv: is empty"),
        ("not-a-sheet.pdf", "not-a-sheet.pdf: is a PDF, not a sheet"),
        (
            "missing-column.csv",
            "has no Subscription ID column (the closest header is 'Subscripton ID')",
        ),
        (
            "unrecognised.csv",
            "none of its headers ('Company', 'Amount', 'Date') is a Partner Center field",
        ),
        ("duplicate-headers.csv", "columns C ('Quantity') and D ('Seats') both mean quantity"),
    ],
)
def test_unusable_input_is_one_clear_line(quirk, name, words):
    with pytest.raises(InputError) as error:
        load(quirk(name))
    message = str(error.value)
    assert words in message
    assert name in message
    assert "\n" not in message


def test_header_only_sheet_has_no_rows(quirk):
    (sheet,) = load(quirk("header-only.csv"))
    assert sheet.frame.height == 0


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a folder"):
        load(tmp_path)


def test_excel_quirks_floats_booleans_dates_and_spaces(write_xlsx):
    path = write_xlsx(
        {
            "Subscriptions": [
                [
                    "Customer ID",
                    "Subscription ID",
                    "Quantity",
                    "Auto renew",
                    "Next term end date",
                    "Ref",
                    None,
                ],
                [CUSTOMER, SUB1, 5.0, True, datetime(2026, 12, 31), "007", None],
                [f"\u00a0{CUSTOMER} ", SUB2, 12, False, "2027-01-31", 42, None],
                [None, None, None, None, None, None, None],
            ]
        }
    )
    (sheet,) = load(path)
    assert sheet.sheet_name == "Subscriptions"
    assert cells(sheet, "Quantity") == ["5", "12"]
    assert cells(sheet, "Auto renew") == ["true", "false"]
    assert cells(sheet, "Next term end date")[0].startswith("2026-12-31")
    assert cells(sheet, "Ref") == ["007", "42"]
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]


def test_workbook_with_both_sheets_loads_both_and_sheet_option_picks_one(write_xlsx):
    subs = [["Customer ID", "Subscription ID", "Quantity"], [CUSTOMER, SUB1, 3]]
    orders = [["Customer ID", "Order ID", "Status"], [CUSTOMER, "ORD-1", "cancelled"]]
    path = write_xlsx({"Notes": [["hello"]], "Subscriptions": subs, "Orders": orders})
    assert [(s.sheet_name, s.kind) for s in load(path)] == [
        ("Subscriptions", "subscriptions"),
        ("Orders", "orders"),
    ]
    (only,) = load(path, sheet="orders")
    assert only.kind == "orders"
    with pytest.raises(InputError, match="has no sheet 'Invoices'; its sheets are 'Notes'"):
        load(path, sheet="Invoices")


def test_kind_follows_the_headers_when_the_sheet_name_says_nothing(write_csv):
    orders = write_csv(
        [
            ["Customer ID", "Order ID", "Line item", "Subscription ID", "Quantity"],
            [CUSTOMER, "ORD-1", "0", SUB1, "4"],
        ]
    )
    (sheet,) = load(orders)
    assert sheet.kind == "orders"
    assert [c.field.name for c in sheet.columns][2:] == [
        "lineItems.lineItemNumber",
        "lineItems.subscriptionId",
        "lineItems.quantity",
    ]
    (forced,) = load(orders, kind="subscriptions")
    assert forced.kind == "subscriptions"


def test_broken_workbook_is_an_input_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InputError, match=r"broken\.xlsx: cannot be opened as an Excel workbook"):
        load(path)


def test_sheet_option_on_a_csv_is_refused(quirk):
    with pytest.raises(InputError, match="--sheet only applies to Excel"):
        load(quirk("bom.csv"), sheet="Subscriptions")


# --- Issue 13: sheets as Excel and colleagues leave them -------------------------------------


@pytest.mark.parametrize(
    ("name", "header", "meant"),
    [
        ("misspelled-header.csv", "Quantitiy", "Quantity"),
        ("misspelled-auto-renew.csv", "Auto renw", "Auto renew"),
    ],
)
def test_a_misspelled_header_stops_the_load_with_did_you_mean(quirk, name, header, meant):
    with pytest.raises(InputError) as error:
        load(quirk(name))
    assert f"Column {header!r} is not a field bulkpatch knows. Did you mean {meant!r}?" in str(
        error.value
    )
    assert name in str(error.value)


def test_a_misspelled_header_declared_a_note_is_carried(quirk):
    (sheet,) = load(quirk("misspelled-header.csv"), notes=["Quantitiy"])
    (mapped,) = [m for m in sheet.mapping() if m.header == "Quantitiy"]
    assert (mapped.field, mapped.role) == (None, "note")
    assert "declared a note" in mapped.remark
    assert cells(sheet, "Quantitiy") == ["14"]


def test_a_note_naming_no_column_is_refused(quirk):
    with pytest.raises(InputError, match="has no column 'Qty' to read as a note"):
        load(quirk("name-column.csv"), notes=["Qty"])


def test_everyday_words_are_notes_never_renames(quirk):
    (sheet,) = load(quirk("name-column.csv"))
    assert sheet.column_for("friendlyName") is None
    mapping = {m.header: m for m in sheet.mapping()}
    assert (mapping["Name"].field, mapping["Name"].role) == (None, "note")
    assert "To rename, call the column 'Friendly name'" in mapping["Name"].remark
    assert [(m.header, m.field, m.role) for m in sheet.mapping()] == [
        ("Customer ID", "customer_id", "key"),
        ("Subscription ID", "subscription_id", "key"),
        ("Name", None, "note"),
        ("Quantity", "quantity", "set"),
    ]


def test_the_mapping_gives_every_header_its_role(quirk):
    (sheet,) = load(quirk("current-equals-target.csv"))
    assert [(m.header, m.field, m.role, m.describes) for m in sheet.mapping()] == [
        ("Customer ID", "customer_id", "key", None),
        ("Subscription ID", "subscription_id", "key", None),
        ("Current seats", "current:quantity", "expected", "quantity"),
        ("Quantity", "quantity", "set", None),
        ("Current status", "current:status", "expected", "status"),
        ("Status", "status", "set", None),
        ("Current auto renew", "current:autoRenewEnabled", "expected", "autoRenewEnabled"),
        ("Auto renew", "autoRenewEnabled", "set", None),
    ]
    assert sheet.mapping()[2].to_json()["remark"].startswith("the quantity you believe")


def test_an_export_shaped_sheet_maps_what_a_patch_cannot_change_as_expected(quirk):
    (sheet,) = load(quirk("export-shaped.csv"))
    roles = {m.header: m.role for m in sheet.mapping()}
    assert roles == {
        "customerId": "key",
        "id": "key",
        "offerId": "expected",
        "offerName": "expected",
        "commitmentEndDate": "expected",
        "termDuration": "expected",
        "quantity": "set",
        "autoRenewEnabled": "set",
    }


def test_cr_only_line_endings_are_lines(quirk):
    (sheet,) = load(quirk("cr-only.csv"))
    assert cells(sheet, "Quantity") == ["3", "4"]
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]


def test_a_title_block_above_the_header_is_skipped_and_noted(quirk):
    (sheet,) = load(quirk("title-above-header.csv"))
    assert [c.header for c in sheet.columns] == ["Customer ID", "Subscription ID", "Quantity"]
    assert cells(sheet, "Quantity") == ["3", "4"]
    assert sheet.frame.get_column(ROW).to_list() == [5, 6]
    assert sheet.notes == [
        "Skipped rows 1-2 above the header (a title or instructions): the header is row 4."
    ]


def test_a_totals_row_is_skipped_and_noted(quirk):
    (sheet,) = load(quirk("total-row.csv"))
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]
    assert sheet.notes == ["Skipped row 4 ('Total'): a totals row, not a change."]


def test_a_totals_row_in_the_key_column_is_skipped_too(quirk):
    (sheet,) = load(quirk("total-in-key-column.csv"))
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]
    assert sheet.notes == ["Skipped row 4 ('Grand total'): a totals row, not a change."]


def test_a_hidden_sheet_is_never_picked_unless_named(write_xlsx, tmp_path):
    rows = [["Customer ID", "Subscription ID", "Quantity"], [CUSTOMER, SUB1, 3]]
    path = write_xlsx({"Old": [*rows[:1], [CUSTOMER, SUB2, 9]], "Current": rows})
    hidden = tmp_path / "hidden.xlsx"
    book = xlsxwriter.Workbook(str(hidden))
    for title, body in (("Old", [*rows[:1], [CUSTOMER, SUB2, 9]]), ("Current", rows)):
        ws = book.add_worksheet(title)
        for r, row in enumerate(body):
            ws.write_row(r, 0, row)
        if title == "Old":
            ws.hide()
        else:
            ws.activate()
    book.close()
    (shown,) = load(hidden)
    assert shown.sheet_name == "Current"
    assert cells(shown, "Quantity") == ["3"]
    assert shown.notes == ["Skipped the hidden sheet 'Old' (name it with --sheet to read it)."]
    (named,) = load(hidden, sheet="Old")
    assert cells(named, "Quantity") == ["9"] and named.notes == []
    (first,) = load(path)  # nothing hidden: the first sheet, as before
    assert first.sheet_name == "Old" and first.notes == []


def test_an_instructions_sheet_first_suggests_the_sheet_option(write_xlsx):
    path = write_xlsx(
        {
            "Instructions": [["How to fill in this workbook"], ["One row per subscription."]],
            "Data": [["Customer ID", "Subscription ID", "Quantity"], [CUSTOMER, SUB1, 3]],
        }
    )
    with pytest.raises(InputError) as error:
        load(path)
    assert "Pick the sheet to read with --sheet: 'Instructions', 'Data'." in str(error.value)
    (sheet,) = load(path, sheet="Data")
    assert cells(sheet, "Quantity") == ["3"]


def test_a_formula_with_no_saved_value_makes_its_row_invalid(tmp_path):
    path = tmp_path / "never-calculated.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Subscriptions")
    ws.write_row(0, 0, ["Customer ID", "Subscription ID", "Quantity", "Notes"])
    ws.write_row(1, 0, [CUSTOMER, SUB1])
    ws.write_formula(1, 2, "=3+4", None, "")  # what a tool that cannot calculate leaves
    ws.write_row(2, 0, [CUSTOMER, SUB2])
    ws.write_formula(2, 2, "=2*2", None, 4)  # calculated and saved: a value like any other
    ws.write_formula(2, 3, '=IF(C3>1,"big","small")', None, "big")
    book.close()
    (sheet,) = load(path)
    assert cells(sheet, "Quantity") == [None, "4"]  # what fastexcel gives: an empty cell
    checked = check(sheet)
    assert checked.issues.select("row", "column", "value").rows() == [(2, "Quantity", "=3+4")]
    assert checked.issues.get_column("message").to_list() == [
        "Quantity: the cell holds a formula (=3+4) with no saved value; open the file in Excel, "
        "save it, and try again"
    ]
    assert checked.outcomes.get_column("outcome").to_list() == ["invalid", "valid"]


def test_merged_cells_over_data_rows_are_reported_on_those_rows(tmp_path):
    path = tmp_path / "merged.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Subscriptions")  # column A left empty: the grid starts at B
    ws.merge_range(0, 1, 0, 3, "Seat true-up")  # a merged title: not over data
    ws.write_row(1, 1, ["Customer ID", "Subscription ID", "Quantity"])
    ws.write_row(2, 1, [CUSTOMER, SUB1])
    ws.write_row(3, 1, [CUSTOMER, SUB2])
    ws.merge_range(2, 3, 3, 3, 5)
    book.close()
    (sheet,) = load(path)
    checked = check(sheet)
    assert checked.issues.select("row", "column", "rule").rows() == [
        (3, "Quantity", "merged cells"),
        (4, "Quantity", "merged cells"),
    ]
    assert checked.issues.get_column("message")[1] == (
        "Quantity: cells D3:D4 are merged, so only row 3 holds the value; unmerge them and "
        "write the value on every row"
    )
    assert checked.outcomes.get_column("outcome").to_list() == ["invalid", "invalid"]


def test_rows_hidden_by_a_filter_are_read_and_said_so(tmp_path):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Subscriptions"
    ws.append(["Customer ID", "Subscription ID", "Quantity"])
    for n in range(4):
        ws.append([CUSTOMER, f"a1b2c3d4-0000-4000-8000-00000000000{n}", n + 1])
    ws.auto_filter.ref = "A1:C5"
    ws.row_dimensions[3].hidden = True  # filtered out in Excel
    ws.row_dimensions[5].hidden = True
    book.save(tmp_path / "filtered.xlsx")
    (sheet,) = load(tmp_path / "filtered.xlsx")
    assert sheet.frame.get_column(ROW).to_list() == [2, 3, 4, 5]  # every row is still a row
    assert sheet.notes == [
        "Rows 3, 5 are hidden in the workbook (by a filter or by hand): read, checked and sent "
        "like every other row; delete a row to leave it out."
    ]


# --- line endings and files the reader cannot parse -------------------------------------------


def test_mixed_line_endings_read_row_by_row_as_a_spreadsheet_shows_them(quirk):
    # CR LF, then a CR alone (an old Mac line pasted in), then LF, then no ending at all;
    # a line break inside quotes is the cell's own, whichever it is
    (sheet,) = load(quirk("mixed-line-endings.csv"))
    assert sheet.frame.get_column(ROW).to_list() == [2, 3, 4, 5, 6]
    assert cells(sheet, "Subscription ID") == [
        f"a1b2c3d4-0000-4000-8000-00000000000{n}" for n in range(1, 6)
    ]
    assert cells(sheet, "Quantity") == ["3", "4", "5", "6", "7"]
    assert cells(sheet, "Notes") == [
        "line one\r\nline two",
        "old Mac",
        "Unix",
        "its own\rline break",
        "no line ending",
    ]
    assert sheet.issues.is_empty()  # no row ran into the next
    assert check(sheet).outcomes.get_column("outcome").to_list() == ["valid"] * 5


def test_a_quote_inside_a_cell_is_read_as_excel_reads_it(quirk):
    (sheet,) = load(quirk("quote-inside-cell.csv"))
    assert cells(sheet, "Notes") == ['12" screen', "Contoso Ltd"]
    assert sheet.frame.get_column(ROW).to_list() == [2, 3]


def test_a_quote_never_closed_is_one_line_naming_where_it_opens(cli, quirk):
    ran = cli("check", quirk("unclosed-quote.csv"))
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [
        f'bulkpatch: {quirk("unclosed-quote.csv")}: line 3: a quote (") opens a cell there '
        "that never closes, so every line after it would be that one cell. Close the quote, or "
        'write a quote inside a cell as two ("").'
    ]
    assert "Traceback" not in ran.stdout + ran.stderr and "unexpected" not in ran.stderr
