"""The field catalog: every field of the two Partner Center request bodies, in one table.

Loading (header matching), checking (types, enums, ranges), body building and the docs all read
this table, so a field's rules live in exactly one place. Nested objects are dotted names
(`scheduledNextTermInstructions.product.skuId`); order line items are `lineItems.<field>`, one
row per line item. Types refine the reference's JSON types: a `datetime`, `duration`, `currency`,
`guid` or `order_id` is a string on the wire, checked more strictly here.
"""

from __future__ import annotations

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
# path: part of the URL; value: a change the sheet asks for; key: identifies an order line item;
# meta: carried with the body but changes nothing (etag); read_only: computed by Partner Center.
Role = Literal["path", "value", "key", "meta", "read_only"]
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
    role: Role = "value"
    enum: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    minimum: int | None = None
    level: Level = "resource"
    label: str = ""

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
        return self.role == "value"


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
        aliases=("auto renew", "autorenew", "auto renewal", "auto renew enabled", "renews"),
    ),
    _f("billingCycle", "enum", enum=BILLING_CYCLES, aliases=("billing cycle", "billing frequency")),
    _f("billingType", "enum", enum=("none", "usage", "license", "benefit")),
    _f("commitmentEndDate", "datetime", aliases=("commitment end date", "end date")),
    _f("contractType", "enum", enum=("subscription", "product_key", "redemption_code")),
    _f("creationDate", "datetime"),
    _f("effectiveStartDate", "datetime"),
    _f("entitlementId"),
    _f(
        "friendlyName",
        aliases=("name", "friendly name", "subscription name", "nickname", "new name"),
    ),
    _f("hasPurchasableAddons", "boolean"),
    _f("isMicrosoftProduct", "boolean"),
    _f("isTrial", "boolean"),
    _f("migratedFromSubscriptionId"),
    _f("offerId", aliases=("offer", "offer id")),
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
        aliases=("next term end date", "custom term end date"),
    ),
    _f(
        "scheduledNextTermInstructions.product.availabilityId",
        aliases=("next term availability id", "renewal availability id"),
    ),
    _f(
        "scheduledNextTermInstructions.product.billingCycle",
        "enum",
        enum=TERM_BILLING_CYCLES,
        aliases=("next term billing cycle", "renewal billing cycle"),
    ),
    _f(
        "scheduledNextTermInstructions.product.productId",
        aliases=("next term product id", "renewal product id"),
    ),
    _f(
        "scheduledNextTermInstructions.product.skuId",
        aliases=("next term sku id", "renewal sku id"),
    ),
    _f(
        "scheduledNextTermInstructions.product.termDuration",
        "duration",
        aliases=("next term duration", "renewal term"),
    ),
    _f(
        "scheduledNextTermInstructions.quantity",
        "integer",
        minimum=1,
        aliases=("next term quantity", "renewal quantity"),
    ),
    _f("status", "enum", enum=SUBSCRIPTION_STATUSES, aliases=("subscription status", "new status")),
    _f("suspensionReasons", "string_list", aliases=("suspension reasons", "suspension reason")),
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
    _f("status", "enum", enum=ORDER_STATUSES, level="order", aliases=("order status",)),
    _f("totalPrice", "number", level="order", aliases=("total price",)),
    _f("transactionType", level="order"),
    *_ro("links.patchOperation", "links.provisioningStatus", "links.self", level="order"),
    _line("attestationAccepted", "boolean"),
    _line("customTermEndDate", "datetime"),
    _line("friendlyName", aliases=("friendly name", "name")),
    _line(
        "lineItemNumber",
        "integer",
        role="key",
        minimum=0,
        aliases=("line item", "line item number", "line", "line number"),
    ),
    _line("offerId", aliases=("offer", "offer id")),
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
    _line("quantity", "integer", minimum=1, aliases=("seats", "licenses", "qty")),
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
    index: dict[str, Field] = {}
    for f in FIELDS[kind]:
        index.setdefault(normalize_header(f.name), f)
    for f in FIELDS[kind]:
        names = list(f.aliases)
        if f.level == "line":
            names.append(f.name.removeprefix("lineItems."))
        for name in names:
            index.setdefault(normalize_header(name), f)
    return index


def field(kind: Kind, name: str) -> Field:
    """The catalog entry `name` of `kind` (a KeyError names a programming mistake)."""
    return next(f for f in FIELDS[kind] if f.name == name)


def enum_key(value: str) -> str:
    """Enum cells match ignoring case, spaces, `_` and `-`: `One time` is `one_time`."""
    return normalize_header(value)
