"""The issue codes: one stable code for each rule that puts a row in the issues table (what load
finds wrong with a cell, and every rule of check), with what it means and its rule words.

A code names a rule, never its wording: a message may change and a filter on the code (`--json`
`problems`, check.csv's `codes`, a to-fix sheet's `Reason code`) keeps working. The `rule`
column the issues table had before codes stays, as each code's short words here (with the bound
or the term a rule names: `below 1`), so a filter on it keeps working too; the Summary counts
problems by it. Load emits the first rows of the table, so the codes live in load, below check.
README lists the codes; a test holds it, this table, `IssueCode` and what check emits together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

IssueCode = Literal[
    "row.ragged",
    "row.short",
    "cell.formula_without_value",
    "cell.merged",
    "value.missing",
    "column.read_only",
    "integer.not_whole",
    "integer.grouped_digits",
    "integer.decimal_comma",
    "integer.signed_total",
    "number.not_a_number",
    "number.too_large",
    "number.below_minimum",
    "number.above_maximum",
    "boolean.not_yes_or_no",
    "enum.unknown_value",
    "status.cancelled_is_deleted",
    "status.spelled_canceled",
    "id.not_a_guid",
    "id.not_an_order_id",
    "id.invisible_character",
    "date.not_a_date",
    "duration.not_a_term",
    "duration.in_words",
    "currency.not_a_code",
    "object.not_json",
    "duplicate.target",
    "order.rows_disagree",
    "renewal.needs_auto_renew",
    "seats.total_and_change",
    "record.edited",
    "match.no_customer",
    "match.customers_alike",
    "match.no_subscription",
    "match.subscriptions_alike",
    "match.moved",
    "match.not_planned",
]


@dataclass(frozen=True)
class Meaning:
    """What a code stands for: its rule words (`{}` takes the bound or term the rule names) and
    what it says about the cell, as README lists it."""

    rule: str
    means: str


CODES: dict[IssueCode, Meaning] = {
    "row.ragged": Meaning(
        "ragged row",
        "The row has more cells than the header has columns: the extra cells were not read.",
    ),
    "row.short": Meaning(
        "short row",
        "The row has fewer cells than the header, and a cell it lacks is sent or names the "
        "resource: the file did not finish the row.",
    ),
    "cell.formula_without_value": Meaning(
        "formula without a value",
        "The workbook cell holds a formula with no saved value: open and save it in Excel.",
    ),
    "cell.merged": Meaning(
        "merged cells", "Merged cells span data rows: only the first row holds the value."
    ),
    "value.missing": Meaning(
        "missing value", "A column every row needs (a customer, subscription or order ID) is empty."
    ),
    "column.read_only": Meaning(
        "read-only column", "The column is one Partner Center computes: a sheet cannot set it."
    ),
    "integer.not_whole": Meaning("not a whole number", "The cell is not a whole number."),
    "integer.grouped_digits": Meaning(
        "not a whole number",
        "The number holds a separator (1,000), for thousands or a decimal point: not guessed.",
    ),
    "integer.decimal_comma": Meaning(
        "decimal comma",
        "A whole number written with a decimal comma (3,0): write it without (3).",
    ),
    "integer.signed_total": Meaning(
        "sign in a total", "A new total written with a sign (+4): a total has none."
    ),
    "number.not_a_number": Meaning("not a number", "The cell is not a number."),
    "number.too_large": Meaning(
        "number too large",
        "The number is too large to be read as one (beyond a 64-bit whole number).",
    ),
    "number.below_minimum": Meaning(
        "below {}", "The number is below the least the field takes (the catalog's minimum)."
    ),
    "number.above_maximum": Meaning(
        "above {}", "The number is above the most the field takes (the catalog's maximum)."
    ),
    "boolean.not_yes_or_no": Meaning("not yes or no", "The cell is not yes or no."),
    "enum.unknown_value": Meaning(
        "not an allowed value", "The value is not one the field takes (the catalog's list)."
    ),
    "status.cancelled_is_deleted": Meaning(
        "cancelled is deleted",
        "A subscription's status written cancelled: Partner Center calls it deleted.",
    ),
    "status.spelled_canceled": Meaning(
        "canceled is cancelled",
        "An order's status written canceled: Partner Center's is cancelled.",
    ),
    "id.not_a_guid": Meaning("not a GUID", "The ID is not a GUID (8-4-4-4-12 hexadecimal)."),
    "id.not_an_order_id": Meaning(
        "not an order ID", "The order ID holds more than letters, digits, - and _."
    ),
    "id.invisible_character": Meaning(
        "invisible character", "The ID holds a character nobody sees (copied from a web page)."
    ),
    "date.not_a_date": Meaning(
        "not a date", "The cell is not a date (2026-12-31), or not a day of the calendar."
    ),
    "duration.not_a_term": Meaning("not a term length", "The cell is not a term length (P1Y)."),
    "duration.in_words": Meaning(
        "term in words ({})",
        "A term written in words (annual, monthly): Partner Center takes P1Y, P1M.",
    ),
    "currency.not_a_code": Meaning(
        "not a currency code", "The cell is not a three-letter currency code (USD)."
    ),
    "object.not_json": Meaning("not a JSON object", "The cell is not a JSON object."),
    "duplicate.target": Meaning(
        "same target twice", "Two rows name the same subscription, order or order line item."
    ),
    "order.rows_disagree": Meaning(
        "order rows disagree", "Rows of one order give it different order-level values."
    ),
    "renewal.needs_auto_renew": Meaning(
        "renewal needs auto-renew", "Renewal instructions on a row that turns auto-renew off."
    ),
    "seats.total_and_change": Meaning(
        "total and change", "A row gives both a new seat total and a seat change."
    ),
    "record.edited": Meaning(
        "quote record",
        "The column in which bulkpatch records its own quotes was edited: put back what it held.",
    ),
    "match.no_customer": Meaning(
        "no such customer", "No customer has the row's company name or domain (plan, matching)."
    ),
    "match.customers_alike": Meaning(
        "customers alike", "Several customers have the row's company name or domain."
    ),
    "match.no_subscription": Meaning(
        "no such subscription", "The customer has no subscription of the row's offer to change."
    ),
    "match.subscriptions_alike": Meaning(
        "subscriptions alike", "The customer has several subscriptions of the row's offer."
    ),
    "match.moved": Meaning(
        "match moved", "The row's names match another subscription than the plan recorded."
    ),
    "match.not_planned": Meaning(
        "not matched when planned",
        "A resumed run's row that had no change in its plan (no ids found).",
    ),
}


def rule(code: IssueCode, detail: object = "") -> str:
    """The rule words of `code`, with the bound or term it names: `below 1`."""
    return CODES[code].rule.format(detail)
