"""Which catalog field each header of a sheet names: where the header row is, which kind of sheet
it is, its columns, and which field a header that names none was meant to be (a near miss: load
refuses it rather than carry a typo as a note).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field

import polars as pl

from bulkpatch.catalog.fields import (
    COLUMNS,
    FIELDS,
    MATCHED_WITH,
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


# Partner Center's new commerce invoice reconciliation file ("Learn how to read new commerce
# invoice reconciliation files", https://learn.microsoft.com/partner-center/billing/
# modern-invoice-reconciliation-file): the columns it documents, and the ones that sign it.
# Its ids are keys and its customer's name and domain what they say; every other column is
# about one charge line (`Quantity`: the units that line bought; `PartnerId`: the partner's
# own id; `BillingFrequency`, `UnitType`, `OrderId`: the charge's), never a field to set or
# compare, so the file alone asks for nothing.
RECONCILIATION = frozenset(
    normalize_header(h)
    for h in (
        "PartnerId",
        "CustomerId",
        "CustomerName",
        "CustomerDomainName",
        "CustomerCountry",
        "InvoiceNumber",
        "MpnId",
        "ResellerMpnId",
        "OrderId",
        "OrderDate",
        "ProductId",
        "SkuId",
        "AvailabilityId",
        "SkuName",
        "ProductName",
        "ChargeType",
        "UnitPrice",
        "Quantity",
        "Subtotal",
        "TaxTotal",
        "Total",
        "Currency",
        "PublisherName",
        "PublisherId",
        "SubscriptionDescription",
        "SubscriptionId",
        "ChargeStartDate",
        "ChargeEndDate",
        "TermAndBillingCycle",
        "EffectiveUnitPrice",
        "UnitType",
        "AlternateId",
        "BillableQuantity",
        "BillingFrequency",
        "PricingCurrency",
        "PCToBCExchangeRate",
        "PCToBCExchangeRateDate",
        "MeterDescription",
        "ReservationOrderId",
        "CreditReasonCode",
        "SubscriptionStartDate",
        "SubscriptionEndDate",
        "ReferenceId",
        "ProductQualifiers",
        "PromotionId",
        "ProductCategory",
    )
)
_SIGNATURE = {"partnerid", "customerid", "subscriptionid", "chargetype", "billablequantity"}
_READ = {"customerid", "subscriptionid", "customername", "customerdomainname"}
RECONCILIATION_NOTE = (
    "This is Partner Center's invoice reconciliation file: its Quantity is the units one "
    "charge line bought, not the seats a subscription should hold, so the file alone asks "
    "for nothing. To true up from it, add a Seats column with the seats each subscription "
    "should have, or start from `bulkpatch export`."
)


# The license-based reconciliation file, the one before new commerce ("Understand the fields
# in Partner Center license-based reconciliation files", https://learn.microsoft.com/
# partner-center/billing/license-based-recon-files): its `SubscriptionId` is a billing
# platform's id, "not the same as the Subscription ID", which is its
# `SyndicationPartnerSubscriptionNumber`; its `OfferId` "does not match Offer ID from the price
# list" (`DurableOfferId` does); its `Quantity` the licenses one charge line is for; its
# `DomainName` not to be used to identify the customer. So the syndication number is the key
# and every other column but the customer's id and name is carried, never sent or compared.
LICENSE_BASED = frozenset(
    normalize_header(h)
    for h in (
        "PartnerId",
        "CustomerId",
        "CustomerName",
        "MpnId",
        "ResellerMpnId",
        "OrderId",
        "SubscriptionId",
        "SyndicationPartnerSubscriptionNumber",
        "OfferId",
        "DurableOfferId",
        "OfferName",
        "SubscriptionStartDate",
        "SubscriptionEndDate",
        "ChargeStartDate",
        "ChargeEndDate",
        "ChargeType",
        "UnitPrice",
        "Quantity",
        "Amount",
        "TotalOtherDiscount",
        "Subtotal",
        "Tax",
        "TotalForCustomer",
        "Currency",
        "DomainName",
        "SubscriptionName",
        "SubscriptionDescription",
        "BillingCycleType",
    )
)
_SYNDICATION = normalize_header("SyndicationPartnerSubscriptionNumber")
_LICENSE_SIGNATURE = {"partnerid", "customerid", _SYNDICATION, "chargetype"}
_LICENSE_READ = {"customerid", "customername", _SYNDICATION}


def is_reconciliation(headers: list[str]) -> bool:
    """Do the headers carry the signature of a reconciliation file, new commerce's or the
    license-based one before it?"""
    keys = {normalize_header(h) for h in headers}
    return keys >= _SIGNATURE or keys >= _LICENSE_SIGNATURE


def _charge_columns(keys: set[str]) -> frozenset[str]:
    """The columns of a reconciliation file (its normalized headers: `keys`) that are about
    one charge line, none when it is not one: notes, never fields."""
    if keys >= _LICENSE_SIGNATURE:
        return LICENSE_BASED - _LICENSE_READ
    return RECONCILIATION - _READ if keys >= _SIGNATURE else frozenset()


# The portal's customer list, as Customers > Export customers writes it ("Search for
# customers", https://learn.microsoft.com/previous-versions/azure/cloud-solution-provider/
# integration/manage-customers/get-customers): `Microsoft ID` (the customer id), `Company
# name`, `Primary domain name` and `Relationship` (the partner's business relationship with
# the customer, never a field to set or compare). It names customers, no subscription.
CUSTOMER_LIST = frozenset(
    normalize_header(h) for h in ("Microsoft ID", "Company name", "Primary domain name")
)
_RELATIONSHIP = normalize_header("Relationship")


def _customer_list(label: str) -> str:
    """What to do with the portal's customer list read as a subscriptions sheet."""
    path = label.split(" [")[0]  # a workbook's label names its sheet too
    return (
        f"{label}: this is Partner Center's customer list (Customers, Export customers): it "
        "names customers, not their subscriptions, so it asks for nothing. To change their "
        f"subscriptions, run `bulkpatch export --customers {path}` and edit the sheet it "
        "writes, or add a Product column (the offer's name) and a Seats column to this one."
    )


def _names_subscriptions(columns: list[Column]) -> bool:
    """Does a column name the subscription, by its id or by what it is?"""
    naming = {RESOURCE_ID["subscriptions"], *MATCHED_WITH["subscription_id"]}
    return any(c.field and c.field.name in naming for c in columns)


def near_miss(kind: Kind, header: str) -> str | None:
    """The known spelling an unknown `header` was probably meant to be, or None.

    A near miss is the same letters with other separators (`Auto/renew`), the same words in
    another order, or one typo (two in a long header): `Quantitiy`, `Auto renw`. A header
    whose words are a part of a known spelling (`Customer` for `Customer ID`) is another word,
    not a typo. Only the spellings that share a header's letters but two are measured
    (`_deletions`), so a sheet of many unknown headers costs the same per header however wide
    it is.
    """
    words = _words(header)
    squashed = "".join(words)
    if len(squashed) < 4 or normalize_header(header) in AMBIGUOUS:
        return None
    known = _spellings(kind)
    same = [known.squashed.get(squashed), known.reordered.get(tuple(sorted(words)))]
    if any(i is not None for i in same):
        return known.all[min(i for i in same if i is not None)].display
    if len(squashed) > known.longest + _MOST_TYPOS:  # longer than any spelling and two typos
        return None
    typos = 1 if len(squashed) < 10 else _MOST_TYPOS  # a short header: one typo at most
    deleted = known.deleted(range(len(squashed) - typos, len(squashed) + typos + 1))
    near = {i for d in _deletions(squashed, typos) for i in deleted.get(d, ())}
    # (typos, words more or fewer, written in another style, spelling): the smallest wins
    best: tuple[int, int, bool, str] | None = None
    for k in sorted(near):
        spelling = known.all[k]
        if set(words) < spelling.words:
            continue
        limit = 1 if min(len(squashed), len(spelling.squashed)) < 10 else _MOST_TYPOS
        distance = _distance(squashed, spelling.squashed, limit)
        style = spelling.spaced != (" " in header.strip())
        rank = (distance, abs(spelling.count - len(words)), style, spelling.display)
        if distance <= limit and (best is None or rank[:3] < best[:3]):
            best = rank
    return best[3] if best else None


_MOST_TYPOS = 2  # typos a long header may have and still be a near miss


@dataclass(frozen=True)
class _Spelling:
    display: str  # as a header shows it
    squashed: str  # its words run together
    words: frozenset[str]
    count: int  # how many words
    spaced: bool  # written with spaces (not `camelCase`)


@dataclass(frozen=True)
class _Spellings:
    """A kind's known spellings in catalog order (the first of equals wins), and where to find
    them: by their squashed words, by their words in any order (and by letters taken out:
    `_deleted`)."""

    all: list[_Spelling]
    squashed: dict[str, int]
    reordered: dict[tuple[str, ...], int]
    longest: int  # the longest squashed spelling
    _deleted: dict[str, set[int]] = field(default_factory=dict)
    _lengths: set[int] = field(default_factory=set)  # the lengths `_deleted` holds

    def deleted(self, lengths: range) -> dict[str, set[int]]:
        """The spellings by their squashed words with letters taken out (`_deletions`): one
        for a short spelling (a short header is allowed one typo), two for a long one. Built
        for the lengths an unknown header may have (each typo is a letter more or fewer), so
        a sheet with one unknown column measures its few neighbours, a wide one each once."""
        for n in [n for n in lengths if n not in self._lengths]:
            self._lengths.add(n)
            for at, spelling in enumerate(self.all):
                if len(spelling.squashed) == n:
                    most = 1 if n < 10 else _MOST_TYPOS
                    for shorter in _deletions(spelling.squashed, most):
                        self._deleted.setdefault(shorter, set()).add(at)
        return self._deleted


@functools.cache
def _spellings(kind: Kind) -> _Spellings:
    every: list[_Spelling] = []
    squashed: dict[str, int] = {}
    reordered: dict[tuple[str, ...], int] = {}
    for f in COLUMNS[kind]:
        for text in spellings(f):
            words = _words(text)
            joined = "".join(words)
            at = len(every)
            every.append(
                _Spelling(_display(text), joined, frozenset(words), len(words), " " in text)
            )
            squashed.setdefault(joined, at)
            reordered.setdefault(tuple(sorted(words)), at)
    longest = max(len(s.squashed) for s in every)
    return _Spellings(every, squashed, reordered, longest)


def _deletions(text: str, most: int) -> set[str]:
    """`text` with up to `most` letters taken out. Two texts within `most` typos (insert,
    delete, replace, swap two neighbours) share one of these (SymSpell's idea: each typo is a
    letter taken out of one text or both), so only texts sharing one need measuring."""
    found = edge = {text}
    for _ in range(most):
        edge = {t[:i] + t[i + 1 :] for t in edge for i in range(len(t))}
        found = found | edge
    return found


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
    for i in range(min(grid.height, HEADER_SEARCH)):  # a row at a time: most stop at the first
        texts = [cell_text(c) for c in grid.row(i)]
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


_STAND_INS = {
    name: stand_in
    for name, f in header_index("subscriptions").items()
    for stand_in, by in MATCHED_WITH.items()
    if f.name in by
}


def closest_header(grid: pl.DataFrame, kind: Kind, first_row: int = 1) -> tuple[int, str] | None:
    """When no row names the key columns: the row that comes closest (its index in `grid`,
    whose first row is the file's `first_row`) and the words saying so, with its near misses
    and what they were probably meant to be (`row 3 ... has 'Sub-Idd': did you mean 'Sub
    id'?`); None when no row has a near miss."""
    best: tuple[int, list[tuple[str, str]]] | None = None
    index = header_index(kind)
    for i, row in enumerate(grid.head(HEADER_SEARCH).iter_rows()):
        texts = [cell_text(c) for c in row if cell_text(c)]
        misses = [
            (t, m) for t in texts if normalize_header(t) not in index and (m := near_miss(kind, t))
        ]
        if misses and (best is None or len(misses) > len(best[1])):
            best = (i, misses)
    if best is None:
        return None
    had = ", ".join(repr(t) for t, _ in best[1])
    meant = ", ".join(repr(m) for _, m in best[1])
    return best[0], (
        f"no row names the key columns; row {first_row + best[0]} comes closest: it has {had}: "
        f"did you mean {meant}?"
    )


def names_keys(cells: list[str]) -> bool:
    """Does a row name a customer id and a subscription or order id column (or, on a sheet
    matched by name, the columns that stand in for them: a company and a product)?"""
    norm = [normalize_header(cell_text(c)) for c in cells]
    named = {_KEYS.get(n) for n in norm} | {_STAND_INS.get(n) for n in norm}
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
    keys = {normalize_header(h) for _, h in headers}
    charges = _charge_columns(keys)  # a reconciliation file's columns that are not fields
    declared = set(declared) | charges
    if keys >= _LICENSE_SIGNATURE:  # its syndication number is the Subscription ID
        index = {**index, _SYNDICATION: index[normalize_header("Subscription ID")]}
    listed = keys >= CUSTOMER_LIST
    if listed:  # the customer list's relationship is the partner's, not the customer's
        declared = set(declared) | {_RELATIONSHIP}
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
        if key in charges:
            remark = "a reconciliation file's charge column: carried, never sent or compared"
        elif listed and key == _RELATIONSHIP:
            remark = "the customer list's relationship to you: carried, never sent or compared"
        elif key in declared:
            remark = "declared a note: carried to the reports, never sent"
        elif key in AMBIGUOUS:
            remark = f"read as a note: {AMBIGUOUS[key]}"
        name = f.name if f else _unique(header or f"column {column_letter(position)}", names)
        names.add(name)
        columns.append(Column(name, header, f, remark))
    if listed and kind == "subscriptions" and not _names_subscriptions(columns):
        raise InputError(_customer_list(label))
    _require(label, kind, columns, sheets or [])
    _refuse_other_kind(label, kind, columns, declared)
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


def _refuse_other_kind(label: str, kind: Kind, columns: list[Column], declared: set[str]) -> None:
    """A header this kind does not know and the other kind reads as a settable field, a seat
    change or a `Current ...` column (`Auto renew` on an orders sheet) stops the load: read as
    a note, it would drop the change without a word. A declared note (`--note`, or a
    reconciliation file's charge column) is a note."""
    other: Kind = "orders" if kind == "subscriptions" else "subscriptions"
    index = header_index(other)
    for c in columns:
        meant = index.get(normalize_header(c.header)) if c.field is None else None
        if meant is None or normalize_header(c.header) in declared:
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
    if not any(c.field and c.field.role != "match" for c in columns):
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
        named = {c.field.name for c in columns if c.field}
        if kind == "subscriptions" and named & set(MATCHED_WITH.get(f.name, ())):
            continue  # found by name at plan time (README, "Matching")
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
