"""Every column accounted for (issue 24): a known field is never silently a note, a sheet that
mixes kinds or cuts rows short says so, refusals say what to type, and a file bulkpatch cannot
open says why. Each case is a quirk file named for the defect, run through the real CLI."""

from __future__ import annotations

import json

import openpyxl
import polars as pl
import pytest
from conftest import ROOT

from bulkpatch.check.checker import check
from bulkpatch.check.values import EXCEL_BOOLEANS, typed
from bulkpatch.load.reader import load


def refused(cli, name, *args):
    """The CLI's one line for an input it cannot use: exit 2, no traceback."""
    done = cli("check", name, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def problems(cli, path, *args):
    """The rows' problems as `check --json` gives them, and the exit code."""
    done = cli("check", path, "--json", *args)
    assert "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout)
    return done.returncode, [p for s in summary["sheets"] for p in s["problems"]], summary


# --- 1. A known field is never silently a note ---------------------------------------------------


def test_auto_renew_on_an_orders_sheet_stops_the_load_and_says_where_it_goes(cli, quirk):
    said = refused(cli, quirk("auto-renew-on-orders.csv"))
    assert "column 'Auto renew' is a subscription field, and this is an orders sheet" in said
    assert "put these rows on a Subscriptions sheet, by Subscription ID" in said


def test_a_declared_note_is_still_a_note(cli, quirk):
    done = cli("check", quirk("auto-renew-on-orders.csv"), "--note", "Auto renew", "--json")
    assert done.returncode == 0, done.stderr
    mapping = json.loads(done.stdout)["sheets"][0]["mapping"]
    assert {"header": "Auto renew", "role": "note"}.items() <= mapping[-1].items()


def test_a_new_name_on_order_lines_is_refused_with_how_to_rename(cli, quirk):
    said = refused(cli, quirk("friendly-name-on-order-lines.csv"))
    assert "column 'Friendly name': order lines cannot be renamed: rename the subscription" in said


# --- 2. A sheet that mixes kinds -----------------------------------------------------------------


def test_a_sheet_mixing_subscriptions_and_order_lines_is_refused_with_how_to_split(cli, quirk):
    said = refused(cli, quirk("mixed-kinds.csv"))
    assert "mixes subscriptions and order lines" in said
    assert "rows 2, 4 have a Subscription ID and no Order ID (subscriptions)" in said
    assert "row 3 has an Order ID (order lines)" in said
    assert "two sheets of one workbook, Subscriptions and Orders" in said
    assert "is empty" not in said  # never one kind's rules applied to the other's rows


def test_a_subscriptions_sheet_whose_order_ids_are_cross_checks_is_not_mixed(cli, write_csv):
    customer, sub = "0f1b2c3d-1111-4222-8333-444455556666", "a1b2c3d4-0000-4000-8000-000000000001"
    path = write_csv(
        [["Customer ID", "Subscription ID", "Order ID", "Quantity"], [customer, sub, "ORD-1", "4"]]
    )
    code, found, _ = problems(cli, path)
    assert (code, found) == (0, [])


# --- 3. Rows the file did not finish -------------------------------------------------------------


def test_a_row_cut_short_is_flagged_with_its_row_and_cells(cli, quirk):
    code, found, _ = problems(cli, quirk("short-row.csv"))
    assert code == 1
    (short,) = found
    assert (short["row"], short["code"]) == (2, "row.short")
    assert short["message"].startswith("this row has 3 cells but the header has 5 columns")


def test_a_comma_inside_quotes_is_not_a_cell_when_rows_are_counted(cli, quirk):
    # the line has as many commas as the header, one of them inside "Team A, Sales"
    code, found, _ = problems(cli, quirk("short-row-comma-in-quotes.csv"))
    assert code == 1
    (short,) = found
    assert (short["row"], short["code"]) == (2, "row.short")
    assert short["message"].startswith("this row has 4 cells but the header has 5 columns")


def test_a_short_row_below_a_title_is_named_by_its_row_in_the_file(cli, quirk):
    code, found, _ = problems(cli, quirk("short-row-below-title.csv"))
    assert code == 1
    (short,) = found
    assert (short["row"], short["code"]) == (5, "row.short")
    assert short["message"].startswith("this row has 3 cells but the header has 4 columns")


def test_a_row_missing_only_trailing_cells_never_sent_is_read_and_the_mapping_says_so(cli, quirk):
    code, found, summary = problems(cli, quirk("short-row-optional-cells.csv"))
    assert (code, found) == (0, [])
    remarks = {m["header"]: m["remark"] for m in summary["sheets"][0]["mapping"]}
    assert remarks["Notes"].endswith("rows 2, 3 end before this column: read as empty")
    assert remarks["Current seats"].endswith("row 3 ends before this column: read as empty")


# --- 4. Refusals that say what to type -----------------------------------------------------------


def test_zero_seats_says_how_to_cancel(cli, quirk):
    code, (found,), _ = problems(cli, quirk("zero-seats.csv"))
    assert (code, found["code"]) == (1, "number.below_minimum")
    assert found["message"].endswith("; to cancel, write deleted in Status")


def test_a_decimal_comma_says_the_whole_number_to_write(cli, quirk):
    code, found, _ = problems(cli, quirk("decimal-comma.csv"))
    assert code == 1
    said = [(p["row"], p["code"], p["message"]) for p in found]
    assert said == [
        (2, "integer.decimal_comma", 'Quantity: "3,0" has a decimal comma: write 3'),
        (3, "integer.decimal_comma", 'Quantity: "3,00" has a decimal comma: write 3'),
        (4, "integer.grouped_digits", said[2][2]),  # 3,000: thousands or decimals, not guessed
    ]


def test_excel_true_and_false_in_german_are_yes_and_no_other_words_say_what_to_write(
    cli, quirk, tmp_path
):
    code, found, _ = problems(cli, quirk("german-booleans.csv"), "--out", tmp_path / "c")
    assert code == 1
    assert [(p["row"], p["message"]) for p in found] == [
        (4, 'Auto renew: "vielleicht" is not yes or no: write yes or no')
    ]
    checked = (tmp_path / "c" / "check.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(";")[4] for line in checked[1:3]] == ["valid", "valid"]


@pytest.mark.parametrize(("language", "words"), list(EXCEL_BOOLEANS.items()))
def test_every_language_s_true_and_false_reads_as_yes_and_no_and_readme_lists_it(
    write_csv, language, words
):
    customer = "0f1b2c3d-1111-4222-8333-444455556666"
    ids = [f"a1b2c3d4-0000-4000-8000-00000000000{i}" for i in (1, 2)]
    rows = [[customer, sub, word] for sub, word in zip(ids, words, strict=True)]
    (sheet,) = load(write_csv([["Customer ID", "Subscription ID", "Auto renew"], *rows]))
    assert check(sheet).issues.is_empty(), language
    assert typed(sheet).get_column("autoRenewEnabled").to_list() == [True, False]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{words[0]}`/`{words[1]}`" in readme and "`y`" in readme


def test_a_bad_date_in_a_cross_check_column_says_it_may_be_removed(cli, quirk):
    code, (found,), _ = problems(cli, quirk("date-in-cross-check.csv"))
    assert (code, found["code"]) == (1, "date.not_a_date")
    assert "this column is only a cross-check (never sent" in found["message"]
    assert found["message"].endswith("write the date as 2026-12-31, or remove the column")


# --- 5. Files bulkpatch cannot open say why ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("encrypted.xlsx", "is protected with a password (an encrypted workbook)"),
        ("ods-renamed.xlsx", "is an OpenDocument spreadsheet (.ods, as LibreOffice saves)"),
        ("numbers-renamed.xlsx", "is an Apple Numbers document, not a sheet; in Numbers"),
        ("xls-renamed.xlsx", "is an Excel 97-2003 workbook (.xls) under another name"),
        ("not-a-sheet.pdf", "is a PDF, not a sheet"),
    ],
)
def test_a_file_of_another_format_says_what_it_is_and_what_to_do(cli, quirk, name, said):
    line = refused(cli, quirk(name))
    assert line.startswith(f"bulkpatch: {quirk(name)}: {said}")


def test_an_encrypted_workbook_says_to_save_a_copy_without_the_password(cli, quirk):
    assert "save a copy without the password" in refused(cli, quirk("encrypted.xlsx"))


def test_a_pdf_renamed_as_a_csv_is_still_a_pdf(cli, quirk, tmp_path):
    renamed = tmp_path / "sheet.csv"
    renamed.write_bytes(quirk("not-a-sheet.pdf").read_bytes())
    assert f"{renamed}: is a PDF, not a sheet" in refused(cli, renamed)


@pytest.mark.parametrize("command", ["check", "plan", "apply"])
def test_a_folder_or_a_missing_file_is_one_line_also_from_the_thread_that_hashes_it(
    cli, tmp_path, command
):
    folder = tmp_path / "sheets"
    folder.mkdir()
    for given, said in [
        (folder, "is a folder, not a sheet; give the path of a CSV or Excel file."),
        (tmp_path / "nope.csv", "no such file; check its name and folder."),
    ]:
        done = cli(command, given)
        assert done.returncode == 2
        assert done.stderr == f"bulkpatch: {given}: {said}\n"  # no traceback from any thread


# --- 6. All or nothing, when asked ---------------------------------------------------------------


def outcomes(folder):
    """Each row's outcome and reason, as the results sheet gives them."""
    table = pl.read_csv(folder / "results.csv", infer_schema=False)
    return table.select("outcome", "error_message").rows()


def test_all_or_nothing_sends_nothing_when_a_row_is_invalid_and_a_resume_neither(
    cli, quirk, tmp_path
):
    sheet = quirk("all-or-nothing-invalid-row.csv")
    done = cli("apply", sheet, "--all-or-nothing", "--out", tmp_path / "run", "--quiet")
    assert done.returncode == 1, done.stderr
    (first, why), (second, _) = outcomes(tmp_path / "run")
    assert (first, second) == ("not_sent", "invalid")
    assert why.startswith("not sent: all or nothing (--all-or-nothing), and 1 row is invalid")
    fix = (tmp_path / "run" / "to-fix.csv").read_text(encoding="utf-8-sig")
    assert "all or nothing" in fix and "to cancel, write deleted in Status" in fix
    resumed = cli("apply", "--resume", tmp_path / "run", "--quiet")
    assert resumed.returncode == 1
    assert [o for o, _ in outcomes(tmp_path / "run")] == ["not_sent", "invalid"]
    # the sandbox still holds what it held: the first row is a change to send, not a no_change
    planned = cli("plan", sheet, "--out", tmp_path / "plan", "--json")
    assert json.loads(planned.stdout)["change"] == 1


def test_all_or_nothing_sends_nothing_when_a_row_would_be_a_conflict(
    cli, quirk, write_csv, tmp_path
):
    customer, sub = "0f1b2c3d-1111-4222-8333-444455556666", "a1b2c3d4-0000-4000-8000-000000000002"
    first = write_csv([["Customer ID", "Subscription ID", "Quantity"], [customer, sub, "20"]])
    assert cli("apply", first, "--out", tmp_path / "first", "--quiet").returncode == 0
    sheet = quirk("all-or-nothing-conflict-row.csv")  # expects 21 seats where there are 20
    done = cli("apply", sheet, "--all-or-nothing", "--out", tmp_path / "run", "--quiet")
    assert done.returncode == 1, done.stderr
    (first_row, why), (second, conflict) = outcomes(tmp_path / "run")
    assert (first_row, second) == ("not_sent", "conflict")
    assert "1 row would be refused" in why
    assert "the sheet expects 21" in conflict and conflict.startswith("not sent: ")


def test_all_or_nothing_sends_every_row_when_every_row_would_go(cli, write_csv, tmp_path):
    customer = "0f1b2c3d-1111-4222-8333-444455556666"
    rows = [[customer, f"a1b2c3d4-0000-4000-8000-00000000000{i}", "9"] for i in (1, 2)]
    sheet = write_csv([["Customer ID", "Subscription ID", "Quantity"], *rows])
    done = cli("apply", sheet, "--all-or-nothing", "--out", tmp_path / "run", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [o for o, _ in outcomes(tmp_path / "run")] == ["ok", "ok"]


# --- 7. Reports a manager reads at a glance ------------------------------------------------------


def test_the_summary_counts_stand_beside_their_outcome_words(cli, quirk, tmp_path):
    cli("check", quirk("zero-seats.csv"), "--out", tmp_path / "c")
    ws = openpyxl.load_workbook(tmp_path / "c" / "check.xlsx")["Summary"]
    counts = [r for r in ws.iter_rows() if r[0].value == "invalid" and r[1].value == 1]
    assert counts and counts[0][1].alignment.horizontal == "left"


def test_a_wide_data_sheet_prints_at_70_percent_not_shrunk_to_one_page(write_csv, cli, tmp_path):
    customer, sub = "0f1b2c3d-1111-4222-8333-444455556666", "a1b2c3d4-0000-4000-8000-000000000001"
    notes = [f"Note {i}" for i in range(12)]
    wide = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", *notes],
            [customer, sub, "4", *["x" * 30] * 12],
        ]
    )
    narrow = write_csv(
        [["Customer ID", "Subscription ID", "Quantity"], [customer, sub, "4"]], "narrow.csv"
    )
    for sheet, out in ((wide, "wide"), (narrow, "narrow")):
        cli("check", sheet, "--out", tmp_path / out)
    wide_ws = openpyxl.load_workbook(tmp_path / "wide" / "check.xlsx")["Subscriptions"]
    assert wide_ws.page_setup.scale == 70 and not wide_ws.sheet_properties.pageSetUpPr.fitToPage
    narrow_ws = openpyxl.load_workbook(tmp_path / "narrow" / "check.xlsx")["Subscriptions"]
    assert narrow_ws.sheet_properties.pageSetUpPr.fitToPage  # one page wide (fitToWidth 1)
    assert narrow_ws.page_setup.fitToWidth in (None, 1) and narrow_ws.page_setup.scale is None


def test_the_seats_table_names_customers_as_the_sheet_does_with_the_tenant_id_after(cli, tmp_path):
    sample = ROOT / "samples" / "subscriptions-true-up.csv"
    assert cli("plan", sample, "--out", tmp_path / "p", "--quiet").returncode in (0, 1)
    seats = pl.read_csv(tmp_path / "p" / "plan-seats.csv")
    assert seats.columns[:3] == ["customer", "customer_id", "offer"]
    first = seats.row(0, named=True)
    assert (first["customer"], first["customer_id"]) == (
        "Contoso Ltd",
        "05e2378a-d57e-57ef-9870-17ffaf155ec0",
    )
