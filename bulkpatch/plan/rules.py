"""Partner Center's business rules for a change, as the engine predicts them.

The plan stage asks them before anything is sent (a predicted refusal), with the error codes
Partner Center uses. They add what needs the state read: the bounds a cell can break offline
are the catalog's, and check applies them. The sandbox enforces its own reading of the same
documentation (`bulkpatch.sandbox.semantics`), so a test cannot pass because both share a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bulkpatch.catalog.fields import field
from bulkpatch.errors import ApiError

BAD_INPUT = 800002
SUBSCRIPTION_NOT_FOUND = 20003
ORDER_NOT_FOUND = 20000
NO_RELATIONSHIP = 20002  # 403: no commerce relationship with the customer
DELETED = 2011
SUSPENDED = 800091
NOT_REFUNDABLE = 800090
BILLING_CYCLE = 800097  # "Cannot update the billing cycle for this subscription"
WINDOW_PASSED = 900117  # "You have passed your {0}-day cancellation window"
STALE_ETAG = 2055
QUANTITY_RANGE = 2002
NOT_READY = 800082
ORDER_CANCEL_DAYS = 60
# "Cancel a commercial marketplace or new commerce subscription using Partner Center APIs"
# (https://learn.microsoft.com/partner-center/developer/cancel-an-azure-marketplace-subscription)
NCE_CANCEL_DAYS = 7
SETTABLE_STATUSES = {"active", "suspended", "deleted"}
# The bounds of a subscription's seats are the catalog's, and check refuses a total outside
# them offline: here they judge only what needs the state read (a seat change's total).
SEATS = field("subscriptions", "quantity")
DURATION = re.compile(r"^P(\d+)([MY])$")


def parse_time(text: str) -> datetime:
    """Partner Center's ISO date-times, `Z` included; one without an offset is UTC (a day
    such as `2026-12-31` too), so every moment compares with every other."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    if "status" in changed and new["status"] not in SETTABLE_STATUSES:
        raise ApiError(400, BAD_INPUT, f"The status cannot be set to {new['status']!r}.")
    if "billingCycle" in changed and not _cycle_fits(current, new["billingCycle"]):
        # "Change the billing cycle" (https://learn.microsoft.com/partner-center/developer/
        # change-the-billing-cycle): billing frequency changes through "Update a subscription
        # by ID" for new commerce and legacy subscriptions; non-annual terms are out of scope.
        raise ApiError(400, BILLING_CYCLE, "Cannot update the billing cycle for this subscription.")
    if "status" in changed and new["status"] == "deleted" and new_commerce(current):
        until = cancellation_deadline(current)
        if until is not None and now > until:
            raise ApiError(
                400,
                WINDOW_PASSED,
                f"You have passed your {NCE_CANCEL_DAYS}-day cancellation window "
                f"(it ended {until:%Y-%m-%d %H:%M} UTC). We are unable to cancel your purchase.",
            )
    if not SEATS.minimum <= new["quantity"] <= SEATS.maximum:  # a total a seat change made
        raise ApiError(
            400,
            QUANTITY_RANGE,
            f"The quantity must be between {SEATS.minimum} and {SEATS.maximum}.",
        )
    if new.get("scheduledNextTermInstructions") and not new.get("autoRenewEnabled"):
        raise ApiError(400, BAD_INPUT, "Scheduled next term instructions need auto-renew on.")
    left = refundable(current, now)
    if left is not None and current["quantity"] - new["quantity"] > left:
        raise ApiError(
            400,
            NOT_REFUNDABLE,
            f"The quantity cannot decrease by more than the refundable quantity ({left}).",
        )


def new_commerce(sub: dict[str, Any]) -> bool:
    """New commerce (NCE) rather than legacy: its product type says so."""
    return str((sub.get("productType") or {}).get("id", "")).endswith("NCE")


def _months(duration: Any) -> int:
    found = DURATION.match(str(duration or ""))
    return int(found[1]) * (12 if found[2] == "Y" else 1) if found else 0


def _cycle_fits(current: dict[str, Any], cycle: str) -> bool:
    needs = {"monthly": 1, "annual": 12, "triennial": 36}.get(cycle)
    return (
        needs is not None
        and current.get("status") == "active"
        and _months(current.get("termDuration")) >= needs
    )


def cancellation_deadline(sub: dict[str, Any]) -> datetime | None:
    """When a new commerce subscription stops being cancellable: `cancellationAllowedUntilDate`
    when it carries one, else seven days after its purchase or its last renewal."""
    if sub.get("cancellationAllowedUntilDate"):
        return parse_time(sub["cancellationAllowedUntilDate"])
    starts = [parse_time(sub[k]) for k in ("creationDate", "effectiveStartDate") if sub.get(k)]
    months = _months(sub.get("termDuration"))
    if months and sub.get("commitmentEndDate"):  # the current term began one term before its end
        starts.append(parse_time(sub["commitmentEndDate"]) - timedelta(days=months * 365 / 12))
    return max(starts) + timedelta(days=NCE_CANCEL_DAYS) if starts else None


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
                WINDOW_PASSED,
                f"You have passed your {ORDER_CANCEL_DAYS}-day cancellation window. "
                "We are unable to cancel your purchase.",
            )
    if new["billingCycle"] != current["billingCycle"] and not lines_sent:
        raise ApiError(400, BAD_INPUT, "A billing cycle change needs the order's lineItems.")
