"""What a PATCH does to a sandbox resource: Partner Center's full-object semantics.

The body replaces the resource's settable fields, so a body without `autoRenewEnabled` turns
auto-renew off and one without `scheduledNextTermInstructions` deletes them (this is why
bulkpatch reads before it writes). Refusals come from `bulkpatch.rules`, as in the plan.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from bulkpatch import rules
from bulkpatch.errors import ApiError
from bulkpatch.sandbox import resources
from bulkpatch.sandbox.schema import problems

SETTABLE = ("quantity", "friendlyName", "status", "suspensionReasons", "billingCycle")


def patch_subscription(
    current: dict[str, Any], body: Any, if_match: str | None, now: datetime
) -> dict[str, Any]:
    """The subscription after `body` is applied, or ApiError."""
    _conforms("subscriptions", body)
    etag = current.get("attributes", {}).get("etag")
    sent = (body.get("attributes") or {}).get("etag")
    if (
        current["status"] != "deleted"
        and etag
        and ((sent and sent != etag) or (if_match and if_match != etag))
    ):
        raise ApiError(
            400,
            rules.STALE_ETAG,
            "The subscription has changed since it was read "
            "(etag mismatch). Read it again and retry.",
        )
    new = copy.deepcopy(current)
    new["autoRenewEnabled"] = bool(body.get("autoRenewEnabled", False))
    new["scheduledNextTermInstructions"] = body.get("scheduledNextTermInstructions")
    for key in SETTABLE:
        if body.get(key) is not None:
            new[key] = body[key]
    if new["scheduledNextTermInstructions"] is None:
        new.pop("scheduledNextTermInstructions")
    rules.check_subscription(current, new, now)
    decrease = current["quantity"] - new["quantity"]
    if decrease > 0 and "refundableQuantity" in current:
        _take_refund(new, decrease, now)
    if new != current and etag:
        new["attributes"]["etag"] = resources.new_etag()
    return new


def _take_refund(new: dict[str, Any], decrease: int, now: datetime) -> None:
    """A decrease uses up seats of the refund windows that are still open."""
    details = [
        d
        for d in new["refundableQuantity"]["details"]
        if rules.parse_time(d["allowedUntilDateTime"]) > now
    ]
    for detail in details:
        taken = min(detail["quantity"], decrease)
        detail["quantity"] -= taken
        decrease -= taken
    kept = [d for d in details if d["quantity"] > 0]
    new["refundableQuantity"] = {"totalQuantity": sum(d["quantity"] for d in kept), "details": kept}


def patch_order(current: dict[str, Any], body: Any, now: datetime) -> dict[str, Any]:
    """The order after `body` is applied: a cancellation, a billing cycle, line quantities."""
    _conforms("orders", body)
    new = copy.deepcopy(current)
    for key in ("status", "billingCycle"):
        if body.get(key) is not None:
            new[key] = body[key]
    rules.check_order(current, new, now, lines_sent=bool(body.get("lineItems")))
    by_number = {i["lineItemNumber"]: i for i in new["lineItems"]}
    for item in body.get("lineItems") or []:
        target = by_number.get(item.get("lineItemNumber"))
        if target is None:
            raise ApiError(
                400, rules.BAD_INPUT, f"The order has no line item {item.get('lineItemNumber')}."
            )
        if item.get("quantity") is not None:
            target["quantity"] = item["quantity"]
    return new


def _conforms(kind: str, body: Any) -> None:
    found = problems(kind, body)  # type: ignore[arg-type]
    if found:
        raise ApiError(400, rules.BAD_INPUT, "Invalid input: " + "; ".join(found[:5]))
