"""Plan's verdict on a change: held against the state just read, what would sending it do?

The one place that decides it; plan, the live-run preview and the engine all ask `assess`. A
change is `no_change` (the target already holds), `conflict` (the sheet's expected values are
not what Partner Center holds), `would_fail` (Partner Center would certainly refuse it) or a
`change`, with warnings for what Partner Center does besides (renewal changes it removes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from bulkpatch.catalog import fields as catalog
from bulkpatch.catalog.model import plain
from bulkpatch.check.values import same_value
from bulkpatch.match.fold import names_offer_id
from bulkpatch.plan import rules
from bulkpatch.plan.changes import LINE, Change, Merged, merge, show


@dataclass
class Assessment:
    """A change held against the state just read: what sending it would do, and why.

    The one place that decides this: plan, the live-run preview and the engine all ask here.
    `verdict` is `change`, `no_change` (the target already holds), `conflict` (the sheet's
    expected values are not what Partner Center holds: the sheet may be out of date; not sent)
    or `would_fail` (Partner Center would certainly refuse it: not sent). `warnings` say what
    Partner Center will do besides (renewal changes it removes). `change` is the change as
    sent: a seat change (`+2`) made a total from the quantity read.
    """

    verdict: Literal["change", "no_change", "conflict", "would_fail"]
    merged: Merged
    change: Change
    reason: str = ""
    code: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def sendable(self) -> bool:
        return self.verdict == "change"


def assess(change: Change, current: dict[str, Any], now: datetime) -> Assessment:
    """What sending `change` to the resource as read (`current`) would do."""
    change = with_total(change, current)
    merged = merge(change, current, now)
    if conflicts := expectations(change, current):
        after = (
            "export again to start from it" if change.exported else "the sheet may be out of date"
        )
        reason = "; ".join(conflicts) + ": " + after
        return Assessment("conflict", merged, change, reason)
    if merged.refusal:  # before "no change": a line the order lacks hides the lines it has
        why = f"Partner Center would refuse it ({merged.refusal.description})"
        return Assessment("would_fail", merged, change, why, merged.refusal.code)
    if not merged.diffs:
        return Assessment("no_change", merged, change)
    warnings = renewal_removed(change, current, merged)
    if warnings:  # Partner Center deletes them with the change: undo must be able to put them back
        merged.diffs[NEXT_TERM] = (current[NEXT_TERM], None)
    if change.kind == "subscriptions":  # what plan cannot tell, and when a renewal happens
        warnings += rules.untold(current, merged.body) + rules.renewal_notes(current, merged.body)
    return Assessment("change", merged, change, warnings=warnings)


def pinned(change: Change, before: dict[str, Any], body: dict[str, Any]) -> Change:
    """A planned seat change pinned to the total the plan showed, with the quantity the plan
    read as expected: applying the plan adds what the plan said, or stops as a conflict."""
    if change.delta is None:
        return change
    return replace(
        change,
        values={**change.values, "quantity": body["quantity"]},
        expected={**change.expected, "quantity": before.get("quantity")},
        delta=None,
    )


def with_total(change: Change, current: dict[str, Any]) -> Change:
    """A seat change (`Seat change +2`) as the total it makes from the quantity read: the total
    is what is sent and journaled, so a resumed run never adds twice."""
    if change.delta is None:
        return change
    total = int(current.get("quantity") or 0) + change.delta
    return replace(change, values={**change.values, "quantity": total}, delta=None)


SEATS = {"quantity": "seats"}


def expectations(change: Change, current: dict[str, Any]) -> list[str]:
    """Every expected value of the sheet (offer, term, `Current seats`, ...) that is not what
    Partner Center holds, in words. A field that already holds what the row asks for is not
    one: the change was made (by an earlier run of the sheet, or by hand), so a sheet applied
    twice settles to no change."""
    found = []
    for name, want in change.expected.items():
        if name in change.values and same_value(
            catalog.field(change.kind, name), change.values[name], _dotted(current, name)
        ):
            continue
        if name == catalog.OFFER.name:  # a name or an id (or its first parts): either may match
            held = [current.get("offerName"), current.get("offerId")]
            named = names_offer_id(str(want), str(held[1] or ""))
            if not named and str(want).casefold() not in {str(h).casefold() for h in held if h}:
                found.append(_expects("offer", want, held[0] or held[1]))
            continue
        if name == "offerId" and names_offer_id(str(want), str(current.get("offerId") or "")):
            continue  # `CFQ7TTC0L3PB:0001` names `CFQ7TTC0L3PB:0001:CFQ7TTC0KXG7`
        have = _dotted(current, name)
        if not same_value(catalog.field(change.kind, name), want, have):
            asks = change.values.get(name)
            found.append(_moved(change, name, want, have, asks) or _expects(name, want, have))
    items = current.get("lineItems") or []
    for line in change.expected_lines:
        item = next((i for i in items if _names(line, i)), {})
        for name, want in line.items():
            if name in ("lineItemNumber", "subscriptionId"):
                continue
            if not same_value(catalog.field("orders", LINE + name), want, item.get(name)):
                asks = next((x.get(name) for x in change.lines if _names(line, x)), None)
                words = _moved(change, name, want, item.get(name), asks)
                found.append(
                    f"line item {item.get('lineItemNumber')}: "
                    + (words or _expects(name, want, item.get(name)))
                )
    return found


def _expects(name: str, want: Any, have: Any) -> str:
    if name in SEATS:
        return f"the sheet expects {show(want)} {SEATS[name]} but Partner Center holds {show(have)}"
    return f"the sheet expects {plain(name)} {show(want)} but Partner Center holds {show(have)}"


def _moved(change: Change, name: str, was: Any, now: Any, asks: Any) -> str:
    """An exported row's edited field that moved in Partner Center since the export, in
    words (empty for any other difference)."""
    if not change.exported or asks is None:
        return ""
    return (
        f"{SEATS.get(name, name)} changed in Partner Center since the export on "
        f"{change.exported}: was {show(was)}, now {show(now)}; the sheet asks {show(asks)}"
    )


def _names(line: dict[str, Any], item: dict[str, Any]) -> bool:
    number, sub = line.get("lineItemNumber"), str(line.get("subscriptionId") or "").lower()
    return (number is not None and item.get("lineItemNumber") == number) or bool(
        sub and str(item.get("subscriptionId", "")).lower() == sub
    )


def _dotted(resource: dict[str, Any], name: str) -> Any:
    node: Any = resource
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# "Create scheduled changes" (https://learn.microsoft.com/partner-center/developer/
# create-scheduled-changes): a mid-term (immediate) change to a new-commerce subscription before
# its renewal deletes every change scheduled for the renewal.
IMMEDIATE = ("quantity", "billingCycle")
NEXT_TERM = "scheduledNextTermInstructions"


def renewal_removed(change: Change, current: dict[str, Any], merged: Merged) -> list[str]:
    """A warning when this change removes the renewal changes scheduled on the subscription."""
    scheduled = current.get(NEXT_TERM)
    legacy = "etag" in (current.get("attributes") or {})
    immediate = [k for k in IMMEDIATE if k in merged.diffs]
    if change.kind != "subscriptions" or legacy or not scheduled or not immediate:
        return []
    if any(k.startswith(NEXT_TERM) for k in merged.diffs):
        return []  # the row sets the renewal changes itself
    what = "seat change" if immediate[0] == "quantity" else "billing cycle change"
    return [
        f"this {what} removes the renewal changes scheduled for {renewal_day(current)}: "
        f"{scheduled_words(scheduled)} at renewal"
    ]


def renewal_day(current: dict[str, Any]) -> str:
    return str(current.get("commitmentEndDate") or "")[:10] or "the renewal"


def scheduled_words(scheduled: dict[str, Any]) -> str:
    """Renewal instructions in words: `37 seats, billed monthly, a 1-year term`."""
    plans = [f"{scheduled['quantity']} seats"] if scheduled.get("quantity") else []
    product = scheduled.get("product") or {}
    if product.get("billingCycle"):
        plans.append(f"billed {product['billingCycle']}")
    if product.get("termDuration"):
        plans.append(f"a {term_words(product['termDuration'])} term")
    return ", ".join(plans) or "as scheduled"


def term_words(duration: str) -> str:
    """An ISO 8601 term as people say it: `P1Y` -> `1-year`, `P3M` -> `3-month`."""
    found = re.fullmatch(r"P(\d+)([YMD])", duration)
    if not found:
        return duration
    return f"{found.group(1)}-{ {'Y': 'year', 'M': 'month', 'D': 'day'}[found.group(2)] }"
