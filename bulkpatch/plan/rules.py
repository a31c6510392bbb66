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
NOT_PERPETUAL = 800002  # a perpetual software purchase is not cancelled through its subscription
# "New commerce experience cancellation policy"
# (https://learn.microsoft.com/partner-center/customers/new-commerce-cancellation-policy), its
# table by product: perpetual software, a full refund within 30 calendar days of purchase;
# software subscriptions, seven calendar days of purchase and no licence reduction after them;
# license-based (per user), seven calendar days of purchase or renewal (mid-term additions have
# their own refund windows; the cancellation window does not reopen until the renewal; a
# subscription made by a partial upgrade inherits its parent's); SaaS marketplace offers, 72
# hours of purchase. The table has no row for Azure, so nothing is predicted for it.
WINDOWS: dict[str, timedelta] = {
    "perpetual": timedelta(days=30),
    "software": timedelta(days=7),
    "license": timedelta(days=7),
    "saas": timedelta(hours=72),
}
KIND_WORDS = {
    "perpetual": "perpetual software purchase",
    "software": "software subscription",
    "license": "license-based subscription",
    "saas": "SaaS marketplace subscription",
}
SETTABLE_STATUSES = {"active", "suspended", "deleted"}
# "Subscription lifecycle states" (https://learn.microsoft.com/partner-center/customers/
# subscription-lifecycle): an expired or disabled subscription has ended and is not changed;
# "Reactivate a suspended subscription" (https://learn.microsoft.com/partner-center/developer/
# reactivate-a-suspended-a-subscription) reactivates a suspended one only.
ENDED = {"expired", "disabled"}
# The bounds of a subscription's seats are the catalog's, and check refuses a total outside
# them offline: here they judge only what needs the state read (a seat change's total).
SEATS = field("subscriptions", "quantity")
DURATION = re.compile(r"^P(\d+)([MY])$")
NEXT_TERM = "scheduledNextTermInstructions"
# "Schedule changes for a new commerce subscription using Partner Center APIs"
# (https://learn.microsoft.com/partner-center/developer/create-scheduled-changes): before the
# PATCH, get the subscription's transition eligibilities for the scheduled eligibility type
# ("Transition a new commerce subscription", https://learn.microsoft.com/partner-center/
# developer/transition-a-new-commerce-subscription: GET .../subscriptions/{id}/
# transitionEligibilities?eligibilityType=scheduled); a target not among them is refused. The
# engine reads them only for a change whose renewal SKU or term differs from what is scheduled,
# and keeps the answer on the subscription as read under this key (never sent: `merge` drops it).
ELIGIBLE = "_scheduledEligibilities"


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
    if current["status"] in ENDED and changed:
        raise ApiError(
            400,
            BAD_INPUT,
            f"The subscription is {current['status']}: it has ended and cannot be changed or "
            "reactivated (only a suspended one can); buy a new one in Partner Center.",
        )
    if current["status"] == "suspended" and changed - {"status", "suspensionReasons"}:
        raise ApiError(400, SUSPENDED, "The subscription is suspended: only its status can change.")
    if "status" in changed and new["status"] not in SETTABLE_STATUSES:
        raise ApiError(400, BAD_INPUT, f"The status cannot be set to {new['status']!r}.")
    if "billingCycle" in changed and not _cycle_fits(current, new["billingCycle"]):
        # "Change the billing cycle" (https://learn.microsoft.com/partner-center/developer/
        # change-the-billing-cycle): billing frequency changes through "Update a subscription
        # by ID" for new commerce and legacy subscriptions; non-annual terms are out of scope.
        raise ApiError(400, BILLING_CYCLE, "Cannot update the billing cycle for this subscription.")
    if "status" in changed and new["status"] == "deleted":
        _cancellable(current, now)
    if new["quantity"] < current["quantity"] and product_kind(current) == "software":
        until = cancellation_deadline(current)
        if until is not None and now > until:  # the policy table: no reduction after 7 days
            raise ApiError(
                400,
                NOT_REFUNDABLE,
                "A software subscription's licences cannot be reduced after its 7-day window, "
                f"which closed on {until:%Y-%m-%d} ({until:%H:%M} UTC).",
            )
    if not SEATS.minimum <= new["quantity"] <= SEATS.maximum:  # a total a seat change made
        raise ApiError(
            400,
            QUANTITY_RANGE,
            f"The quantity must be between {SEATS.minimum} and {SEATS.maximum}.",
        )
    if new.get(NEXT_TERM) and not new.get("autoRenewEnabled"):
        raise ApiError(400, BAD_INPUT, "Scheduled next term instructions need auto-renew on.")
    if new.get(NEXT_TERM) and new.get(NEXT_TERM) != current.get(NEXT_TERM):
        _eligible(current, new[NEXT_TERM])
        _custom_end(current, new[NEXT_TERM])
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


def product_kind(sub: dict[str, Any]) -> str:
    """What a subscription is, told from the fields Partner Center returns ("Subscription
    resources", https://learn.microsoft.com/partner-center/developer/subscription-resources:
    `productType` (an ItemType), `termDuration`, `isMicrosoftProduct`); the product types are
    the catalog's ("Get a list of products (by customer)", https://learn.microsoft.com/
    partner-center/developer/get-a-list-of-products-by-customer: OnlineServices holds
    marketplace, legacy and new commerce license-based items; Software, SoftwarePerpetual,
    SoftwareSubscriptions; Azure). `license`, `software` (a term), `perpetual` (no term),
    `saas` (a new commerce item not Microsoft's), `azure`, `legacy`, or `unknown` when these
    fields do not say: plan says so rather than guess."""
    ptype = str((sub.get("productType") or {}).get("id") or "")
    if ptype == "OnlineServices":
        return "legacy"
    if ptype == "Azure":
        return "azure"
    if ptype.startswith("Software"):
        return "software" if _months(sub.get("termDuration")) else "perpetual"
    if ptype == "OnlineServicesNCE":
        return "saas" if sub.get("isMicrosoftProduct") is False else "license"
    if ptype.casefold() == "saas":
        return "saas"
    return "unknown"


def untold(current: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What plan cannot predict: a cancellation or a reduction of a subscription whose kind
    the fields read do not tell (the cancellation window depends on it)."""
    cancels = new.get("status") == "deleted" != current.get("status")
    reduces = int(new.get("quantity") or 0) < int(current.get("quantity") or 0)
    if not (cancels or reduces) or product_kind(current) != "unknown":
        return []
    ptype = (current.get("productType") or {}).get("id")
    what = f"product type {ptype!r}" if ptype else "no product type"
    return [
        f"Partner Center returns {what} for this subscription, which does not say which "
        "cancellation window applies: not predicted, Partner Center decides"
    ]


def _cancellable(current: dict[str, Any], now: datetime) -> None:
    """Raise when the kind's cancellation window has closed (the policy table), naming the
    day it closed."""
    kind = product_kind(current)
    if kind == "perpetual":
        # "Cancel software purchases" (https://learn.microsoft.com/partner-center/developer/
        # cancel-software-purchases): software subscriptions, "not including perpetual
        # software", can also be cancelled through "Update a subscription by ID".
        raise ApiError(
            400,
            NOT_PERPETUAL,
            "Perpetual software is cancelled through its order, not its subscription.",
        )
    until = cancellation_deadline(current)
    if until is None or now <= until:
        return
    days = max(1, WINDOWS[kind].days or round(WINDOWS[kind].total_seconds() / 86400))
    raise ApiError(
        400,
        WINDOW_PASSED,
        f"You have passed your {days}-day cancellation window: this {KIND_WORDS[kind]}'s "
        f"window closed on {until:%Y-%m-%d} ({until:%H:%M} UTC). "
        "We are unable to cancel your purchase.",
    )


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
    """When a subscription stops being cancellable (None: no window applies or none can be
    told): `cancellationAllowedUntilDate` when it carries one (a partial upgrade's inherited
    window comes this way), else its kind's window from its purchase, or for license-based
    ones from its purchase or last renewal, whichever is later."""
    kind = product_kind(sub)
    if kind not in WINDOWS:
        return None
    if sub.get("cancellationAllowedUntilDate"):
        return parse_time(sub["cancellationAllowedUntilDate"])
    starts = [parse_time(sub[k]) for k in ("creationDate", "effectiveStartDate") if sub.get(k)]
    if kind != "license":
        starts = [parse_time(sub["creationDate"])] if sub.get("creationDate") else []
    months = _months(sub.get("termDuration"))
    if kind == "license" and months and sub.get("commitmentEndDate"):
        # the current term began one term before its end
        starts.append(parse_time(sub["commitmentEndDate"]) - timedelta(days=months * 365 / 12))
    return max(starts) + WINDOWS[kind] if starts else None


def check_order(
    current: dict[str, Any], new: dict[str, Any], now: datetime, lines_sent: bool
) -> None:
    """Raise ApiError when Partner Center would refuse to turn order `current` into `new`."""
    if new["status"] != current["status"]:
        if new["status"] != "cancelled":
            raise ApiError(400, BAD_INPUT, f"An order's status cannot be set to {new['status']!r}.")
        until = order_deadline(current, new)
        if until is not None and now > until:
            days = (until - parse_time(current["creationDate"])).days
            raise ApiError(
                400,
                WINDOW_PASSED,
                f"You have passed your {days}-day cancellation window: it closed on "
                f"{until:%Y-%m-%d} ({until:%H:%M} UTC). We are unable to cancel your purchase.",
            )
    if new["billingCycle"] != current["billingCycle"] and not lines_sent:
        raise ApiError(400, BAD_INPUT, "A billing cycle change needs the order's lineItems.")


def order_deadline(current: dict[str, Any], new: dict[str, Any]) -> datetime | None:
    """When the software an order cancels stops being cancellable: the lines sent are the ones
    cancelled (all of them when none are sent); a line with a term is a software subscription
    (7 days), one without is perpetual software (30 calendar days), per the policy table.
    None when the order holds no lines to tell from."""
    lines = new.get("lineItems") or current.get("lineItems") or []
    if not lines or not current.get("creationDate"):
        return None
    kinds = {"software" if _months(i.get("termDuration")) else "perpetual" for i in lines}
    return parse_time(current["creationDate"]) + min(WINDOWS[k] for k in kinds)


def needs_eligibility(values: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a change asks for a renewal SKU or term other than what is scheduled (or, with
    nothing scheduled, than the subscription's own): the one case that reads eligibilities."""
    scheduled = (current.get(NEXT_TERM) or {}).get("product") or {}
    own = dict(
        zip(("productId", "skuId"), str(current.get("offerId", "")).split(":"), strict=False)
    )
    own["termDuration"] = current.get("termDuration")
    for name in ("productId", "skuId", "termDuration"):
        asked = values.get(f"{NEXT_TERM}.product.{name}")
        if asked is not None and str(asked) != str(scheduled.get(name) or own.get(name) or ""):
            return True
    return False


def scheduled_target(current: dict[str, Any], instructions: dict[str, Any]) -> str:
    """`PRODUCT:SKU` the renewal instructions name (the subscription's own where they do not)."""
    product = instructions.get("product") or {}
    own = str(current.get("offerId", "")).split(":")
    product_id = product.get("productId") or own[0]
    sku_id = product.get("skuId") or (own[1] if len(own) > 1 else "")
    return f"{product_id}:{sku_id}".upper()


def _eligible(current: dict[str, Any], instructions: dict[str, Any]) -> None:
    """Refuse a renewal target the scheduled transition eligibilities do not list as eligible,
    naming those they do (nothing to judge when they were not read)."""
    items = current.get(ELIGIBLE)
    if items is None:
        return
    target = scheduled_target(current, instructions)
    eligible = [i for i in items if any(e.get("isEligible") for e in i.get("eligibilities") or [])]
    ids = [":".join(str(i.get("catalogItemId", "")).upper().split(":")[:2]) for i in eligible]
    if target in ids:
        return
    named = "; ".join(
        f"{i.get('title') or sku} ({sku})" for i, sku in zip(eligible, ids, strict=True)
    )
    raise ApiError(
        400,
        BAD_INPUT,
        f"{target} is not eligible for this subscription's renewal. "
        + (f"Eligible: {named}." if named else "No target is eligible for a scheduled change."),
    )


def _custom_end(current: dict[str, Any], instructions: dict[str, Any]) -> None:
    """A custom term end date inside the new term, on a calendar month's last day ("Get custom
    term end dates", https://learn.microsoft.com/partner-center/developer/custom-term-end-dates:
    end dates align with the end of the calendar month or co-term with an existing subscription
    of the customer; which ones do cannot be told from this subscription alone, see `untold`)."""
    end = instructions.get("customTermEndDate")
    if not end or not current.get("commitmentEndDate"):
        return
    day, renews = parse_time(str(end)), renewal_start(current)
    term = (instructions.get("product") or {}).get("termDuration") or current.get("termDuration")
    last = renews + timedelta(days=_months(term) * 366 / 12) if _months(term) else None
    if day <= renews or (last is not None and day > last):
        raise ApiError(
            400,
            BAD_INPUT,
            f"The custom term end date {day:%Y-%m-%d} is not inside the next term "
            f"(from {renews:%Y-%m-%d}" + (f" to {last:%Y-%m-%d})." if last else ")."),
        )


def month_end(day: datetime) -> bool:
    return (day + timedelta(days=1)).month != day.month


def renewal_start(current: dict[str, Any]) -> datetime:
    """When the next term starts: 00:00 UTC the day after the term's last day ("Schedule
    changes for a new commerce subscription": renewals begin at 12:00 AM UTC the day after the
    last day of the term, are processed in a queue and may take up to 24 hours)."""
    end = parse_time(current["commitmentEndDate"])
    return datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)


def renewal_notes(current: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The renewal's timing for a change that schedules renewal changes, and what plan cannot
    tell about them (a custom end date that is no month end may co-term another subscription)."""
    asked = new.get(NEXT_TERM)
    if not asked or asked == current.get(NEXT_TERM) or not current.get("commitmentEndDate"):
        return []
    notes = [
        f"renews on {renewal_start(current):%Y-%m-%d}, processed from 00:00 UTC, up to 24 hours"
    ]
    end = asked.get("customTermEndDate")
    if end and not month_end(parse_time(str(end))):
        notes.append(
            f"the custom term end date {str(end)[:10]} is no calendar month end: Partner Center "
            "accepts it only if another subscription of the customer ends that day (not predicted)"
        )
    return notes
