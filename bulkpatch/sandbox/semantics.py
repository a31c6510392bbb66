"""What a PATCH does to a sandbox resource: Partner Center's full-object semantics and its rules.

The body replaces the resource's settable fields, so a body without `autoRenewEnabled` turns
auto-renew off and one without `scheduledNextTermInstructions` deletes them (this is why
bulkpatch reads before it writes).

The rules here are the sandbox's own reading of Microsoft's documentation, written
independently of `bulkpatch.rules` (the engine's predictions): a test cannot pass because the
engine and the sandbox share a guess. Each rule names the page it comes from.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bulkpatch.errors import ApiError
from bulkpatch.sandbox import resources
from bulkpatch.sandbox.schema import problems

# Codes and HTTP statuses from "Partner Center REST error codes"
# (https://learn.microsoft.com/partner-center/developer/error-codes).
BAD_INPUT = 800002
NO_RELATIONSHIP = 20002  # 403: the partner has no commerce relationship with the customer
SUBSCRIPTION_NOT_FOUND = 20003
ORDER_NOT_FOUND = 20000
DELETED = 2011
STALE_ETAG = 2055
QUANTITY_RANGE = 2002
NOT_READY = 800082  # 400: "Subscription is not ready to be updated. Please try again later"
NOT_SOFTWARE = 800019  # 403: only software purchases can be cancelled through an order
USE_SUBSCRIPTION = 800063  # 400: this order cannot be cancelled, PATCH its subscriptions
NOT_REFUNDABLE = 800090  # 400: subscription quantity cannot be decreased
SUSPENDED = 800091  # 400: cannot update a subscription with suspended status
BILLING_CYCLE = 800097  # 400: cannot update the billing cycle for this subscription
WINDOW_PASSED = 900117  # 400: you have passed your {0}-day cancellation window
MAX_QUANTITY = 10_000
# "New commerce experience cancellation policy" (https://learn.microsoft.com/partner-center/
# customers/new-commerce-cancellation-policy), the self-serve window of each product in its
# table: perpetual software 30 calendar days of purchase; software subscriptions seven calendar
# days of purchase, and no licence reduction after them; license-based (per user) seven calendar
# days of purchase, and of each renewal (the window does not reopen before it), a partial
# upgrade's subscription keeping its parent's; SaaS marketplace offers 72 hours of purchase.
# "Cancel a commercial marketplace or new commerce subscription" (https://learn.microsoft.com/
# partner-center/developer/cancel-an-azure-marketplace-subscription) points to that table.
POLICY_WINDOW = {
    "perpetual": timedelta(days=30),
    "software": timedelta(days=7),
    "license": timedelta(days=7),
    "saas": timedelta(hours=72),
}
SETTABLE = ("quantity", "friendlyName", "status", "suspensionReasons", "billingCycle")
STATUSES = {"active", "suspended", "deleted"}
TERM = re.compile(r"^P(\d+)([MY])$")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def is_new_commerce(sub: dict[str, Any]) -> bool:
    return str((sub.get("productType") or {}).get("id", "")).endswith("NCE")


def patch_subscription(
    current: dict[str, Any],
    body: Any,
    if_match: str | None,
    now: datetime,
    *,
    auto_renew_fixed: bool = False,
    co_term: Callable[[], list[str]] = list,
) -> dict[str, Any]:
    """The subscription after `body` is applied, or ApiError.

    `co_term`: the commitment end dates of the customer's other subscriptions (the days a
    custom term end date may co-term with).

    `auto_renew_fixed`: this legacy subscription's auto-renew flag cannot be changed; Partner
    Center answers 200 and keeps it (Partner-Center-PowerShell issue 115,
    https://github.com/microsoft/Partner-Center-PowerShell/issues/115).
    """
    _conforms("subscriptions", body)
    _check_etag(current, body, if_match)
    new = _replace_settable(current, body, auto_renew_fixed)
    _refuse_subscription(current, new, now)
    if new.get("scheduledNextTermInstructions") != current.get("scheduledNextTermInstructions"):
        _refuse_schedule(current, new.get("scheduledNextTermInstructions") or {}, co_term)
    _drop_scheduled_on_immediate_change(current, new)
    _track_refund_windows(current, new, now)
    if new != current and current.get("attributes", {}).get("etag"):
        new["attributes"]["etag"] = resources.new_etag()
    return new


def _refuse_schedule(
    current: dict[str, Any], scheduled: dict[str, Any], co_term: Callable[[], list[str]]
) -> None:
    """ "Schedule changes for a new commerce subscription" (https://learn.microsoft.com/
    partner-center/developer/create-scheduled-changes): the target must be among the
    subscription's scheduled transition eligibilities. "Get custom term end dates"
    (https://learn.microsoft.com/partner-center/developer/custom-term-end-dates): an end date
    aligns with the end of a calendar month or co-terms with an existing subscription."""
    product = scheduled.get("product") or {}
    offer = [*str(current.get("offerId", "")).upper().split(":"), ""]
    wanted = f"{product.get('productId') or offer[0]}:{product.get('skuId') or offer[1]}".upper()
    listed = resources.scheduled_eligibilities(current)
    ok = [i for i in listed if i["eligibilities"][0]["isEligible"]]
    if product and not any(i["catalogItemId"].upper().startswith(wanted + ":") for i in ok):
        raise ApiError(
            400, BAD_INPUT, f"The scheduled product {wanted} is not eligible for this subscription."
        )
    end = scheduled.get("customTermEndDate")
    if end:
        day = when(str(end)).date()
        if (day + timedelta(days=1)).day != 1 and str(end)[:10] not in {d[:10] for d in co_term()}:
            raise ApiError(
                400,
                BAD_INPUT,
                f"The custom term end date {day} neither ends a calendar month nor co-terms "
                "with another subscription of the customer.",
            )


def _check_etag(current: dict[str, Any], body: dict[str, Any], if_match: str | None) -> None:
    """A legacy subscription changed since it was read (its etag, sent in the body or as
    If-Match, is not the current one) is refused."""
    etag = current.get("attributes", {}).get("etag")
    sent = (body.get("attributes") or {}).get("etag")
    if (
        current["status"] != "deleted"
        and etag
        and ((sent and sent != etag) or (if_match and if_match != etag))
    ):
        raise ApiError(
            400,
            STALE_ETAG,
            "The subscription has changed since it was read "
            "(etag mismatch). Read it again and retry.",
        )


def _replace_settable(
    current: dict[str, Any], body: dict[str, Any], auto_renew_fixed: bool
) -> dict[str, Any]:
    """Full-object PATCH: auto-renew and the next term's instructions are what the body says
    (absent is off and deleted), the other settable fields change only when sent."""
    new = copy.deepcopy(current)
    new["autoRenewEnabled"] = bool(body.get("autoRenewEnabled", False))
    if auto_renew_fixed:
        new["autoRenewEnabled"] = current["autoRenewEnabled"]
    new["scheduledNextTermInstructions"] = body.get("scheduledNextTermInstructions")
    for key in SETTABLE:
        if body.get(key) is not None:
            new[key] = body[key]
    if new["scheduledNextTermInstructions"] is None:
        new.pop("scheduledNextTermInstructions")
    return new


def _drop_scheduled_on_immediate_change(current: dict[str, Any], new: dict[str, Any]) -> None:
    """ "Create scheduled changes" (https://learn.microsoft.com/partner-center/developer/
    create-scheduled-changes): a mid-term (immediate) change before the renewal date deletes
    every change that was scheduled for the renewal."""
    immediate = any(new.get(k) != current.get(k) for k in ("quantity", "billingCycle"))
    scheduled = current.get("scheduledNextTermInstructions")
    if (
        is_new_commerce(current)
        and immediate
        and scheduled
        and new.get("scheduledNextTermInstructions") == scheduled
    ):
        new.pop("scheduledNextTermInstructions")


def _track_refund_windows(current: dict[str, Any], new: dict[str, Any], now: datetime) -> None:
    """A decrease uses up refundable seats; an increase opens a refund window for the seats
    added (refundableQuantity.details[] of the subscription model in
    reference/update-subscription: one window per addition, for 7 days)."""
    if "refundableQuantity" not in current:
        return
    decrease = current["quantity"] - new["quantity"]
    if decrease > 0:
        _take_refund(new, decrease, now)
    if decrease < 0:
        opened = {
            "quantity": -decrease,
            "allowedUntilDateTime": resources.iso(now + timedelta(days=resources.REFUND_DAYS)),
        }
        details = [*new["refundableQuantity"].get("details", []), opened]
        left = refundable({"refundableQuantity": {"details": details}}, now) or 0
        new["refundableQuantity"] = {"totalQuantity": left, "details": details}


# "Subscription lifecycle states" (https://learn.microsoft.com/partner-center/customers/
# subscription-lifecycle): an expired or disabled subscription has ended; only a suspended one
# is reactivated ("Reactivate a suspended subscription").
ENDED = {"expired", "disabled"}


def _refuse_subscription(current: dict[str, Any], new: dict[str, Any], now: datetime) -> None:
    changed = {k for k in set(current) | set(new) if current.get(k) != new.get(k)}
    if current["status"] == "deleted":
        raise ApiError(400, DELETED, "The subscription is cancelled and cannot be changed.")
    if current["status"] in ENDED and changed:
        raise ApiError(400, BAD_INPUT, f"The subscription is {current['status']}: it has ended.")
    if current["status"] == "suspended" and changed - {"status", "suspensionReasons"}:
        raise ApiError(400, SUSPENDED, "Cannot update a subscription with suspended status.")
    if "status" in changed and new["status"] not in STATUSES:
        raise ApiError(400, BAD_INPUT, f"The status cannot be set to {new['status']!r}.")
    if not 1 <= new["quantity"] <= MAX_QUANTITY:
        raise ApiError(400, QUANTITY_RANGE, f"The quantity must be between 1 and {MAX_QUANTITY}.")
    if new.get("scheduledNextTermInstructions") and not new.get("autoRenewEnabled"):
        raise ApiError(400, BAD_INPUT, "Scheduled next term instructions need auto-renew on.")
    if "billingCycle" in changed:
        _billing_cycle_allowed(current, new["billingCycle"])
    if "status" in changed and new["status"] == "deleted":
        _may_cancel(current, now)
    if new["quantity"] < current["quantity"] and product_of(current) == "software":
        closes = cancel_until(current)
        if closes is not None and now > closes:
            raise ApiError(
                400,
                NOT_REFUNDABLE,
                "Subscription quantity cannot be decreased: a software subscription's licences "
                "can only be reduced within seven days of purchase.",
            )
    left = refundable(current, now)
    if left is not None and current["quantity"] - new["quantity"] > left:
        raise ApiError(
            400,
            NOT_REFUNDABLE,
            f"Subscription quantity cannot be decreased by more than its refundable "
            f"quantity ({left}).",
        )


def _billing_cycle_allowed(current: dict[str, Any], cycle: str) -> None:
    """ "Update a subscription by ID" changes the billing frequency of new commerce and legacy
    subscriptions ("Change the billing cycle", https://learn.microsoft.com/partner-center/
    developer/change-the-billing-cycle, whose order PATCH is for legacy ones only). That page
    leaves out non-annual terms: a monthly term is billed monthly, annual billing needs a term
    of a year or more."""
    term = TERM.match(str(current.get("termDuration") or ""))
    months = (int(term[1]) * (12 if term[2] == "Y" else 1)) if term else 0
    needs = {"monthly": 1, "annual": 12, "triennial": 36}.get(cycle)
    if needs is None or months < needs or current["status"] != "active":
        raise ApiError(400, BILLING_CYCLE, "Cannot update the billing cycle for this subscription.")


def product_of(sub: dict[str, Any]) -> str | None:
    """The policy table's row for a subscription, from what its resource holds ("Subscription
    resources", https://learn.microsoft.com/partner-center/developer/subscription-resources):
    a Software product type with a term is a software subscription and without one perpetual
    software; new commerce online services are license-based, or SaaS when the product is not
    Microsoft's (`isMicrosoftProduct`). Legacy and Azure have no row (None)."""
    family = str((sub.get("productType") or {}).get("id") or "")
    if family in ("Software", "SoftwarePerpetual", "SoftwareSubscriptions"):
        return "software" if TERM.match(str(sub.get("termDuration") or "")) else "perpetual"
    if family == "OnlineServicesNCE":
        return "license" if sub.get("isMicrosoftProduct", True) else "saas"
    return "saas" if family.lower() == "saas" else None


def _may_cancel(current: dict[str, Any], now: datetime) -> None:
    """Cancelling through the subscription: perpetual software cannot ("Cancel software
    purchases", https://learn.microsoft.com/partner-center/developer/cancel-software-purchases:
    software subscriptions, "not including perpetual software", through Update a subscription
    by ID), the others only inside their window."""
    if product_of(current) == "perpetual":
        raise ApiError(
            400,
            BAD_INPUT,
            "Perpetual software is cancelled through its order, not its subscription.",
        )
    closes = cancel_until(current)
    if closes is not None and now > closes:
        window = POLICY_WINDOW[product_of(current) or "license"]
        raise ApiError(
            400,
            WINDOW_PASSED,
            f"You have passed your {max(1, round(window / timedelta(days=1)))}-day cancellation "
            "window. We are unable to cancel your purchase.",
        )


def cancel_until(sub: dict[str, Any]) -> datetime | None:
    """The end of a subscription's cancellation window (None when the table gives it none):
    its `cancellationAllowedUntilDate` when it carries one (a partial upgrade's, its parent's),
    else its product's window after purchase, and for license-based ones after the renewal too."""
    kind = product_of(sub)
    if kind is None:
        return None
    if sub.get("cancellationAllowedUntilDate"):
        return when(sub["cancellationAllowedUntilDate"])
    if kind != "license":
        return when(sub["creationDate"]) + POLICY_WINDOW[kind] if sub.get("creationDate") else None
    starts = [when(sub[k]) for k in ("creationDate", "effectiveStartDate") if sub.get(k)]
    term = TERM.match(str(sub.get("termDuration") or ""))
    if term and sub.get("commitmentEndDate"):
        end, n = when(sub["commitmentEndDate"]), int(term[1])
        months = n * 12 if term[2] == "Y" else n
        starts.append(end - timedelta(days=round(months * 365 / 12)))
    return max(starts) + POLICY_WINDOW[kind] if starts else None


def refundable(sub: dict[str, Any], now: datetime) -> int | None:
    """Seats still inside a refund window (None for legacy subscriptions, which have none)."""
    if "refundableQuantity" not in sub:
        return None
    details = sub["refundableQuantity"].get("details") or []
    return sum(d["quantity"] for d in details if when(d["allowedUntilDateTime"]) > now)


def _take_refund(new: dict[str, Any], decrease: int, now: datetime) -> None:
    """A decrease uses up seats of the refund windows that are still open."""
    details = [
        d for d in new["refundableQuantity"]["details"] if when(d["allowedUntilDateTime"]) > now
    ]
    for detail in details:
        taken = min(detail["quantity"], decrease)
        detail["quantity"] -= taken
        decrease -= taken
    kept = [d for d in details if d["quantity"] > 0]
    new["refundableQuantity"] = {"totalQuantity": sum(d["quantity"] for d in kept), "details": kept}


def patch_order(
    current: dict[str, Any],
    body: Any,
    now: datetime,
    subscription: Callable[[str], dict[str, Any] | None] = lambda _: None,
) -> dict[str, Any]:
    """The order after `body` is applied: a cancellation, a billing cycle, line quantities.

    `subscription` finds a line's subscription (None when the sandbox does not hold it).
    """
    _conforms("orders", body)
    new = copy.deepcopy(current)
    by_number = {i["lineItemNumber"]: i for i in new["lineItems"]}
    sent = []
    for item in body.get("lineItems") or []:
        target = by_number.get(item.get("lineItemNumber"))
        if target is None:
            raise ApiError(
                400, BAD_INPUT, f"The order has no line item {item.get('lineItemNumber')}."
            )
        sent.append((item, target))
    status, cycle = body.get("status"), body.get("billingCycle")
    if status is not None and status != current["status"]:
        if status != "cancelled":
            raise ApiError(400, BAD_INPUT, f"An order's status cannot be set to {status!r}.")
        _cancel(current, new, [t for _, t in sent], now)
        return new
    if cycle is not None and cycle != current["billingCycle"]:
        # "Change the billing cycle": the order PATCH changes it for legacy subscriptions only
        # (new commerce ones change through "Update a subscription by ID"); it needs lineItems.
        if not sent:
            raise ApiError(400, BAD_INPUT, "A billing cycle change needs the order's lineItems.")
        for _, target in sent:
            sub = subscription(str(target.get("subscriptionId") or ""))
            if sub is not None and is_new_commerce(sub):
                raise ApiError(
                    400,
                    BILLING_CYCLE,
                    "Cannot update the billing cycle for this subscription: new commerce "
                    "subscriptions change it through the subscription, not the order.",
                )
        new["billingCycle"] = cycle
    for item, target in sent:
        if item.get("quantity") is not None:
            target["quantity"] = item["quantity"]
    return new


def _cancel(
    current: dict[str, Any], new: dict[str, Any], lines: list[dict[str, Any]], now: datetime
) -> None:
    """ "Cancel software purchases": the lineItems sent are the ones cancelled (their quantity
    becomes 0 and the order stays `completed` while other lines remain); with no lineItems the
    whole order is cancelled. Only software can be cancelled this way, within the window."""
    acted = lines or new["lineItems"]
    for line in acted:
        product = str(line.get("offerId", "")).split(":")[0]
        if product.startswith("CFQ7TTC0"):  # license-based online services
            raise ApiError(
                400,
                USE_SUBSCRIPTION,
                f"This order {current['id']} cannot be cancelled. Use PATCH "
                f"/customers/{current.get('referenceCustomerId')}/subscriptions/<subscriptionId> "
                "to suspend subscriptions.",
            )
        if not product.startswith("DG7GMGF0"):  # software products
            raise ApiError(
                403,
                NOT_SOFTWARE,
                "Non-Sandbox tenants are not allowed to cancel purchases other than software "
                "subscriptions and perpetual software.",
            )
    # the policy table: a line with a term is a software subscription (7 days), one without
    # is perpetual software (30 calendar days)
    windows = [
        POLICY_WINDOW["software" if TERM.match(str(i.get("termDuration") or "")) else "perpetual"]
        for i in acted
    ]
    if now > when(current["creationDate"]) + min(windows):
        raise ApiError(
            400,
            WINDOW_PASSED,
            f"You have passed your {min(windows).days}-day cancellation window. "
            "We are unable to cancel your purchase.",
        )
    for line in acted:
        line["quantity"] = 0
    if all(i["quantity"] == 0 for i in new["lineItems"]):
        new["status"] = "cancelled"


def _conforms(kind: str, body: Any) -> None:
    """Wrong types and enums are 800002; fields the model does not know are ignored
    (production adds fields over time, and a client sends back what it read)."""
    found = [p for p in problems(kind, body) if " is not a field of the " not in p]  # type: ignore[arg-type]
    if found:
        raise ApiError(400, BAD_INPUT, "Invalid input: " + "; ".join(found[:5]))
