"""Issue codes: one stable code per rule, kept apart from its message. Every code the package
spells is in the one table, every entry of the table is what some sheet below gets, README lists
them all; and the catalog's bounds are check's: a 20,000-seat row is refused offline."""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path
from typing import get_args

import pytest
import xlsxwriter
from conftest import CUSTOMER, ROOT, SUB1, SUB2, server

from bulkpatch.catalog.fields import field
from bulkpatch.check.checker import check
from bulkpatch.commands.api import check_file, plan_file
from bulkpatch.load.codes import CODES, IssueCode
from bulkpatch.load.reader import load

SUBS = ["Customer ID", "Subscription ID"]
ORDERS = ["Customer ID", "Order ID"]
CODE = re.compile(r"^[a-z]+\.[a-z_]+$")
INVISIBLE = "a1b2c3d4-0000-4000-8000-00000000\u200b0001"

# (the sheet's id columns, its other headers, its rows after the ids, the one code it gets)
CASES: list[tuple[list[str], list[str], list[list[str]], IssueCode]] = [
    (SUBS, ["Quantity"], [["5.5"]], "integer.not_whole"),
    (SUBS, ["Quantity"], [["1,000"]], "integer.grouped_digits"),
    (SUBS, ["Quantity"], [["3,0"]], "integer.decimal_comma"),
    (SUBS, ["Quantity"], [["+4"]], "integer.signed_total"),
    (SUBS, ["Quantity"], [["100000000000000000000"]], "number.too_large"),
    (SUBS, ["Quantity"], [["0"]], "number.below_minimum"),
    (SUBS, ["Quantity"], [["20000"]], "number.above_maximum"),
    (SUBS, ["Auto renew"], [["maybe"]], "boolean.not_yes_or_no"),
    (SUBS, ["Status"], [["paused"]], "enum.unknown_value"),
    (SUBS, ["Status"], [["cancelled"]], "status.cancelled_is_deleted"),
    (SUBS, ["Commitment end date"], [["2026-02-30"]], "date.not_a_date"),
    (SUBS, ["Term duration"], [["P1X"]], "duration.not_a_term"),
    (SUBS, ["Term duration"], [["annual"]], "duration.in_words"),
    (SUBS, ["links.self"], [["https://x"]], "column.read_only"),
    (SUBS, ["Seat change", "Quantity"], [["+2", "12"]], "seats.total_and_change"),
    (
        SUBS,
        ["Auto renew", "Next term quantity"],
        [["no", "12"]],
        "renewal.needs_auto_renew",
    ),
    (ORDERS, ["Status"], [["canceled"]], "status.spelled_canceled"),
    (ORDERS, ["Total price"], [["about 12"]], "number.not_a_number"),
    (ORDERS, ["Currency"], [["US"]], "currency.not_a_code"),
    (ORDERS, ["lineItems.provisioningContext"], [["x"]], "object.not_json"),
]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def codes_of(path: Path) -> list[str]:
    return [c for sheet in load(path) for c in check(sheet).issues.get_column("code").to_list()]


@pytest.mark.parametrize(("ids", "header", "rows", "code"), CASES)
def test_each_rule_gives_its_one_code(tmp_path, ids, header, rows, code):
    first = SUB1 if ids == SUBS else "ORD-1"
    path = write(tmp_path / "sheet.csv", ids + header, [[CUSTOMER, first, *r] for r in rows])
    assert codes_of(path) == [code]


def sheets_for_the_other_rules(tmp_path: Path) -> dict[Path, list[str]]:
    """The rules a one-row sheet cannot break (rows that disagree, a ragged row, a workbook's
    cells) and the ids' own rules, each file with the codes it gets, row by row."""
    subs = write(
        tmp_path / "subs.csv",
        [*SUBS, "Quantity"],
        [
            ["", SUB1, "3"],
            [CUSTOMER, "not-a-guid", "3"],
            [CUSTOMER, INVISIBLE, "3"],
            [CUSTOMER, SUB2, "4"],
            [CUSTOMER, SUB2, "5"],
        ],
    )
    orders = write(
        tmp_path / "orders.csv",
        [*ORDERS, "Line item", "Status"],
        [
            [CUSTOMER, "ORD/../x", "0", ""],
            [CUSTOMER, "ORD-2", "0", "cancelled"],
            [CUSTOMER, "ORD-2", "1", "completed"],
        ],
    )
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(f"Customer ID,Subscription ID,Quantity\n{CUSTOMER},{SUB1},3,extra\n")
    edited = tmp_path / "edited-record.csv"  # a CSV bulkpatch wrote, its record edited by hand
    edited.write_text(
        f"Customer ID,Subscription ID,Friendly name,Quoted by bulkpatch\n"
        f"{CUSTOMER},{SUB1},'=x,not a list\n"
    )
    short = tmp_path / "short.csv"
    short.write_text(f"Customer ID,Subscription ID,Quantity\n{CUSTOMER},{SUB1}\n")
    book = tmp_path / "book.xlsx"
    workbook = xlsxwriter.Workbook(str(book))
    ws = workbook.add_worksheet("Subscriptions")
    ws.write_row(0, 0, [*SUBS, "Quantity"])
    ws.write_row(1, 0, [CUSTOMER, SUB1])
    ws.write_formula(1, 2, "=3+4", None, "")  # never calculated: no saved value
    ws.write_row(2, 0, [CUSTOMER, SUB2])
    ws.write_row(3, 0, [CUSTOMER, "a1b2c3d4-0000-4000-8000-000000000003"])
    ws.merge_range(2, 2, 3, 2, 5)
    workbook.close()
    return {
        subs: [
            "value.missing",
            "id.not_a_guid",
            "id.invisible_character",
            "duplicate.target",
            "duplicate.target",
        ],
        orders: ["id.not_an_order_id", "order.rows_disagree", "order.rows_disagree"],
        ragged: ["row.ragged"],
        edited: ["record.edited"],
        short: ["row.short"],
        book: ["cell.formula_without_value", "cell.merged", "cell.merged"],
    }


def test_rules_across_rows_and_in_the_file_give_their_codes(tmp_path):
    for path, codes in sheets_for_the_other_rules(tmp_path).items():
        assert codes_of(path) == codes, path.name


def test_every_code_in_the_table_is_what_some_sheet_gets_and_no_other(tmp_path):
    """No dead code: the table is exactly the codes the sheets above get."""
    got = {code for *_, code in CASES}
    for path in sheets_for_the_other_rules(tmp_path).values():
        got.update(path)
    # the `match.*` codes are given at plan time, by matching: tests/test_matching.py gets each
    assert got == {c for c in CODES if not c.startswith("match.")}


def test_the_type_and_the_table_name_the_same_codes_each_dotted_and_explained():
    assert list(get_args(IssueCode)) == list(CODES)
    for code, meaning in CODES.items():
        assert CODE.match(code), code
        assert meaning.rule and meaning.means.endswith("."), code


def spelled(path: Path) -> set[str]:
    """The code-shaped string constants of a module (`id.not_a_guid`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value)
    }


def test_every_code_the_stages_spell_is_in_the_table_and_each_is_spelled_where_it_is_found():
    """Load and check emit issues; every code-shaped word they spell is a code of the table,
    and every code is spelled there (none lives only in the table)."""
    package = ROOT / "bulkpatch"
    found = set()
    stages = ("load", "check", "match")  # match: the rows plan finds by name
    for path in [p for stage in stages for p in (package / stage).glob("*.py")]:
        if path.name != "codes.py":
            found |= spelled(path)
    assert found == set(CODES)


def test_readme_lists_every_code_with_its_meaning_in_the_table_order():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]*)` \| (.+) \|$", readme, re.MULTILINE)
    assert rows == [(code, m.rule.format("N"), m.means) for code, m in CODES.items()]


def test_a_row_of_20000_seats_is_invalid_at_check_with_its_code(tmp_path):
    path = write(tmp_path / "big.csv", [*SUBS, "Quantity"], [[CUSTOMER, SUB1, "20000"]])
    run = check_file(path, out=tmp_path / "out")
    (part,) = run.parts
    assert part.outcomes.get_column("outcome").to_list() == ["invalid"]
    (problem,) = run.summary()["sheets"][0]["problems"]
    assert problem == {
        "row": 2,
        "column": "Quantity",
        "value": "20000",
        "code": "number.above_maximum",
        "rule": "above 10000",
        "message": 'Quantity: "20000" is above 10000: write a total of at most 10000',
    }
    fix = (tmp_path / "out" / "to-fix.csv").read_text(encoding="utf-8-sig").splitlines()
    assert fix[0].endswith(",Reason,Reason code") and fix[1].endswith(",number.above_maximum")
    assert field("subscriptions", "quantity").maximum == 10_000  # the one bound, the catalog's


def test_a_seat_change_past_the_maximum_still_waits_for_plan_which_reads_the_total(tmp_path):
    """`+50` is fine offline; on 9,990 seats it makes 10,040, which only plan can know."""
    path = write(tmp_path / "delta.csv", [*SUBS, "Seat change"], [[CUSTOMER, SUB1, "+50"]])
    assert codes_of(path) == []
    with server(path) as (url, sandbox):
        body = sandbox.store.get("subscriptions", CUSTOMER, SUB1, 0)
        sandbox.store.put_many("subscriptions", [(CUSTOMER, {**body, "quantity": 9_990})])
        plan = plan_file(path, target=url, out=tmp_path / "plan")
    assert plan.counts()["would_fail"] == 1
    (entry,) = [json.loads(line) for line in (tmp_path / "plan" / "plan.jsonl").open()]
    assert "between 1 and 10000" in entry["error"]
