"""What a PATCH does to a resource, with Partner Center's semantics and refusals.

Full-object semantics: the body replaces the resource's settable fields, so a body without
`autoRenewEnabled` turns auto-renew off and one without `scheduledNextTermInstructions` deletes
them (this is why bulkpatch reads before it writes). Refusals carry Partner Center's codes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bulkpatch.sandbox import resources
from bulkpatch.sandbox.schema import problems

BAD_INPUT = 800002
SUBSCRIPTION_NOT_FOUND = 20003
ORDER_NOT_FOUND = 20000
CUSTOMER_NOT_FOUND = 20002  # the sandbox's own choice: the reference gives no code for it
DELETED = 2011
SUSPENDED = 800091
NOT_REFUNDABLE = 800090
BILLING_CYCLE_ON_SUBSCRIPTION = 2054
STALE_ETAG = 2055
QUANTITY_RANGE = 2002
CONFLICT = 800082
MAX_QUANTITY = 10_000
ORDER_CANCEL_DAYS = 60
SUBSCRIPTION_STATUSES_SETTABLE = {"active", "suspended", "deleted"}


@dataclass
class Refusal(Exception):
    """Partner Center said no: HTTP status and its error code and description."""

    status: int
    code: int
    description: str

    def body(self) -> dict[str, Any]:
        """The error body Partner Center sends."""
        return {
            "code": self.code,
            "description": self.description,
            "data": [],
            "source": "PartnerFD",
        }


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def patch_subscription(
    current: dict[str, Any], body: Any, if_match: str | None, now: datetime
) -> dict[str, Any]:
    """The subscription after `body` is applied, or a Refusal."""
    _conforms("subscriptions", body)
    if current["status"] == "deleted":
        raise Refusal(400, DELETED, "The subscription is cancelled and cannot be changed.")
    etag = current.get("attributes", {}).get("etag")
    sent = (body.get("attributes") or {}).get("etag")
    if etag and ((sent and sent != etag) or (if_match and if_match != etag)):
        raise Refusal(
            400,
            STALE_ETAG,
            "The subscription has changed since it was read (etag "
            "mismatch). Read it again and retry.",
        )
    new = copy.deepcopy(current)
    new["autoRenewEnabled"] = bool(body.get("autoRenewEnabled", False))
    new["scheduledNextTermInstructions"] = body.get("scheduledNextTermInstructions")
    for key in ("quantity", "friendlyName", "status", "suspensionReasons", "billingCycle"):
        if body.get(key) is not None:
            new[key] = body[key]
    if new["scheduledNextTermInstructions"] is None:
        new.pop("scheduledNextTermInstructions")
    _subscription_rules(current, new, now)
    if new != current and etag:
        new["attributes"]["etag"] = resources.new_etag()
    return new


def _subscription_rules(current: dict[str, Any], new: dict[str, Any], now: datetime) -> None:
    changed = {k for k in set(current) | set(new) if current.get(k) != new.get(k)}
    if current["status"] == "suspended" and changed - {"status", "suspensionReasons"}:
        raise Refusal(400, SUSPENDED, "The subscription is suspended: only its status can change.")
    if "billingCycle" in changed:
        raise Refusal(
            400,
            BILLING_CYCLE_ON_SUBSCRIPTION,
            "The billing cycle of a subscription changes through its order.",
        )
    if "status" in changed and new["status"] not in SUBSCRIPTION_STATUSES_SETTABLE:
        raise Refusal(400, BAD_INPUT, f"The status cannot be set to {new['status']!r}.")
    if not 1 <= new["quantity"] <= MAX_QUANTITY:
        raise Refusal(400, QUANTITY_RANGE, f"The quantity must be between 1 and {MAX_QUANTITY}.")
    if new.get("scheduledNextTermInstructions") and not new["autoRenewEnabled"]:
        raise Refusal(400, BAD_INPUT, "Scheduled next term instructions need auto-renew on.")
    decrease = current["quantity"] - new["quantity"]
    if decrease > 0 and "refundableQuantity" in current:
        _take_refund(new, decrease, now)


def _take_refund(new: dict[str, Any], decrease: int, now: datetime) -> None:
    """A new-commerce decrease must fit in refund windows that are still open."""
    details = [
        d
        for d in new["refundableQuantity"]["details"]
        if parse_time(d["allowedUntilDateTime"]) > now
    ]
    if decrease > sum(d["quantity"] for d in details):
        raise Refusal(
            400,
            NOT_REFUNDABLE,
            "The quantity cannot decrease by more than the refundable quantity.",
        )
    for detail in details:
        taken = min(detail["quantity"], decrease)
        detail["quantity"] -= taken
        decrease -= taken
    kept = [d for d in details if d["quantity"] > 0]
    new["refundableQuantity"] = {"totalQuantity": sum(d["quantity"] for d in kept), "details": kept}


def patch_order(current: dict[str, Any], body: Any, now: datetime) -> dict[str, Any]:
    """The order after `body` is applied: a cancellation or a billing-cycle change."""
    _conforms("orders", body)
    new = copy.deepcopy(current)
    status = body.get("status")
    if status is not None and status != current["status"]:
        if status != "cancelled":
            raise Refusal(400, BAD_INPUT, f"An order's status cannot be set to {status!r}.")
        if now - parse_time(current["creationDate"]) > timedelta(days=ORDER_CANCEL_DAYS):
            raise Refusal(
                400,
                BAD_INPUT,
                f"Only orders younger than {ORDER_CANCEL_DAYS} days can be cancelled.",
            )
        new["status"] = "cancelled"
    cycle = body.get("billingCycle")
    if cycle is not None and cycle != current["billingCycle"]:
        if not body.get("lineItems"):
            raise Refusal(400, BAD_INPUT, "A billing cycle change needs the order's lineItems.")
        new["billingCycle"] = cycle
    by_number = {i["lineItemNumber"]: i for i in new["lineItems"]}
    for item in body.get("lineItems") or []:
        target = by_number.get(item.get("lineItemNumber"))
        if target is None:
            raise Refusal(
                400, BAD_INPUT, f"The order has no line item {item.get('lineItemNumber')}."
            )
        if item.get("quantity") is not None:
            target["quantity"] = item["quantity"]
    return new


def _conforms(kind: str, body: Any) -> None:
    found = problems(kind, body)  # type: ignore[arg-type]
    if found:
        raise Refusal(400, BAD_INPUT, "Invalid input: " + "; ".join(found[:5]))
