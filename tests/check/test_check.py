"""check: every cell rule, every cross-row rule, and the outcome of each row."""

from __future__ import annotations

import itertools
import random
import re

import polars as pl
import pytest
from conftest import CUSTOMER, SUB1, SUB2

from bulkpatch.check.checker import check
from bulkpatch.load.reader import load

HEAD = ["Customer ID", "Subscription ID"]


def run(write_csv, header: list[str], *rows: list[str]):
    """Check a subscriptions sheet of `rows` (each after the two id cells)."""
    subs = [f"a1b2c3d4-0000-4000-8000-{i:012d}" for i in range(1, len(rows) + 1)]
    path = write_csv([HEAD + header, *[[CUSTOMER, s, *r] for s, r in zip(subs, rows, strict=True)]])
    (sheet,) = load(path)
    return check(sheet)


def messages(checked) -> list[str]:
    return checked.issues.get_column("message").to_list()


def outcomes(checked) -> list[str]:
    return checked.outcomes.get_column("outcome").to_list()


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("Quantity", "5.5", 'Quantity: "5.5" is not a whole number'),
        ("Quantity", '"1,000"', 'Quantity: "1,000" is not a whole number'),
        ("Quantity", "0", 'Quantity: "0" is below 1'),
        ("Quantity", "-3", 'Quantity: "-3" is below 1'),
        ("Auto renew", "maybe", 'Auto renew: "maybe" is not yes or no'),
        ("Status", "paused", 'Status: "paused" is not one of none, active, suspended'),
        ("Billing cycle", "fortnightly", 'Billing cycle: "fortnightly" is not one of unknown'),
        ("Commitment end date", "31/12/2026", 'Commitment end date: "31/12/2026" is not a date'),
        ("Commitment end date", "2026-02-30", 'Commitment end date: "2026-02-30" is not a date'),
        ("Term duration", "1 year", 'Term duration: "1 year" is not a term length'),
        ("lineItems.purchaseCommitment.currency", "", None),
        (
            "refundableQuantity.totalQuantity",
            "3",
            'refundableQuantity.totalQuantity: "3" is read-only',
        ),
        ("links.self", "https://x", 'links.self: "https://x" is read-only'),
    ],
)
def test_cell_rules(write_csv, header, value, message):
    checked = run(write_csv, [header], [value])
    if message is None:
        assert messages(checked) == [] and outcomes(checked) == ["no_change"]
    else:
        assert len(messages(checked)) == 1
        assert messages(checked)[0].startswith(message)
        assert outcomes(checked) == ["invalid"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Quantity", "5.0"),
        ("Quantity", "12"),
        ("Auto renew", "TRUE"),
        ("Auto renew", "no"),
        ("Auto renew", "1"),
        ("Status", "Suspended"),
        ("Billing cycle", "One time"),
        ("Billing cycle", "one-time"),
        ("Commitment end date", "2026-12-31"),
        ("Commitment end date", "2026-12-31 00:00:00"),
        ("Commitment end date", "2026-12-31T10:00:00Z"),
        ("Term duration", "P1Y"),
        ("Term duration", "P3Y"),
        ("Friendly name", "Anything at all"),
        ("Suspension reasons", "Fraud; CustomerCancellation"),
    ],
)
def test_good_values_pass(write_csv, header, value):
    checked = run(write_csv, [header], [value])
    assert messages(checked) == []
    # Expected columns (what the user believes Partner Center holds) ask for no change.
    assert outcomes(checked) == ["no_change" if header in EXPECTED_ONLY else "valid"]


EXPECTED_ONLY = {"Commitment end date", "Term duration"}


def test_every_failing_cell_is_reported_not_only_the_first(write_csv):
    checked = run(
        write_csv,
        ["Quantity", "Auto renew"],
        ["x", "maybe"],
        ["2.5", "yes"],
        ["0", "perhaps"],
        ["4", "no"],
    )
    assert checked.issues.select("row", "column", "value").rows() == [
        (2, "Quantity", "x"),
        (2, "Auto renew", "maybe"),
        (3, "Quantity", "2.5"),
        (4, "Quantity", "0"),
        (4, "Auto renew", "perhaps"),
    ]
    assert outcomes(checked) == ["invalid", "invalid", "invalid", "valid"]
    assert checked.rule_counts() == {"not a whole number": 2, "not yes or no": 2, "below 1": 1}


def test_empty_ids_and_bad_ids(write_csv):
    path = write_csv([[*HEAD, "Quantity"], ["", SUB1, "3"], [CUSTOMER, "not-a-guid", "3"]])
    checked = check(load(path)[0])
    assert messages(checked) == [
        "Customer ID: is empty; every row needs one",
        'Subscription ID: "not-a-guid" is not an ID in the form 8-4-4-4-12 (a GUID)',
    ]


def test_the_same_subscription_twice_is_an_error_on_both_rows(write_csv):
    path = write_csv(
        [
            [*HEAD, "Quantity"],
            [CUSTOMER, SUB1, "3"],
            [CUSTOMER, SUB2, "4"],
            [CUSTOMER, SUB1.upper(), "5"],
        ]
    )
    checked = check(load(path)[0])
    assert checked.issues.get_column("row").to_list() == [2, 4]
    assert "is on rows 2, 4; keep one row per subscription" in messages(checked)[0]
    assert outcomes(checked) == ["invalid", "valid", "invalid"]


def test_renewal_instructions_need_auto_renew_on(write_csv):
    checked = run(write_csv, ["Auto renew", "Next term quantity"], ["no", "8"], ["yes", "8"])
    assert messages(checked) == [
        'Next term quantity: renewal instructions need auto-renew on, but Auto renew is "no" '
        "on this row"
    ]
    assert outcomes(checked) == ["invalid", "valid"]


def test_a_row_that_changes_nothing_is_no_change(write_csv):
    checked = run(write_csv, ["Quantity", "Notes"], ["", "nothing this month"], ["3", ""])
    assert outcomes(checked) == ["no_change", "valid"]


ORDER_HEAD = ["Customer ID", "Order ID", "Line item", "Quantity", "Billing cycle"]


def test_order_rows_must_agree_on_order_level_values(write_csv):
    path = write_csv(
        [
            ORDER_HEAD,
            [CUSTOMER, "ORD-1", "0", "4", "annual"],
            [CUSTOMER, "ORD-1", "1", "2", "Monthly"],
            [CUSTOMER, "ORD-1", "2", "2", ""],
            [CUSTOMER, "ORD-2", "0", "2", "annual"],
            [CUSTOMER, "ORD-2", "1", "2", "Annual"],
        ]
    )
    checked = check(load(path)[0])
    assert checked.issues.select("row", "column").rows() == [
        (2, "Billing cycle"),
        (3, "Billing cycle"),
    ]
    assert (
        'Billing cycle: "annual" differs from other rows of order ORD-1 (rows 2, 3); an '
        "order has one Billing cycle"
    ) in messages(checked)
    assert outcomes(checked) == ["invalid", "invalid", "valid", "valid", "valid"]


def test_the_same_order_line_twice_and_bad_order_ids(write_csv):
    path = write_csv(
        [
            ORDER_HEAD,
            [CUSTOMER, "ORD-1", "0", "4", ""],
            [CUSTOMER, "ORD-1", "0.0", "5", ""],
            [CUSTOMER, "ORD/../x", "1", "2", ""],
        ]
    )
    checked = check(load(path)[0])
    assert checked.issues.select("row", "rule").rows() == [
        (2, "same target twice"),
        (3, "same target twice"),
        (4, "not an order ID"),
    ]
    assert "keep one row per order line item" in messages(checked)[0]


def whole_and_positive(text: str) -> bool:
    """The quantity rule in plain Python arithmetic: a whole number from 1 to 10,000."""
    stripped = text.strip()
    try:
        number = float(stripped)
    except ValueError:
        return False
    digits = stripped.replace(".", "", 1).lstrip("+-")
    plain = digits.isdigit() and "e" not in stripped and not stripped.startswith(".")
    # a total has no sign, and 1.000 could mean one or a thousand
    ambiguous = stripped.startswith("+") or re.fullmatch(r"-?\d{1,3}(\.\d{3})+", stripped)
    return plain and not ambiguous and number == int(number) and 1 <= number <= 10_000


def test_quantity_rule_agrees_with_plain_arithmetic(write_csv):
    """Every text of up to three characters that numbers are made of, and a fixed sample of
    longer ones, in one sheet: the outcome of each row is what arithmetic says."""
    alphabet = "0123456789.,-+ e"
    texts = ["".join(p) for n in (1, 2, 3) for p in itertools.product(alphabet, repeat=n)]
    pick = random.Random(6)
    texts += ["".join(pick.choices(alphabet, k=pick.randint(4, 6))) for _ in range(1_000)]
    checked = run(write_csv, ["Quantity"], *[[f'"{t}"'] for t in texts])
    expected = [
        "no_change" if not t.strip() else "valid" if whole_and_positive(t) else "invalid"
        for t in texts
    ]
    assert outcomes(checked) == expected
    assert expected.count("valid") > 100 and expected.count("invalid") > 1_000


def test_a_large_sheet_is_checked_whole(tmp_path):
    n = 200_000
    frame = pl.DataFrame(
        {
            "Customer ID": [CUSTOMER] * n,
            "Subscription ID": [f"a1b2c3d4-0000-4000-8000-{i:012d}" for i in range(n)],
            "Quantity": ["3", "x", "4.0", "0"] * (n // 4),
        }
    )
    path = tmp_path / "big.csv"
    frame.write_csv(path)
    checked = check(load(path)[0])
    assert checked.counts() == {"valid": n // 2, "invalid": n // 2, "no_change": 0}


def test_a_subscription_twice_in_a_large_sheet_is_found(tmp_path):
    """Polars reads a large file in many chunks; the duplicate rule's messages (a window over
    the rows sharing a target) once panicked inside Polars on such a frame."""
    n = 300_000
    subs = [f"a1b2c3d4-0000-4000-8000-{i:012d}" for i in range(n)]
    subs[-1] = subs[7].upper()
    frame = pl.DataFrame({"Customer ID": [CUSTOMER] * n, "Subscription ID": subs, "Quantity": "3"})
    path = tmp_path / "big.csv"
    frame.write_csv(path)
    checked = check(load(path)[0])
    assert checked.issues.select("row", "rule").rows() == [
        (9, "same target twice"),
        (n + 1, "same target twice"),
    ]
    assert f"is on rows 9, {n + 1}" in messages(checked)[0]


# --- Issue 13: every cell means what the person who typed it meant ---------------------------


def check_quirk(quirk, name: str, **options):
    (sheet,) = load(quirk(name), **options)
    return check(sheet)


def test_european_thousands_are_refused_with_what_to_write(quirk):
    checked = check_quirk(quirk, "european-thousands.csv")
    assert outcomes(checked) == ["invalid", "valid"]
    assert messages(checked) == [
        'Quantity: "1.000" is not a whole number as written (is that a thousands separator or '
        "a decimal point?): write digits only, such as 1000 or 1"
    ]


@pytest.mark.parametrize("value", ['"1,000"', "1 000", "12.000"])
def test_every_group_separator_is_refused(write_csv, value):
    checked = run(write_csv, ["Quantity"], [value])
    assert outcomes(checked) == ["invalid"]
    assert "write digits only, such as 1000 or 1" in messages(checked)[0]


def test_a_sign_in_a_total_is_refused_with_what_to_write(quirk):
    checked = check_quirk(quirk, "signed-total.csv")
    assert outcomes(checked) == ["invalid", "valid"]
    assert messages(checked) == [
        'Quantity: "+2" has a sign, but this column is the new total: write the total without '
        'a sign (such as 12), or write the seats to add or remove in a "Seat change" column'
    ]


def test_a_seat_change_is_signed_and_never_beside_a_total(quirk):
    checked = check_quirk(quirk, "seat-change.csv")
    assert outcomes(checked) == ["valid", "valid", "invalid"]
    assert messages(checked) == [
        'Seat change: "+3" and Quantity "20" are both filled: write the new total in Quantity '
        "or the seats to add or remove in Seat change, not both"
    ]


@pytest.mark.parametrize(
    ("value", "outcome"), [("+2", "valid"), ("-1", "valid"), ("0", "no_change"), ("1.5", "invalid")]
)
def test_seat_change_values(write_csv, value, outcome):
    assert outcomes(run(write_csv, ["Add seats"], [value])) == [outcome]


def test_a_seat_change_of_zero_beside_a_total_is_no_conflict(write_csv):
    checked = run(write_csv, ["Seat change", "Quantity"], ["0", "20"], ["+1", ""])
    assert messages(checked) == []
    assert outcomes(checked) == ["valid", "valid"]


def test_an_empty_date_on_a_row_that_turns_auto_renew_off_is_not_an_error(quirk):
    checked = check_quirk(quirk, "empty-date-auto-renew-off.csv")
    assert messages(checked) == []
    assert outcomes(checked) == ["valid", "valid"]


def test_an_empty_excel_date_cell_is_not_an_error(write_xlsx):
    from datetime import datetime

    head = [*HEAD, "Auto renew", "Next term end date"]
    path = write_xlsx(
        {
            "Subscriptions": [
                head,
                [CUSTOMER, SUB1, False, None],
                [CUSTOMER, SUB2, True, datetime(2027, 1, 31)],
            ]
        }
    )
    checked = check(load(path)[0])
    assert messages(checked) == []
    assert outcomes(checked) == ["valid", "valid"]


def test_a_target_equal_to_the_rows_current_value_asks_nothing(quirk):
    checked = check_quirk(quirk, "current-equals-target.csv")
    assert messages(checked) == []
    assert outcomes(checked) == ["no_change", "valid"]


def test_a_sheet_shaped_like_an_export_asks_only_for_settable_fields(quirk):
    checked = check_quirk(quirk, "export-shaped.csv")
    assert messages(checked) == []
    assert outcomes(checked) == ["valid", "no_change"]


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (
            "Status",
            "Cancelled",
            'Status: "Cancelled" is refused: Partner Center calls a cancelled subscription '
            '"deleted": write deleted',
        ),
        (
            "Status",
            "canceled",
            'Status: "canceled" is refused: Partner Center calls a cancelled subscription '
            '"deleted": write deleted',
        ),
        ("Term duration", "Yearly", 'Term duration: "Yearly" is not a term length: write P1Y'),
        (
            "Term duration",
            "12 months",
            'Term duration: "12 months" is not a term length: write P1Y',
        ),
        (
            "Next term duration",
            "Monthly",
            'Next term duration: "Monthly" is not a term length: write P1M',
        ),
        (
            "Subscription ID",
            "a1b2c3d4-0000-4000-8000-\u200b000000000001",
            'Subscription ID: "a1b2c3d4-0000-4000-8000-<U+200B>000000000001" holds an invisible '
            "character (U+200B): delete it, or type the ID again",
        ),
    ],
)
def test_friendly_values_are_refused_with_what_to_type(write_csv, header, value, message):
    if header == "Subscription ID":
        path = write_csv([[*HEAD, "Quantity"], [CUSTOMER, value, "3"]])
        checked = check(load(path)[0])
    else:
        checked = run(write_csv, [header], [value])
    assert messages(checked) == [message]
    assert outcomes(checked) == ["invalid"]


def test_guids_in_braces_and_upper_case_are_accepted(write_csv):
    path = write_csv(
        [
            [*HEAD, "Quantity"],
            ["{" + CUSTOMER.upper() + "}", SUB1.upper(), "3"],
            [CUSTOMER, "{" + SUB1 + "}", "4"],
        ]
    )
    checked = check(load(path)[0])
    # the two rows name the same subscription: braces and case do not make it another one
    assert checked.issues.select("row", "rule").rows() == [
        (2, "same target twice"),
        (3, "same target twice"),
    ]


def test_a_sign_in_another_total_says_only_to_drop_the_sign(write_csv):
    checked = run(write_csv, ["Next term quantity"], ["+4"])
    assert messages(checked) == [
        'Next term quantity: "+4" has a sign, but this column is the new total: write the total '
        "without a sign"
    ]


def test_seats_too_large_to_hold_are_invalid_not_an_empty_cell(quirk, tmp_path):
    """A number beyond a 64-bit whole number (or 400 digits, infinity as a float) once read
    as no value: the row asked nothing and came back `no_change`, or the workbook failed."""
    import openpyxl

    from bulkpatch.commands.api import check_file

    run = check_file(quirk("huge-quantity.csv"), out=tmp_path / "o")
    (part,) = run.parts
    # the largest 64-bit number is read as the number it is, and is above the seats' maximum
    assert part.outcomes.get_column("outcome").to_list() == ["invalid", "invalid", "invalid"]
    messages = part.issues.get_column("message").to_list()
    assert messages[2] == (
        'Quantity: "9223372036854775807" is above 10000: write a total of at most 10000'
    )
    assert (
        messages[0]
        == 'Quantity: "100000000000000000000" is far too large: write a number such as 25'
    )
    assert messages[1].startswith('Quantity: "' + "9" * 59 + '…" is far too large')
    book = openpyxl.load_workbook(tmp_path / "o" / "check.xlsx")["Subscriptions"]
    assert book.cell(3, 3).value == "9" * 400  # written as the text it was: no cell holds inf


def test_a_cell_equal_to_its_current_value_asks_nothing_and_is_not_judged(write_csv):
    """Partner Center holds 0 seats on a cancelled line: a sheet that says so and leaves it
    has nothing to fix; asking for 0 seats where there are 5 is still below 1, and a value
    that cannot be read is judged even when it repeats the current cell."""
    checked = run(
        write_csv,
        ["Current seats", "Quantity"],
        ["0", "0"],
        ["5", "0"],
        ["5.5", "5.5"],
        ["5", "6"],
    )
    assert outcomes(checked) == ["no_change", "invalid", "invalid", "valid"]
    assert messages(checked) == [
        'Quantity: "0" is below 1: write a total of at least 1; to cancel, write deleted in Status',
        'Current seats: "5.5" is not a whole number',
        'Quantity: "5.5" is not a whole number',
    ]
