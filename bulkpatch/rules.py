"""Partner Center's business rules for a change, in one place.

The plan stage asks them before anything is sent (a predicted refusal), and the sandbox
enforces them, so both give the same error codes Partner Center uses.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bulkpatch.errors import ApiError

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
SETTABLE_STATUSES = {"active", "suspended", "deleted"}


def parse_time(text: str) -> datetime:
    """Partner Center's ISO date-times, `Z` included."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def refundable(current: dict[str, Any], now: datetime) -> int | None:
    """Seats that may still be given back (None for legacy subscriptions, which have no limit)."""
    if "refundableQuantity" not in current:
        return None
    details = current["refundableQuantity"].get("details") or []
    return sum(d["quantity"] for d in details if parse_time(d["allowedUntilDateTime"]) > now)


def check_subscription(current: dict[str, Any], new: dict[str, Any], now: datetime) -> None:
    """Raise ApiError when Partner Center would refuse to turn `current` into `new`."""
    changed = {k for k in set(current) | set(new) if current.get(k) != new.get(k)}
    if current["status"] == "deleted":
        raise ApiError(400, DELETED, "The subscription is cancelled and cannot be changed.")
    if current["status"] == "suspended" and changed - {"status", "suspensionReasons"}:
        raise ApiError(400, SUSPENDED, "The subscription is suspended: only its status can change.")
    if "billingCycle" in changed:
        raise ApiError(
            400,
            BILLING_CYCLE_ON_SUBSCRIPTION,
            "The billing cycle of a subscription changes through its order.",
        )
    if "status" in changed and new["status"] not in SETTABLE_STATUSES:
        raise ApiError(400, BAD_INPUT, f"The status cannot be set to {new['status']!r}.")
    if not 1 <= new["quantity"] <= MAX_QUANTITY:
        raise ApiError(400, QUANTITY_RANGE, f"The quantity must be between 1 and {MAX_QUANTITY}.")
    if new.get("scheduledNextTermInstructions") and not new.get("autoRenewEnabled"):
        raise ApiError(400, BAD_INPUT, "Scheduled next term instructions need auto-renew on.")
    left = refundable(current, now)
    if left is not None and current["quantity"] - new["quantity"] > left:
        raise ApiError(
            400,
            NOT_REFUNDABLE,
            f"The quantity cannot decrease by more than the refundable quantity ({left}).",
        )


def check_order(
    current: dict[str, Any], new: dict[str, Any], now: datetime, lines_sent: bool
) -> None:
    """Raise ApiError when Partner Center would refuse to turn order `current` into `new`."""
    if new["status"] != current["status"]:
        if new["status"] != "cancelled":
            raise ApiError(400, BAD_INPUT, f"An order's status cannot be set to {new['status']!r}.")
        if now - parse_time(current["creationDate"]) > timedelta(days=ORDER_CANCEL_DAYS):
            raise ApiError(
                400,
                BAD_INPUT,
                f"Only orders younger than {ORDER_CANCEL_DAYS} days can be cancelled.",
            )
    if new["billingCycle"] != current["billingCycle"] and not lines_sent:
        raise ApiError(400, BAD_INPUT, "A billing cycle change needs the order's lineItems.")
