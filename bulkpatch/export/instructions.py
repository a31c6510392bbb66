"""The words an exported workbook carries for its reader: an input message per settable column
and the Instructions sheet. Plain words for a finance user, not field names: the sheet is
edited in Excel by someone who never reads our README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bulkpatch.catalog.fields import Kind

if TYPE_CHECKING:
    import xlsxwriter

# settable header -> what the column does (Excel shows at most 255 characters)
MESSAGES = {
    "Status": "The status to set: pick from the list (active, suspended, ...). Leave it as it is "
    "to keep the current status.",
    "Quantity": "The number of seats (licences) to have: a whole number. Leave it as it is to "
    "keep the current seats.",
    "Auto renew": "TRUE: the subscription renews at the end of its term; FALSE: it does not.",
    "Billing cycle": "How often the customer is billed: pick from the list.",
    "Friendly name": "The name shown for the subscription in Partner Center.",
    "Next term quantity": "Seats at the next renewal (auto renew must be TRUE).",
    "Next term SKU ID": "The product SKU to switch to at the next renewal (auto renew must be "
    "TRUE).",
    "Next term duration": "The term length from the next renewal: P1M (a month), P1Y (a year) or "
    "P3Y (three years); auto renew must be TRUE.",
    "Next term billing cycle": "The billing cycle from the next renewal: pick from the list "
    "(auto renew must be TRUE).",
    "Next term end date": "A custom end date for the next term, such as 2027-12-31, to align "
    "it with the customer's other subscriptions (auto renew must be TRUE).",
}
ORDER_MESSAGES = {
    "Status": "Write cancelled to cancel this line item of the order (within the cancellation "
    "window); leave it as it is to keep it.",
    "Billing cycle": "The order's billing cycle: pick from the list; every line of an order has "
    "the same one.",
    "Quantity": "The number of seats (licences) on this line item: a whole number.",
}
EXAMPLES = {  # the template's example row: (header, cell)
    "subscriptions": (
        ("Customer ID", "3f2a6c1e-8b7d-4e55-9a10-2c4b6d8e0f12"),
        ("Subscription ID", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        ("Quantity", "25"),
        ("Auto renew", "TRUE"),
    ),
    "orders": (
        ("Customer ID", "3f2a6c1e-8b7d-4e55-9a10-2c4b6d8e0f12"),
        ("Order ID", "ZxLgQdFOv3Kj3VyCHWp2QzRTlD8yNaB21"),
        ("Line item", "0"),
        ("Billing cycle", "monthly"),
    ),
}


def message(kind: Kind, header: str) -> str:
    """What a settable column does, in plain words."""
    if kind == "orders":
        return ORDER_MESSAGES.get(header, "")
    return MESSAGES.get(header, "")


def instructions(kind: Kind, name: str, template: bool, exported: str) -> list[str]:
    """The Instructions sheet's lines: what to edit, what not to, and what happens next."""
    what = "subscriptions" if kind == "subscriptions" else "order line items"
    made = (
        f"This is an empty {kind} sheet: fill one row per {what[:-1]}, with its ids."
        if template
        else f"This sheet holds the {what} Partner Center held on {exported}."
    )
    return [
        "How to use this workbook",
        made,
        f"Edit only the white columns of the '{name}' sheet. A cell you leave as it is asks "
        "for nothing: nothing is sent for it.",
        "The grey columns (the ids, and the 'Current ...' values read from Partner Center) are "
        "locked: they say which subscription a row is and what it held. To unlock them on "
        "purpose: Review > Unprotect Sheet (there is no password).",
        "Drop-down lists and number checks show what a cell may hold; the header of each white "
        "column explains it when you click it.",
        "When you are done, save the file and run:",
        "    bulkpatch check FILE    (nothing is sent: every row is checked and explained)",
        "    bulkpatch apply FILE    (sends the changed cells to Partner Center)",
        "Only the cells you changed are sent. If a value you changed was also changed in "
        "Partner Center since the export (someone changed the seats in the portal), that row "
        "is not sent: it comes back as 'conflict', and you can export again.",
        "Keep the hidden sheet: it records what the export read, so nothing newer is overwritten.",
    ]


def write_instructions(
    book: xlsxwriter.Workbook, kind: Kind, name: str, template: bool, exported: str
) -> None:
    """The Instructions sheet: the lines above, then (template) one example row."""
    ws = book.add_worksheet("Instructions")
    ws.set_column(0, 0, 110, book.add_format({"text_wrap": True, "valign": "top"}))
    ws.set_column(1, 3, 40)
    lines = instructions(kind, name, template, exported)
    ws.write_string(0, 0, lines[0], book.add_format({"bold": True, "font_size": 14}))
    for r, line in enumerate(lines[1:], start=1):
        ws.write_string(r, 0, line)
    if template:
        bold = book.add_format({"bold": True})
        row = len(lines) + 1
        ws.write_string(row, 0, f"An example row (put yours on the '{name}' sheet):", bold)
        # constant-memory mode writes row by row: the headers, then the cells
        ws.write_row(row + 1, 0, [header for header, _ in EXAMPLES[kind]], bold)
        ws.write_row(row + 2, 0, [cell for _, cell in EXAMPLES[kind]])
