"""Realistic Partner Center resources, made deterministically from their ids.

The same ids always give the same subscription or order, so a seeded sandbox is reproducible.
New-commerce subscriptions have `PRODUCT:SKU:AVAILABILITY` offer ids, refund windows and no
etag; legacy ones have GUID offer ids and an etag that changes with every write. Links are
relative to the versioned base, as Partner Center writes them (`/customers/...`, no `/v1`).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PARTNER_ID = "4f1d9b2e-7c3a-4e8b-9a6d-2b5c8e1f0a73"
# (product id, sku id, name, monthly list price in USD)
Product = tuple[str, str, str, float]
PRODUCTS: list[Product] = [
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Premium", 22.0),
    ("CFQ7TTC0LFLX", "0001", "Microsoft 365 E3", 36.0),
    ("CFQ7TTC0LH16", "0001", "Exchange Online (Plan 1)", 4.0),
    ("CFQ7TTC0RM8K", "0001", "Microsoft Teams Essentials", 4.0),
    ("CFQ7TTC0L3PB", "0001", "Power BI Pro", 14.0),
    ("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", 6.0),
]
# software (the one kind an order PATCH can cancel: "Cancel software purchases")
SOFTWARE: list[Product] = [
    ("DG7GMGF0FKZV", "0003", "SQL Server Enterprise - 2 Core License Pack - 3 year", 13748.0),
    ("DG7GMGF0DVT7", "000C", "Windows Server CAL - 1 Device CAL - 3 year", 102.0),
    ("DG7GMGF0DWT0", "0001", "Microsoft Identity Manager 2016 - 1 User CAL", 36.0),
]
# One product of each row of "New commerce experience cancellation policy"
# (https://learn.microsoft.com/partner-center/customers/new-commerce-cancellation-policy) that
# is not license-based, and Azure (no row), for a sheet naming them: (product id, sku id,
# name, kind). A sheet's `Product` cell naming one seeds a subscription of that kind.
KIND_PRODUCTS: list[tuple[str, str, str, str]] = [
    ("DG7GMGF0D65N", "0004", "Windows Server 2022 Standard - 16 Core License Pack", "perpetual"),
    ("DG7GMGF0PWRX", "0002", "SQL Server 2022 Standard - 2 Core - 1 Year", "software"),
    ("contoso.backup-saas", "monthly", "Contoso Cloud Backup (SaaS)", "saas"),
    ("DZH318Z0BPS6", "0001", "Azure plan", "azure"),
]
# The SKUs a license-based subscription may renew into (its own, at another term or billing, and
# the upgrades), as the scheduled transition eligibilities list them ("Transition a new commerce
# subscription", https://learn.microsoft.com/partner-center/developer/
# transition-a-new-commerce-subscription; "Transition resources", https://learn.microsoft.com/
# partner-center/developer/transition-resources). Keyed by PRODUCT:SKU.
RENEWS_INTO: dict[str, tuple[str, ...]] = {
    "CFQ7TTC0LH18:0001": ("CFQ7TTC0LCHC:0002", "CFQ7TTC0LFLX:0001"),  # Basic: Premium, E3
    # Exchange (Plan 1): Plan 2, Basic, Premium
    "CFQ7TTC0LH16:0001": ("CFQ7TTC0LH16:0002", "CFQ7TTC0LH18:0001", "CFQ7TTC0LCHC:0002"),
    "CFQ7TTC0RM8K:0001": ("CFQ7TTC0LH18:0001",),  # Teams Essentials: Basic
    "CFQ7TTC0LCHC:0002": ("CFQ7TTC0LFLX:0001",),  # Business Premium: E3
}
# Sold only as a renewal target here (not drawn for a seeded subscription).
RENEWAL_ONLY: list[Product] = [("CFQ7TTC0LH16", "0002", "Exchange Online (Plan 2)", 8.0)]
REFUND_DAYS = 7  # seats added can be given back for 7 days (168 hours)


def rng(*parts: str) -> random.Random:
    """A random source fixed by `parts`: the same ids always draw the same values."""
    return random.Random(hashlib.sha256(":".join(parts).encode()).digest())


def iso(moment: datetime) -> str:
    """Partner Center's date-time spelling."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link(path: str) -> dict[str, Any]:
    return {"uri": path, "method": "GET", "headers": []}


def new_etag(r: random.Random | None = None) -> str:
    """A legacy etag: opaque text that changes with every write."""
    bits = (r or random).getrandbits(64)
    return f"eyJpZCI6{bits:016x}"


def is_legacy(customer_id: str, subscription_id: str) -> bool:
    """About one subscription in four is legacy (etag, GUID offer id, no refund window)."""
    return rng(customer_id, subscription_id, "legacy").random() < 0.25


# Fields every subscription carries with the same values (in the order GET writes them) ...
FIXED = {
    "isMicrosoftProduct": True,
    "partnerId": "",
    "attentionNeeded": False,
    "actionTaken": False,
    "contractType": "subscription",
    "publisherName": "Microsoft Corporation",
}
# ... and the ones it carries empty.
UNSET = {
    "attentionReason": None,
    "migratedFromSubscriptionId": None,
    "parentSubscriptionId": None,
    "productOrderId": None,
    "promotionId": None,
}


def subscription(
    customer_id: str,
    subscription_id: str,
    now: datetime,
    *,
    legacy: bool | None = None,
    purchased_days_ago: float | None = None,
    refundable: int | None = None,
    **state: Any,
) -> dict[str, Any]:
    """A full subscription as GET returns it; `state` overrides any top-level field.

    `purchased_days_ago` places its purchase (and so its cancellation window), `refundable`
    opens a refund window for that many seats; both are drawn from the ids otherwise: most
    subscriptions are past both windows, as in production, some added seats days ago.
    """
    # The helpers draw from `r` in the order they are called: keep that order, so the same
    # ids keep giving the same subscription.
    r = rng(customer_id, subscription_id)
    product = r.choice(PRODUCTS)
    legacy = is_legacy(customer_id, subscription_id) if legacy is None else legacy
    annual = r.random() < 0.6
    quantity = int(state.get("quantity") or r.randint(3, 60))
    age = r.randint(20, 300) if purchased_days_ago is None else purchased_days_ago
    created = now - timedelta(days=age)
    _, _, name, _ = product
    body: dict[str, Any] = {
        "id": subscription_id,
        "entitlementId": _guid(r),
        "offerId": _offer_id(r, product, legacy),
        "offerName": name,
        "friendlyName": name,
        "quantity": quantity,
        "unitType": "Licenses",
        "hasPurchasableAddons": r.random() < 0.3,
        **_term(created, annual, legacy),
        **FIXED,
        "orderId": f"{r.getrandbits(48):012x}",
        "productType": _product_type(legacy),
        "suspensionReasons": [],
        "actions": ["Suspend", "Cancel"] if legacy else ["Cancel", "ChangeQuantity"],
        **UNSET,
        "links": _subscription_links(customer_id, subscription_id, product),
        "attributes": {"objectType": "Subscription"},
    }
    if legacy:
        body["attributes"]["etag"] = new_etag(r)
    else:
        _add_new_commerce(body, r, product, now, age, refundable)
    body.update(state)
    return body


def as_kind(body: dict[str, Any], kind: str, product: tuple[str, str, str, str]) -> None:
    """Make `body` a subscription of `kind` (`perpetual`, `software`, `saas`, `azure`) as
    "Subscription resources" (https://learn.microsoft.com/partner-center/developer/
    subscription-resources) holds one: its product type and term, whose product it is; only
    license-based new commerce subscriptions carry refund windows and renewal instructions."""
    product_id, sku_id, name, _ = product
    for key in ("refundableQuantity", "refundOptions", "scheduledNextTermInstructions"):
        body.pop(key, None)
    body.update(offerName=name, friendlyName=name, offerId=f"{product_id}:{sku_id}")
    if kind in ("perpetual", "software"):
        body["productType"] = {"id": "Software", "displayName": "Software"}
        body["actions"] = ["Cancel"] if kind == "software" else []
    if kind == "perpetual":  # bought once: no term, no renewal
        body.update(autoRenewEnabled=False, billingCycle="one_time")
        for key in ("termDuration", "renewalTermDuration", "commitmentEndDate"):
            body.pop(key, None)
    if kind == "software":
        body.update(billingCycle="annual", termDuration="P1Y", renewalTermDuration="P1Y")
    if kind == "saas":
        body.update(isMicrosoftProduct=False, publisherName="Contoso Apps", unitType="Users")
    if kind == "azure":
        body["productType"] = {"id": "Azure", "displayName": "Azure"}
        body.update(billingType="usage", billingCycle="monthly", unitType="Usage-based")
    body["attributes"].pop("etag", None)


def _guid(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def _availability_id(r: random.Random, product_id: str) -> str:
    return f"{product_id[:4]}{r.randint(10**7, 10**8 - 1)}"


def _offer_id(r: random.Random, product: Product, legacy: bool) -> str:
    """A legacy offer id is a GUID, a new commerce one PRODUCT:SKU:AVAILABILITY."""
    product_id, sku_id, _, _ = product
    if legacy:
        return _guid(r).upper()
    return f"{product_id}:{sku_id}:{_availability_id(r, product_id)}"


def _term(created: datetime, annual: bool, legacy: bool) -> dict[str, Any]:
    """Dates, state and billing: legacy subscriptions have yearly terms, new commerce ones
    a yearly or monthly term billed the same way."""
    term = "P1Y" if annual or legacy else "P1M"
    return {
        "creationDate": iso(created),
        "effectiveStartDate": iso(created),
        "commitmentEndDate": iso(created + timedelta(days=365 if annual or legacy else 30)),
        "status": "active",
        "autoRenewEnabled": True,
        "isTrial": False,
        "billingType": "license",
        "billingCycle": "annual" if annual else "monthly",
        "termDuration": term,
        "renewalTermDuration": term,
    }


def _product_type(legacy: bool) -> dict[str, Any]:
    kind = "OnlineServices" if legacy else "OnlineServicesNCE"
    return {"id": kind, "displayName": kind}


def _catalog_links(product_id: str, sku_id: str) -> dict[str, Any]:
    """The product, its SKU and the SKU's availabilities, as subscriptions and order lines
    link them."""
    return {
        "product": link(f"/products/{product_id}"),
        "sku": link(f"/products/{product_id}/skus/{sku_id}"),
        "availability": link(f"/products/{product_id}/skus/{sku_id}/availabilities"),
    }


def _subscription_links(customer_id: str, subscription_id: str, product: Product) -> dict:
    product_id, sku_id, _, _ = product
    sub_path = f"/customers/{customer_id}/subscriptions/{subscription_id}"
    return {
        "offer": link(f"/offers/{product_id}"),
        **_catalog_links(product_id, sku_id),
        "entitlement": link(f"/customers/{customer_id}/entitlements/{subscription_id}"),
        "activationLinks": link(f"{sub_path}/activationlinks"),
        "pendingChanges": None,
        "parentSubscription": None,
        "next": None,
        "previous": None,
        "self": link(sub_path),
    }


def _add_new_commerce(
    body: dict[str, Any],
    r: random.Random,
    product: Product,
    now: datetime,
    age: float,
    refundable: int | None,
) -> None:
    """What only new commerce subscriptions carry: a sub-type, sometimes instructions for the
    next term or plan line items, and their refund windows."""
    product_id, sku_id, _, _ = product
    quantity = body["quantity"]
    body["productType"]["subType"] = {"id": "Microsoft365", "displayName": "Microsoft 365"}
    if r.random() < 0.3:
        body["scheduledNextTermInstructions"] = {
            "product": {
                "productId": product_id,
                "skuId": sku_id,
                "availabilityId": _availability_id(r, product_id),
                "billingCycle": body["billingCycle"],
                "termDuration": "P1Y",
            },
            "quantity": quantity,
            "customTermEndDate": None,
        }
    if r.random() < 0.1:
        body["lineItems"] = [_plan_line_item(r, body["id"], quantity)]
    body.update(_refund_window(r, quantity, now, age, refundable))


def _refund_window(
    r: random.Random, quantity: int, now: datetime, age: float, refundable: int | None
) -> dict[str, Any]:
    """Seats are refundable for 7 days after they were added ("Change the quantity of a
    subscription"; refundableQuantity.details[].allowedUntilDateTime): one subscription in
    five added seats within the week, the others' last window has closed."""
    recent = r.random() < 0.2
    added = min(quantity, r.randint(1, 5))
    if refundable is not None:
        added, opened = refundable, now - timedelta(days=1)
    elif recent:
        opened = now - timedelta(days=r.randint(0, REFUND_DAYS - 2), hours=r.randint(0, 20))
    else:
        last = max(REFUND_DAYS + 1, int(age))
        opened = now - timedelta(days=r.randint(REFUND_DAYS + 1, last))
    until = opened + timedelta(days=REFUND_DAYS)
    return {
        "refundOptions": [{"type": "Full", "expiresAt": iso(until)}],
        "refundableQuantity": {
            "totalQuantity": added if until > now else 0,
            "details": [{"quantity": added, "allowedUntilDateTime": iso(until)}],
        },
    }


def _plan_line_item(r: random.Random, subscription_id: str, quantity: int) -> dict[str, Any]:
    """A savings-plan style line item, the one kind of subscription that carries them."""
    return {
        "id": f"{r.getrandbits(48):012x}",
        "friendlyName": "Commitment",
        "quantity": quantity,
        "autoRenewEnabled": True,
        "status": "active",
        "purchaseCommitment": {
            "amount": float(100 * quantity),
            "currency": "USD",
            "grain": "Hourly",
        },
        "scope": {
            "type": "Single",
            "subscriptionId": subscription_id,
            "resourceGroupId": None,
            "managementGroupId": None,
            "entitlementId": None,
        },
    }


def order(
    customer_id: str,
    order_id: str,
    now: datetime,
    line_items: list[dict[str, Any]],
    **state: Any,
) -> dict[str, Any]:
    """A full order with `line_items` (each: lineItemNumber, subscriptionId, quantity, ...);
    `software=True` sells software (DG7... products) instead of online services."""
    # As for subscriptions: the draws from `r` keep their order.
    r = rng(customer_id, order_id)
    software = bool(state.pop("software", False))
    order_path = f"/customers/{customer_id}/orders/{order_id}"
    age = r.randint(3, 40)
    # software is sold to be cancelled (the one kind an order PATCH cancels): inside its 30 days
    created = now - timedelta(days=min(age, 20) if software else age)
    catalog = SOFTWARE if software else PRODUCTS
    items = [
        _order_line(r, number, given, catalog, customer_id, order_path)
        for number, given in enumerate(line_items)
    ]
    if software:  # the SOFTWARE products are perpetual licences: bought once, no term
        for item in items:
            item["termDuration"] = item["renewsTo"] = None
    total = sum((i["pricing"]["price"] * i["quantity"] for i in items), 0.0)
    body: dict[str, Any] = {
        "id": order_id,
        "alternateId": f"{r.getrandbits(48):012x}",
        "referenceCustomerId": customer_id,
        "billingCycle": "monthly",
        "currencyCode": "USD",
        "currencySymbol": "$",
        "lineItems": items,
        "creationDate": iso(created),
        "status": "completed",
        "totalPrice": round(total, 2),
        "transactionType": "UserPurchase",
        "client": {"name": "bulkpatch sandbox", "deviceFamily": "Web", "marketplaceCountry": "US"},
        "links": {
            "self": link(order_path),
            "provisioningStatus": link(f"{order_path}/provisioningstatus"),
            "patchOperation": {"uri": order_path, "method": "PATCH", "headers": []},
        },
        "attributes": {"etag": new_etag(r), "objectType": "Order"},
    }
    body.update(state)
    return body


def _order_line(
    r: random.Random,
    number: int,
    given: dict[str, Any],
    catalog: list[Product],
    customer_id: str,
    order_path: str,
) -> dict[str, Any]:
    """One line of an order: what `given` names, the rest drawn from `catalog`."""
    product_id, sku_id, name, price = r.choice(catalog)
    quantity = int(given.get("quantity") or r.randint(1, 40))
    sub = given.get("subscriptionId") or _guid(r)
    sub_path = f"/customers/{customer_id}/subscriptions/{sub}"
    return {
        "lineItemNumber": given.get("lineItemNumber", number),
        "offerId": given.get("offerId") or f"{product_id}:{sku_id}:{product_id[:4]}0001",
        "subscriptionId": sub,
        "termDuration": "P1Y",
        "transactionType": "New",
        "friendlyName": name,
        "quantity": quantity,
        "partnerIdOnRecord": PARTNER_ID,
        "pricing": _pricing(price, quantity),
        "attestationAccepted": True,
        "customTermEndDate": None,
        "parentSubscriptionId": None,
        "promotionId": None,
        "provisioningContext": {},
        "purchaseCommitment": _purchase_commitment(price, quantity) if r.random() < 0.2 else None,
        "renewsTo": {"termDuration": "P1Y"},
        "links": {
            **_catalog_links(product_id, sku_id),
            "subscription": link(sub_path),
            "activationLinks": link(f"{sub_path}/activationlinks"),
            "provisioningStatus": link(f"{order_path}/provisioningstatus"),
        },
    }


def _pricing(price: float, quantity: int) -> dict[str, Any]:
    """List price per unit, no discount: every price is the list price."""
    return {
        "listPrice": price,
        "discountedPrice": price,
        "price": price,
        "proratedPrice": price,
        "extendedPrice": round(price * quantity, 2),
    }


def _purchase_commitment(price: float, quantity: int) -> dict[str, Any]:
    return {"amount": round(price * quantity * 12, 2), "currency": "USD", "grain": "Annual"}


def scheduled_eligibilities(sub: dict[str, Any]) -> list[dict[str, Any]]:
    """The subscription's transition eligibilities for the scheduled type, as the GET returns
    its items: its own SKU and those it may renew into eligible, the other products not."""
    own = ":".join(str(sub.get("offerId", "")).upper().split(":")[:2])
    into = {own, *RENEWS_INTO.get(own, ())}
    return [
        {
            "catalogItemId": f"{pid}:{sku}:{pid[:4]}0001",
            "title": name,
            "description": name,
            "quantity": sub.get("quantity", 0),
            "eligibilities": [
                {"isEligible": f"{pid}:{sku}" in into, "transitionType": "scheduled"}
            ],
        }
        for pid, sku, name, _ in [*PRODUCTS, *RENEWAL_ONLY]
    ]
