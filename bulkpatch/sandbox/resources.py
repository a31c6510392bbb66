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
PRODUCTS = [
    ("CFQ7TTC0LCHC", "0002", "Microsoft 365 Business Premium", 22.0),
    ("CFQ7TTC0LFLX", "0001", "Microsoft 365 E3", 36.0),
    ("CFQ7TTC0LH16", "0001", "Exchange Online (Plan 1)", 4.0),
    ("CFQ7TTC0RM8K", "0001", "Microsoft Teams Essentials", 4.0),
    ("CFQ7TTC0L3PB", "0001", "Power BI Pro", 14.0),
    ("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", 6.0),
]
# software (the one kind an order PATCH can cancel: "Cancel software purchases")
SOFTWARE = [
    ("DG7GMGF0FKZV", "0003", "SQL Server Enterprise - 2 Core License Pack - 3 year", 13748.0),
    ("DG7GMGF0DVT7", "000C", "Windows Server CAL - 1 Device CAL - 3 year", 102.0),
    ("DG7GMGF0DWT0", "0001", "Microsoft Identity Manager 2016 - 1 User CAL", 36.0),
]
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
    r = rng(customer_id, subscription_id)
    product_id, sku_id, name, _ = r.choice(PRODUCTS)
    legacy = is_legacy(customer_id, subscription_id) if legacy is None else legacy
    annual = r.random() < 0.6
    quantity = int(state.get("quantity") or r.randint(3, 60))
    age = r.randint(20, 300) if purchased_days_ago is None else purchased_days_ago
    created = now - timedelta(days=age)
    sub_path = f"/customers/{customer_id}/subscriptions/{subscription_id}"
    body: dict[str, Any] = {
        "id": subscription_id,
        "entitlementId": str(uuid.UUID(int=r.getrandbits(128), version=4)),
        "offerId": str(uuid.UUID(int=r.getrandbits(128), version=4)).upper()
        if legacy
        else f"{product_id}:{sku_id}:{product_id[:4]}{r.randint(10**7, 10**8 - 1)}",
        "offerName": name,
        "friendlyName": name,
        "quantity": quantity,
        "unitType": "Licenses",
        "hasPurchasableAddons": r.random() < 0.3,
        "creationDate": iso(created),
        "effectiveStartDate": iso(created),
        "commitmentEndDate": iso(created + timedelta(days=365 if annual or legacy else 30)),
        "status": "active",
        "autoRenewEnabled": True,
        "isTrial": False,
        "billingType": "license",
        "billingCycle": "annual" if annual else "monthly",
        "termDuration": "P1Y" if annual or legacy else "P1M",
        "renewalTermDuration": "P1Y" if annual or legacy else "P1M",
        "isMicrosoftProduct": True,
        "partnerId": "",
        "attentionNeeded": False,
        "actionTaken": False,
        "contractType": "subscription",
        "publisherName": "Microsoft Corporation",
        "orderId": f"{r.getrandbits(48):012x}",
        "productType": {
            "id": "OnlineServices" if legacy else "OnlineServicesNCE",
            "displayName": "OnlineServices" if legacy else "OnlineServicesNCE",
        },
        "suspensionReasons": [],
        "actions": ["Suspend", "Cancel"] if legacy else ["Cancel", "ChangeQuantity"],
        "attentionReason": None,
        "migratedFromSubscriptionId": None,
        "parentSubscriptionId": None,
        "productOrderId": None,
        "promotionId": None,
        "links": {
            "offer": link(f"/offers/{product_id}"),
            "product": link(f"/products/{product_id}"),
            "sku": link(f"/products/{product_id}/skus/{sku_id}"),
            "availability": link(f"/products/{product_id}/skus/{sku_id}/availabilities"),
            "entitlement": link(f"/customers/{customer_id}/entitlements/{subscription_id}"),
            "activationLinks": link(f"{sub_path}/activationlinks"),
            "pendingChanges": None,
            "parentSubscription": None,
            "next": None,
            "previous": None,
            "self": link(sub_path),
        },
        "attributes": {"objectType": "Subscription"},
    }
    if legacy:
        body["attributes"]["etag"] = new_etag(r)
    else:
        body["productType"]["subType"] = {"id": "Microsoft365", "displayName": "Microsoft 365"}
        if r.random() < 0.3:
            body["scheduledNextTermInstructions"] = {
                "product": {
                    "productId": product_id,
                    "skuId": sku_id,
                    "availabilityId": f"{product_id[:4]}{r.randint(10**7, 10**8 - 1)}",
                    "billingCycle": body["billingCycle"],
                    "termDuration": "P1Y",
                },
                "quantity": quantity,
                "customTermEndDate": None,
            }
        if r.random() < 0.1:
            body["lineItems"] = [_plan_line_item(r, subscription_id, quantity)]
        # Seats are refundable for 7 days after they were added ("Change the quantity of a
        # subscription"; refundableQuantity.details[].allowedUntilDateTime): one subscription
        # in five added seats within the week, the others' last window has closed.
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
        body["refundOptions"] = [{"type": "Full", "expiresAt": iso(until)}]
        body["refundableQuantity"] = {
            "totalQuantity": added if until > now else 0,
            "details": [{"quantity": added, "allowedUntilDateTime": iso(until)}],
        }
    body.update(state)
    return body


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
    r = rng(customer_id, order_id)
    software = bool(state.pop("software", False))
    customer_path = f"/customers/{customer_id}"
    order_path = f"{customer_path}/orders/{order_id}"
    created = now - timedelta(days=r.randint(3, 40))
    items, total = [], 0.0
    for number, given in enumerate(line_items):
        product_id, sku_id, name, price = r.choice(SOFTWARE if software else PRODUCTS)
        quantity = int(given.get("quantity") or r.randint(1, 40))
        total += price * quantity
        sub = given.get("subscriptionId") or str(uuid.UUID(int=r.getrandbits(128), version=4))
        items.append(
            {
                "lineItemNumber": given.get("lineItemNumber", number),
                "offerId": given.get("offerId") or f"{product_id}:{sku_id}:{product_id[:4]}0001",
                "subscriptionId": sub,
                "termDuration": "P1Y",
                "transactionType": "New",
                "friendlyName": name,
                "quantity": quantity,
                "partnerIdOnRecord": PARTNER_ID,
                "pricing": {
                    "listPrice": price,
                    "discountedPrice": price,
                    "price": price,
                    "proratedPrice": price,
                    "extendedPrice": round(price * quantity, 2),
                },
                "attestationAccepted": True,
                "customTermEndDate": None,
                "parentSubscriptionId": None,
                "promotionId": None,
                "provisioningContext": {},
                "purchaseCommitment": {
                    "amount": round(price * quantity * 12, 2),
                    "currency": "USD",
                    "grain": "Annual",
                }
                if r.random() < 0.2
                else None,
                "renewsTo": {"termDuration": "P1Y"},
                "links": {
                    "product": link(f"/products/{product_id}"),
                    "sku": link(f"/products/{product_id}/skus/{sku_id}"),
                    "availability": link(f"/products/{product_id}/skus/{sku_id}/availabilities"),
                    "subscription": link(f"{customer_path}/subscriptions/{sub}"),
                    "activationLinks": link(f"{customer_path}/subscriptions/{sub}/activationlinks"),
                    "provisioningStatus": link(f"{order_path}/provisioningstatus"),
                },
            }
        )
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
