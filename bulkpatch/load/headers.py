"""Which catalog field each header of a sheet names: where the header row is, which kind of sheet
it is, its columns, and which field a header that names none was meant to be (a near miss: load
refuses it rather than carry a typo as a note).
"""

from __future__ import annotations

import difflib
import re

import polars as pl

from bulkpatch.catalog.fields import (
    COLUMNS,
    FIELDS,
    RESOURCE_ID,
    header_index,
    normalize_header,
    spellings,
)
from bulkpatch.catalog.model import KINDS, Kind
from bulkpatch.errors import InputError
from bulkpatch.load.sheet import BLANKS, ROW, Column

# Everyday words that could name several fields: never settable, read as notes, and the mapping
# says how to write what the user may have meant.
AMBIGUOUS: dict[str, str] = {
    "name": "it may be a customer's or a product's name. To rename, call the column "
    "'Friendly name'",
    "enddate": "it may be the term's end or a renewal date. Call the column 'Commitment end "
    "date' (checked against Partner Center) or 'Next term end date' (a renewal instruction)",
}


def near_miss(kind: Kind, header: str) -> str | None:
    """The known spelling an unknown `header` was probably meant to be, or None.

    A near miss is the same letters with other separators (`Auto/renew`), the same words in
    another order, or one typo (two in a long header): `Quantitiy`, `Auto renw`. A header
    whose words are a part of a known spelling (`Customer` for `Customer ID`) is another word,
    not a typo.
    """
    words = _words(header)
    squashed = "".join(words)
    if len(squashed) < 4 or normalize_header(header) in AMBIGUOUS:
        return None
    # (typos, words more or fewer, written in another style, spelling): the smallest wins
    best: tuple[int, int, bool, str] | None = None
    for f in COLUMNS[kind]:
        for spelling in spellings(f):
            known = _words(spelling)
            if squashed == "".join(known) or sorted(words) == sorted(known):
                return _display(spelling)
            if set(words) < set(known):
                continue
            limit = 1 if min(len(squashed), len("".join(known))) < 10 else 2
            distance = _distance(squashed, "".join(known), limit)
            style = (" " in spelling) != (" " in header.strip())
            rank = (distance, abs(len(known) - len(words)), style, _display(spelling))
            if distance <= limit and (best is None or rank[:3] < best[:3]):
                best = rank
    return best[3] if best else None


def _words(text: str) -> list[str]:
    """`autoRenewEnabled`, `Auto renew enabled` and `auto_renew-enabled` are the same words."""
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", text)]


def _display(spelling: str) -> str:
    """A spelling as a header would show it: `auto renew` -> `Auto renew`."""
    return spelling[:1].upper() + spelling[1:] if spelling.islower() else spelling


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance (insert, delete, replace, swap two neighbours); anything above `limit`
    comes back as `limit + 1`, early."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


def header_row(grid: pl.DataFrame) -> tuple[int | None, list[int]]:
    """The header's position in `grid`, and the written rows above it (1-based in the grid).

    The header is the first row that names the key columns (a customer id and a subscription or
    order id), so a title or instruction block above it is skipped; a sheet with no such row
    (its keys misspelt, say) takes its first written row, and load then says what is missing.
    """
    written = []
    for i, row in enumerate(grid.head(HEADER_SEARCH).iter_rows()):
        texts = [cell_text(c) for c in row]
        if not any(texts):
            continue
        if names_keys(texts):
            return i, [w + 1 for w in written]
        written.append(i)
    if written:
        return written[0], []
    rest = (i for i, row in enumerate(grid.iter_rows()) if any(cell_text(c) for c in row))
    return next(rest, None), []


HEADER_SEARCH = 50  # rows searched for a header under a title block
_KEYS = {
    name: f.name
    for k in KINDS
    for name, f in header_index(k).items()
    if f.name in ("customer_id", "subscription_id", "order_id")
}


def names_keys(cells: list[str]) -> bool:
    """Does a row name a customer id and a subscription or order id column?"""
    named = {_KEYS.get(normalize_header(cell_text(c))) for c in cells}
    return "customer_id" in named and bool(named & {"subscription_id", "order_id"})


def cell_text(cell: str | None) -> str:
    """A grid cell as a header is read: blanks around it gone, empty for none."""
    return (cell or "").strip(BLANKS)


def kind_from_name(sheet_name: str | None) -> Kind | None:
    name = (sheet_name or "").lower()
    return next((k for k in KINDS if name == k), None)


def detect_kind(headers: list[str]) -> Kind:
    """Orders when the headers name an order id and no subscription, or name line items."""
    norm = {normalize_header(h) for h in headers}
    subs, orders = header_index("subscriptions"), header_index("orders")
    has_order = any(orders.get(n) and orders[n].name == "order_id" for n in norm)
    has_sub = any(subs.get(n) and subs[n].name == "subscription_id" for n in norm)
    line_only = any(orders.get(n) and orders[n].level == "line" and n not in subs for n in norm)
    return "orders" if has_order and (not has_sub or line_only) else "subscriptions"


def match_columns(
    label: str,
    kind: Kind,
    headers: list[tuple[int, str]],
    declared: frozenset[str] | set[str] = frozenset(),
    sheets: list[str] | None = None,
) -> list[Column]:
    """The column of each header; a header that is a near miss, names a field twice, belongs
    on the other kind's sheet, or leaves out a key stops the load."""
    index = header_index(kind)
    seen: dict[str, tuple[int, str]] = {}
    names: set[str] = {ROW}
    columns = []
    for position, header in headers:
        key = normalize_header(header)
        f = None if key in declared else index.get(key)
        if f is not None and f.name in seen:
            first = seen[f.name]
            raise InputError(
                f"{label}: columns {column_letter(first[0])} ({first[1]!r}) and "
                f"{column_letter(position)} ({header!r}) both mean {f.title}; keep one of them."
            )
        if f is not None:
            seen[f.name] = (position, header)
        remark = ""
        if key in declared:
            remark = "declared a note: carried to the reports, never sent"
        elif key in AMBIGUOUS:
            remark = f"read as a note: {AMBIGUOUS[key]}"
        name = f.name if f else _unique(header or f"column {column_letter(position)}", names)
        names.add(name)
        columns.append(Column(name, header, f, remark))
    _require(label, kind, columns, sheets or [])
    _refuse_other_kind(label, kind, columns)
    for _, header in headers:
        key = normalize_header(header)
        meant = None if key in declared or key in index else near_miss(kind, header)
        if meant:
            raise InputError(
                f"{label}: Column {header!r} is not a field bulkpatch knows. Did you mean "
                f"{meant!r}? Rename the header, or keep it as a note with --note {header!r}."
            )
    return columns


# Where each kind's rows go, as a message says it.
_HOME: dict[Kind, str] = {
    "subscriptions": "a Subscriptions sheet, by Subscription ID",
    "orders": "an Orders sheet, by Order ID and Line item",
}
_A: dict[Kind, str] = {"subscriptions": "a subscription", "orders": "an order"}
# Fields settable on a subscription that an order line only shows: the way to change them.
_SET_ELSEWHERE: dict[str, str] = {
    "lineItems.friendlyName": "order lines cannot be renamed: rename the subscription on "
    + _HOME["subscriptions"],
}


def _refuse_other_kind(label: str, kind: Kind, columns: list[Column]) -> None:
    """A header this kind does not know and the other kind reads as a settable field, a seat
    change or a `Current ...` column (`Auto renew` on an orders sheet) stops the load: read as
    a note, it would drop the change without a word. A declared note (`--note`) is a note."""
    other: Kind = "orders" if kind == "subscriptions" else "subscriptions"
    index = header_index(other)
    for c in columns:
        meant = index.get(normalize_header(c.header)) if c.field is None else None
        if meant is None or c.remark.startswith("declared"):
            continue
        if meant.changes or meant.of:
            raise InputError(
                f"{label}: column {c.header!r} is {_A[other]} field, and this is {_A[kind]}s "
                f"sheet: put these rows on {_HOME[other]}; to keep it as a note, pass "
                f"--note {c.header!r}."
            )


def refuse_unsettable(label: str, columns: list[Column], frame: pl.DataFrame) -> None:
    """A column that names a field this kind only shows and the other kind sets (`Friendly
    name` on order lines) stops the load when a row writes in it: read as a cross-check, a new
    name would come back as a conflict ("the sheet may be out of date"), never as a rename.
    Called for a sheet bulkpatch did not export (an export writes the line's name to be read)."""
    for c in columns:
        if c.field is None or c.field.name not in _SET_ELSEWHERE:
            continue
        if frame.get_column(c.name).str.strip_chars(BLANKS).str.len_chars().gt(0).any():
            raise InputError(
                f"{label}: column {c.header!r}: {_SET_ELSEWHERE[c.field.name]}; to keep it as "
                f"a note, pass --note {c.header!r}."
            )


def _require(label: str, kind: Kind, columns: list[Column], sheets: list[str]) -> None:
    if not any(c.field for c in columns):
        found = listing([c.header for c in columns if c.header])
        pick = f" Pick the sheet to read with --sheet: {listing(sheets)}." if sheets else ""
        raise InputError(
            f"{label}: none of its headers ({found}) is a Partner Center field; "
            f"is this the right sheet? A {kind} sheet needs at least Customer ID and "
            f"{'Order ID' if kind == 'orders' else 'Subscription ID'} columns.{pick}"
        )
    for f in FIELDS[kind]:
        if f.name not in ("customer_id", RESOURCE_ID[kind]):
            continue
        if any(c.field is f for c in columns):
            continue
        unknown = [c.header for c in columns if c.field is None and c.header]
        spellings = [normalize_header(s) for s in (f.name, f.label, *f.aliases)]
        close = [
            h
            for h in unknown
            if difflib.get_close_matches(normalize_header(h), spellings, n=1, cutoff=0.6)
        ]
        hint = (
            f"the closest header is {close[0]!r}"
            if close
            else f"the headers are {listing([c.header for c in columns])}"
        )
        raise InputError(f"{label}: has no {f.title} column ({hint}); the {kind} sheet needs one.")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def column_letter(position: int) -> str:
    """Spreadsheet column letter for a 0-based position (0 -> A, 27 -> AB)."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
