"""Realistic Partner Center resources, made deterministically from their ids.

The same ids always give the same subscription or order, so a seeded sandbox is reproducible.
New-commerce subscriptions have `PRODUCT:SKU:AVAILABILITY` offer ids, refund windows and no
etag; legacy ones have GUID offer ids and an etag that changes with every write.
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
    customer_id: str, subscription_id: str, now: datetime, **state: Any
) -> dict[str, Any]:
    """A full subscription as GET returns it; `state` overrides any top-level field."""
    r = rng(customer_id, subscription_id)
    product_id, sku_id, name, _ = r.choice(PRODUCTS)
    legacy = is_legacy(customer_id, subscription_id)
    annual = r.random() < 0.6
    quantity = int(state.get("quantity") or r.randint(3, 60))
    created = now - timedelta(days=r.randint(20, 300))
    sub_path = f"/v1/customers/{customer_id}/subscriptions/{subscription_id}"
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
            "offer": link(f"/v1/offers/{product_id}"),
            "product": link(f"/v1/products/{product_id}"),
            "sku": link(f"/v1/products/{product_id}/skus/{sku_id}"),
            "availability": link(f"/v1/products/{product_id}/skus/{sku_id}/availabilities"),
            "entitlement": link(f"/v1/customers/{customer_id}/entitlements/{subscription_id}"),
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
        refundable = state.pop("refundable", quantity)
        until = iso(now + timedelta(days=5))
        body["refundOptions"] = [{"type": "Full", "expiresAt": until}]
        body["refundableQuantity"] = {
            "totalQuantity": refundable,
            "details": [{"quantity": refundable, "allowedUntilDateTime": until}],
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
    """A full order with `line_items` (each: lineItemNumber, subscriptionId, quantity, ...)."""
    r = rng(customer_id, order_id)
    customer_path = f"/v1/customers/{customer_id}"
    order_path = f"{customer_path}/orders/{order_id}"
    created = now - timedelta(days=r.randint(3, 40))
    items, total = [], 0.0
    for number, given in enumerate(line_items):
        product_id, sku_id, name, price = r.choice(PRODUCTS)
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
                    "product": link(f"/v1/products/{product_id}"),
                    "sku": link(f"/v1/products/{product_id}/skus/{sku_id}"),
                    "availability": link(f"/v1/products/{product_id}/skus/{sku_id}/availabilities"),
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
