"""The field catalog: every field of the two Partner Center request bodies, in one table.

Loading (header matching), checking (types, enums, ranges), body building and the docs all read
this table, so a field's rules live in exactly one place. Nested objects are dotted names
(`scheduledNextTermInstructions.product.skuId`); order line items are `lineItems.<field>`, one
row per line item. Types refine the reference's JSON types: a `datetime`, `duration`, `currency`,
`guid` or `order_id` is a string on the wire, checked more strictly here.

Each column has one role (PRODUCT.md, "Column roles"): only settable fields are ever sent;
expected ones (and `Current <field>` columns) are what the user believes Partner Center holds;
a `Seat change` is a delta. Headers that name nothing here are notes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["subscriptions", "orders"]
KINDS: tuple[Kind, ...] = ("subscriptions", "orders")

FieldType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "datetime",
    "enum",
    "duration",
    "currency",
    "string_list",
    "guid",
    "order_id",
    "object",
]
# What a cell of the column asks for (PRODUCT.md, "Column roles"). path: part of the URL; key:
# identifies an order line item; settable: a target value these PATCHes document as changeable;
# expected: what the user believes Partner Center holds (never sent, compared at plan time);
# delta: a signed change of a settable number; meta: carried with the body but changes nothing
# (etag); read_only: computed by Partner Center, refused in a sheet.
Role = Literal["path", "key", "settable", "expected", "delta", "meta", "read_only"]
Level = Literal["resource", "order", "line"]

JSON_TYPE: dict[FieldType, str] = {
    "string": "string",
    "datetime": "string",
    "duration": "string",
    "currency": "string",
    "guid": "string",
    "order_id": "string",
    "enum": "enum",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "string_list": "string[]",
    "object": "object",
}

BILLING_CYCLES = ("unknown", "monthly", "annual", "none", "one_time", "triennial")
TERM_BILLING_CYCLES = ("annual", "biennial", "monthly", "none", "one_time", "triennial", "unknown")
SUBSCRIPTION_STATUSES = ("none", "active", "suspended", "deleted", "expired", "pending", "disabled")
LINE_ITEM_STATUSES = ("active", "deleted", "expired", "none", "pending", "suspended")
ORDER_STATUSES = (
    "unknown",
    "completed",
    "pending",
    "pending_po_upload",
    "po_upload_complete",
    "cancelled",
    "partial_success",
    "po_review_rejected",
    "suspended",
    "pending_review",
    "error",
)


@dataclass(frozen=True)
class Field:
    """One sheet column's meaning: where it goes in the body and what a cell may hold."""

    name: str
    type: FieldType = "string"
    role: Role = "expected"
    enum: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    minimum: int | None = None
    level: Level = "resource"
    label: str = ""
    of: str = ""  # current and delta columns: the settable field they describe

    @property
    def title(self) -> str:
        """How messages name the field when the sheet has no column for it."""
        return self.label or self.name

    @property
    def required(self) -> bool:
        """Path parameters must be on every row: without them there is no URL."""
        return self.role == "path"

    @property
    def changes(self) -> bool:
        """True when a value in this column asks Partner Center for a change."""
        return self.role in ("settable", "delta")

    @property
    def shown_role(self) -> str:
        """The role as the mapping shows it to the user."""
        return SHOWN_ROLE[self.role]


SHOWN_ROLE: dict[Role, str] = {
    "path": "key",
    "key": "key",
    "settable": "set",
    "expected": "expected",
    "delta": "delta",
    "meta": "carried",
    "read_only": "read-only",
}


def _f(name: str, type_: FieldType = "string", **kw: object) -> Field:
    return Field(name, type_, **kw)  # type: ignore[arg-type]


def _ro(*names: str, type_: FieldType = "string", level: Level = "resource") -> list[Field]:
    return [Field(n, type_, role="read_only", level=level) for n in names]


_CUSTOMER = _f(
    "customer_id",
    "guid",
    role="path",
    label="Customer ID",
    aliases=("customer tenant id", "tenant id", "tenant", "customer guid"),
)
_ETAG = [_f("attributes.etag", role="meta"), _f("attributes.objectType", role="meta")]
_SUB_LINKS = (
    "activationLinks",
    "availability",
    "entitlement",
    "next",
    "offer",
    "parentSubscription",
    "pendingChanges",
    "previous",
    "product",
    "self",
    "sku",
)

SUBSCRIPTION_FIELDS: tuple[Field, ...] = (
    _CUSTOMER,
    _f(
        "subscription_id",
        "guid",
        role="path",
        label="Subscription ID",
        aliases=("id", "subscription guid"),
    ),
    _f("actionTaken", "boolean"),
    _f("actions", "string_list"),
    _f("attentionNeeded", "boolean"),
    _f("attentionReason"),
    *_ETAG,
    _f(
        "autoRenewEnabled",
        "boolean",
        role="settable",
        aliases=("auto renew", "autorenew", "auto renewal", "auto renew enabled", "renews"),
    ),
    _f(
        "billingCycle",
        "enum",
        role="settable",
        enum=BILLING_CYCLES,
        aliases=("billing cycle", "billing frequency"),
    ),
    _f("billingType", "enum", enum=("none", "usage", "license", "benefit")),
    _f("commitmentEndDate", "datetime", aliases=("commitment end date",)),
    _f("contractType", "enum", enum=("subscription", "product_key", "redemption_code")),
    _f("creationDate", "datetime"),
    _f("effectiveStartDate", "datetime"),
    _f("entitlementId"),
    _f(
        "friendlyName",
        role="settable",
        aliases=("friendly name", "subscription name", "nickname", "new name"),
    ),
    _f("hasPurchasableAddons", "boolean"),
    _f("isMicrosoftProduct", "boolean"),
    _f("isTrial", "boolean"),
    _f("migratedFromSubscriptionId"),
    _f("offerId", aliases=("offer id",)),
    _f("offerName", aliases=("offer name", "product name")),
    _f("orderId"),
    _f("parentSubscriptionId"),
    _f("partnerId"),
    _f("productOrderId"),
    _f("productType.id"),
    _f("productType.displayName"),
    _f("productType.subType.id"),
    _f("productType.subType.displayName"),
    _f("promotionId"),
    _f("publisherName"),
    _f(
        "quantity",
        "integer",
        role="settable",
        minimum=1,
        aliases=(
            "seats",
            "licenses",
            "licences",
            "seat count",
            "qty",
            "new quantity",
            "target quantity",
        ),
    ),
    _f("renewalTermDuration", "duration", aliases=("renewal term duration",)),
    _f(
        "scheduledNextTermInstructions.customTermEndDate",
        "datetime",
        role="settable",
        aliases=("next term end date", "custom term end date"),
    ),
    _f(
        "scheduledNextTermInstructions.product.availabilityId",
        role="settable",
        aliases=("next term availability id", "renewal availability id"),
    ),
    _f(
        "scheduledNextTermInstructions.product.billingCycle",
        "enum",
        role="settable",
        enum=TERM_BILLING_CYCLES,
        aliases=("next term billing cycle", "renewal billing cycle"),
    ),
    _f(
        "scheduledNextTermInstructions.product.productId",
        role="settable",
        aliases=("next term product id", "renewal product id"),
    ),
    _f(
        "scheduledNextTermInstructions.product.skuId",
        role="settable",
        aliases=("next term sku id", "renewal sku id"),
    ),
    _f(
        "scheduledNextTermInstructions.product.termDuration",
        "duration",
        role="settable",
        aliases=("next term duration", "renewal term"),
    ),
    _f(
        "scheduledNextTermInstructions.quantity",
        "integer",
        role="settable",
        minimum=1,
        aliases=("next term quantity", "renewal quantity"),
    ),
    _f(
        "status",
        "enum",
        role="settable",
        enum=SUBSCRIPTION_STATUSES,
        aliases=("subscription status", "new status"),
    ),
    _f(
        "suspensionReasons",
        "string_list",
        role="settable",
        aliases=("suspension reasons", "suspension reason"),
    ),
    _f("termDuration", "duration", aliases=("term", "term duration")),
    _f("unitType", aliases=("unit type",)),
    *_ro(*(f"links.{n}" for n in _SUB_LINKS)),
    *_ro("refundOptions.type"),
    *_ro("refundOptions.expiresAt", type_="datetime"),
    *_ro(
        "refundableQuantity.totalQuantity", "refundableQuantity.details.quantity", type_="integer"
    ),
    *_ro("refundableQuantity.details.allowedUntilDateTime", type_="datetime"),
    *_ro("lineItems.autoRenewEnabled", type_="boolean"),
    *_ro(
        "lineItems.friendlyName",
        "lineItems.id",
        "lineItems.purchaseCommitment.grain",
        "lineItems.scope.entitlementId",
        "lineItems.scope.managementGroupId",
        "lineItems.scope.resourceGroupId",
        "lineItems.scope.subscriptionId",
        "lineItems.scope.type",
    ),
    *_ro("lineItems.purchaseCommitment.currency", type_="currency"),
    *_ro("lineItems.purchaseCommitment.amount", type_="number"),
    *_ro("lineItems.quantity", type_="integer"),
    Field("lineItems.status", "enum", role="read_only", enum=LINE_ITEM_STATUSES),
)


def _line(name: str, type_: FieldType = "string", **kw: object) -> Field:
    return Field(f"lineItems.{name}", type_, level="line", **kw)  # type: ignore[arg-type]


_LINE_LINKS = (
    "activationLinks",
    "availability",
    "product",
    "provisioningStatus",
    "sku",
    "subscription",
)

ORDER_FIELDS: tuple[Field, ...] = (
    _CUSTOMER,
    _f(
        "order_id",
        "order_id",
        role="path",
        level="order",
        label="Order ID",
        aliases=("id", "order number"),
    ),
    _f("alternateId", level="order"),
    *(Field(f.name, f.type, role="meta", level="order") for f in _ETAG),
    _f(
        "billingCycle",
        "enum",
        role="settable",
        enum=BILLING_CYCLES,
        level="order",
        aliases=("billing cycle", "billing frequency"),
    ),
    _f("client.deviceFamily", level="order"),
    _f("client.marketplaceCountry", level="order"),
    _f("client.name", level="order"),
    _f("creationDate", "datetime", level="order"),
    _f("currencyCode", "currency", level="order", aliases=("currency",)),
    _f("currencySymbol", level="order"),
    _f("referenceCustomerId", level="order"),
    _f(
        "status",
        "enum",
        role="settable",
        enum=ORDER_STATUSES,
        level="order",
        aliases=("order status",),
    ),
    _f("totalPrice", "number", level="order", aliases=("total price",)),
    _f("transactionType", level="order"),
    *_ro("links.patchOperation", "links.provisioningStatus", "links.self", level="order"),
    _line("attestationAccepted", "boolean"),
    _line("customTermEndDate", "datetime"),
    _line("friendlyName", aliases=("friendly name",)),
    _line(
        "lineItemNumber",
        "integer",
        role="key",
        minimum=0,
        aliases=("line item", "line item number", "line", "line number"),
    ),
    _line("offerId", aliases=("offer id",)),
    _line("parentSubscriptionId"),
    _line("partnerIdOnRecord"),
    _line("pricing.discountedPrice", "number"),
    _line("pricing.extendedPrice", "number"),
    _line("pricing.listPrice", "number"),
    _line("pricing.price", "number"),
    _line("pricing.proratedPrice", "number"),
    _line("promotionId"),
    _line("provisioningContext", "object"),
    _line("purchaseCommitment.amount", "number"),
    _line("purchaseCommitment.currency", "currency"),
    _line("purchaseCommitment.grain"),
    _line("quantity", "integer", role="settable", minimum=1, aliases=("seats", "licenses", "qty")),
    _line("renewsTo.termDuration", "duration"),
    _line("subscriptionId", "guid", role="key", aliases=("subscription id",)),
    _line("termDuration", "duration", aliases=("term", "term duration")),
    _line("transactionType"),
    *_ro(*(f"lineItems.links.{n}" for n in _LINE_LINKS), level="line"),
)

FIELDS: dict[Kind, tuple[Field, ...]] = {
    "subscriptions": SUBSCRIPTION_FIELDS,
    "orders": ORDER_FIELDS,
}


def _spellings(f: Field) -> list[str]:
    """How a header may name `f`: its label, its name, its aliases, a line field's bare name."""
    names = [*([f.label] if f.label else []), f.name, *f.aliases]
    if f.level == "line":
        names.append(f.name.removeprefix("lineItems."))
    return names


def _current(f: Field) -> Field:
    """`Current seats`: what the user believes a settable field holds now (an expected value)."""
    wanted = [n for n in _spellings(f) if not n.startswith(("new ", "target "))]
    return Field(
        f"current:{f.name}",
        f.type,
        role="expected",
        enum=f.enum,
        aliases=tuple(f"current {n}" for n in wanted),
        level=f.level,
        label=f"Current {f.title}",
        of=f.name,
    )


# A signed change of seats (`+2`, `-1`): plan turns it into a total from the quantity it reads.
SEAT_CHANGE = Field(
    "delta:quantity",
    "integer",
    role="delta",
    label="Seat change",
    of="quantity",
    aliases=(
        "seat change",
        "seats change",
        "change in seats",
        "add seats",
        "seats to add",
        "quantity change",
        "seat delta",
    ),
)

# Every column a sheet may carry: the body's fields, then the current and delta columns.
COLUMNS: dict[Kind, tuple[Field, ...]] = {
    "subscriptions": (
        *SUBSCRIPTION_FIELDS,
        *(_current(f) for f in SUBSCRIPTION_FIELDS if f.role == "settable"),
        SEAT_CHANGE,
    ),
    "orders": (*ORDER_FIELDS, *(_current(f) for f in ORDER_FIELDS if f.role == "settable")),
}

_AS_OFFER = (
    "it may be an offer's name or its id. To have Partner Center's offer checked, call the "
    "column 'Offer name' or 'Offer ID'"
)
# Everyday words that could name several fields: never settable, read as notes, and the mapping
# says how to write what the user may have meant.
AMBIGUOUS: dict[str, str] = {
    "name": "it may be a customer's or a product's name. To rename, call the column "
    "'Friendly name'",
    "offer": _AS_OFFER,
    "product": _AS_OFFER,
    "enddate": "it may be the term's end or a renewal date. Call the column 'Commitment end "
    "date' (checked against Partner Center) or 'Next term end date' (a renewal instruction)",
}

# The field that holds each kind's resource id in the URL path.
RESOURCE_ID: dict[Kind, str] = {"subscriptions": "subscription_id", "orders": "order_id"}
# Dotted prefixes that are arrays of objects in the JSON body (a sheet holds one element a row).
ARRAYS: dict[Kind, frozenset[str]] = {
    "subscriptions": frozenset({"lineItems", "refundOptions", "refundableQuantity.details"}),
    "orders": frozenset({"lineItems"}),
}


def normalize_header(text: str) -> str:
    """Header matching ignores case, spaces, `_`, `-` and `.` (so `Subscription ID` matches)."""
    return re.sub(r"[\s_.\-\u00a0]+", "", text).lower()


def header_index(kind: Kind) -> dict[str, Field]:
    """Every spelling a header may take for `kind`, normalised, mapped to its field.

    A line-item field also answers to its bare name (`quantity` on an orders sheet means
    `lineItems.quantity`) unless an order-level field already has that name.
    """
    return dict(_index(kind))


@functools.cache
def _index(kind: Kind) -> tuple[tuple[str, Field], ...]:
    index: dict[str, Field] = {}
    for f in COLUMNS[kind]:
        index.setdefault(normalize_header(f.name), f)
    for f in COLUMNS[kind]:
        for name in _spellings(f):
            index.setdefault(normalize_header(name), f)
    return tuple(index.items())


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
        for spelling in _spellings(f):
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


def field(kind: Kind, name: str) -> Field:
    """The catalog entry `name` of `kind` (a StopIteration names a programming mistake)."""
    return next(f for f in COLUMNS[kind] if f.name == name)


def enum_key(value: str) -> str:
    """Enum cells match ignoring case, spaces, `_` and `-`: `One time` is `one_time`."""
    return normalize_header(value)
