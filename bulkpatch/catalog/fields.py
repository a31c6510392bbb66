"""The field catalog: every field of the two Partner Center request bodies, in one table.

Loading (header matching), checking (types, enums, ranges), body building and the docs all read
this table, so a field's rules live in exactly one place. Nested objects are dotted names
(`scheduledNextTermInstructions.product.skuId`); order line items are `lineItems.<field>`, one
row per line item. Types refine the reference's JSON types: a `datetime`, `duration`, `currency`,
`guid` or `order_id` is a string on the wire, checked more strictly here.

Each column has one role (README, "What a sheet may hold"): only settable fields are ever sent;
expected ones (and `Current <field>` columns) are what the user believes Partner Center holds;
a `Seat change` is a delta. Headers that name nothing here are notes. What a field is lives in
`field.py`; which field a misspelt header meant, in `headers.py`.
"""

from __future__ import annotations

import functools
import re

# The field vocabulary (`field.py`) is part of the catalog's public names.
from bulkpatch.catalog.model import JSON_TYPE as JSON_TYPE
from bulkpatch.catalog.model import KINDS as KINDS
from bulkpatch.catalog.model import SHOWN_ROLE as SHOWN_ROLE
from bulkpatch.catalog.model import Field, FieldType, Kind, Level
from bulkpatch.catalog.model import Role as Role

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


# A subscription's seats: at least 1, at most 10,000. No Microsoft page at hand gives the number:
# "Manage orders - Update subscription by ID"
# (https://learn.microsoft.com/rest/api/partner-center/manage-orders/update-subscription-by-id)
# types `quantity` as an integer without bounds, and "Offer resources"
# (https://learn.microsoft.com/partner-center/developer/offer-resources) gives each offer its
# own `minimumQuantity` and `maximumQuantity`, which a sheet does not carry. 10,000 is the bound
# plan (and the sandbox, with error 2002) has held since the first rules; it is the catalog's
# now, so check refuses a 20,000-seat row before anything is read.
MAX_SEATS = 10_000


def _f(name: str, type_: FieldType = "string", **kw: object) -> Field:
    return Field(name, type_, **kw)  # type: ignore[arg-type]


def _ro(*names: str, type_: FieldType = "string", level: Level = "resource") -> list[Field]:
    return [Field(n, type_, role="read_only", level=level) for n in names]


def _next_term(name: str, type_: FieldType, *aliases: str, **kw: object) -> Field:
    """A renewal instruction: settable, under `scheduledNextTermInstructions`."""
    return _f(
        f"scheduledNextTermInstructions.{name}", type_, role="settable", aliases=aliases, **kw
    )


# Headers finance teams type (issue 23), beside the field names. `CustomerId`, `SubscriptionId`,
# `CustomerName`, `CustomerDomainName` and `ProductName` are the columns of Partner Center's
# invoice reconciliation file ("Learn how to read new commerce invoice reconciliation files",
# https://learn.microsoft.com/partner-center/billing/modern-invoice-reconciliation-file) and
# need no alias (headers match ignoring case and separators); `Customer Tenant ID`, `Tenant`,
# `Sub ID`, `Subscription`, `Licences`/`Licenses`, `Seats`, `Qty` and `Renewal date` are the
# words of billing and PSA exports as teams write them, no Microsoft page's: each is one field
# only, and a near miss of one still stops the load. `Microsoft ID` is the customer id as the
# portal's customer list shows and exports it ("Get a customer's subscriptions by PartnerID",
# https://learn.microsoft.com/partner-center/developer/get-all-subscriptions-by-partner: "The
# Microsoft ID is the same as the customer ID"; "Search for customers", https://
# learn.microsoft.com/previous-versions/azure/cloud-solution-provider/integration/
# manage-customers/get-customers: the export's columns), its `Primary domain name` a domain.
_CUSTOMER = _f(
    "customer_id",
    "guid",
    role="path",
    label="Customer ID",
    aliases=("customer tenant id", "tenant id", "tenant", "customer guid", "microsoft id"),
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
        aliases=("id", "subscription guid", "sub id", "subscription"),
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
    _f("commitmentEndDate", "datetime", aliases=("commitment end date", "renewal date")),
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
    # "Subscription resources" (https://learn.microsoft.com/partner-center/developer/
    # subscription-resources) and the SDK's Subscription.PartnerId ("the MPN identifier. This
    # only applies to indirect partner scenarios"): the indirect reseller of the subscription.
    # No page documents changing it through "Update a subscription by ID": expected, never sent
    # as a change, compared with what Partner Center holds.
    _f("partnerId", aliases=("reseller id", "reseller", "partner id", "mpn id")),
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
        maximum=MAX_SEATS,
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
    _next_term("customTermEndDate", "datetime", "next term end date", "custom term end date"),
    _next_term(
        "product.availabilityId", "string", "next term availability id", "renewal availability id"
    ),
    _next_term(
        "product.billingCycle",
        "enum",
        "next term billing cycle",
        "renewal billing cycle",
        enum=TERM_BILLING_CYCLES,
    ),
    _next_term("product.productId", "string", "next term product id", "renewal product id"),
    _next_term("product.skuId", "string", "next term sku id", "renewal sku id"),
    _next_term("product.termDuration", "duration", "next term duration", "renewal term"),
    _next_term(
        "quantity",
        "integer",
        "next term quantity",
        "renewal quantity",
        minimum=1,
        maximum=MAX_SEATS,  # the seats it renews with: the same bounds as `quantity`
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


def spellings(f: Field) -> list[str]:
    """How a header may name `f`: its label, its name, its aliases, a line field's bare name."""
    names = [*([f.label] if f.label else []), f.name, *f.aliases]
    if f.level == "line":
        names.append(f.name.removeprefix("lineItems."))
    return names


def _current(f: Field) -> Field:
    """`Current seats`: what the user believes a settable field holds now (an expected value)."""
    wanted = [n for n in spellings(f) if not n.startswith(("new ", "target "))]
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

# `Product` or `Offer`: the offer the user believes the row is about, by name or by id. It is
# compared with both, so a row misaligned by sorting one column stops as a conflict.
OFFER = Field(
    "offer:any",
    "string",
    role="expected",
    label="Offer",
    aliases=("offer", "product", "sku", "sku name"),
)

# A row without ids names its customer by company name or domain (README, "What a sheet may
# hold": matching). "Customer resources" (https://learn.microsoft.com/partner-center/developer/
# customer-resources): the customer list carries `companyProfile.companyName`,
# `companyProfile.domain` and `customDomains`, what these columns are matched against. A row
# with ids keeps them as notes of a kind: carried, never compared, never sent. `Matched by`
# is what `matched.csv` says of each row (README, "Matching").
COMPANY = Field(
    "match:company",
    "string",
    role="match",
    label="Customer",
    aliases=("company", "customer name", "company name", "account"),
)
DOMAIN = Field(
    "match:domain",
    "string",
    role="match",
    label="Domain",
    aliases=(
        "customer domain",
        "primary domain",
        "primary domain name",
        "domain name",
        "customer domain name",
    ),
)
MATCHED_BY = Field("match:by", "string", role="match", label="Matched by")
MATCH_FIELDS = (COMPANY, DOMAIN, MATCHED_BY)
# The columns that can stand in for a subscription sheet's id columns on a row without them.
MATCHED_WITH: dict[str, tuple[str, ...]] = {
    "customer_id": ("match:company", "match:domain"),
    "subscription_id": ("offer:any", "offerName", "offerId"),
}

# `Remove renewal changes`: yes clears the changes scheduled for the renewal. "Schedule changes
# for a new commerce subscription" (https://learn.microsoft.com/partner-center/developer/
# create-scheduled-changes) sets them through `scheduledNextTermInstructions` in "Update a
# subscription by ID", a full-object PATCH: a body without them holds none (README, "apply").
REMOVE_RENEWAL = Field(
    "renewal:remove",
    "boolean",
    role="settable",
    label="Remove renewal changes",
    aliases=("remove renewal changes", "clear renewal changes", "remove scheduled changes"),
)

# Every column a sheet may carry: the body's fields, then the current and delta columns.
COLUMNS: dict[Kind, tuple[Field, ...]] = {
    "subscriptions": (
        *SUBSCRIPTION_FIELDS,
        *(_current(f) for f in SUBSCRIPTION_FIELDS if f.role == "settable"),
        SEAT_CHANGE,
        OFFER,
        REMOVE_RENEWAL,
        *MATCH_FIELDS,
    ),
    "orders": (*ORDER_FIELDS, *(_current(f) for f in ORDER_FIELDS if f.role == "settable")),
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
        for name in spellings(f):
            index.setdefault(normalize_header(name), f)
    return tuple(index.items())


def field(kind: Kind, name: str) -> Field:
    """The catalog entry `name` of `kind` (a KeyError names a programming mistake); a lookup,
    since verification asks for every value of every answer."""
    return _by_name(kind)[name]


@functools.cache
def _by_name(kind: Kind) -> dict[str, Field]:
    return {f.name: f for f in reversed(COLUMNS[kind])}  # the first of a name wins, as in a scan


def enum_key(value: str) -> str:
    """Enum cells match ignoring case, spaces, `_` and `-`: `One time` is `one_time`."""
    return normalize_header(value)
