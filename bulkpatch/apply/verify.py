"""Verify what was written: does the resource Partner Center answered with show every target?

A 200 whose resource does not show a target did not apply it (legacy subscriptions whose
auto-renew cannot be changed answer 200 and keep it: Partner-Center-PowerShell issue 115,
https://github.com/microsoft/Partner-Center-PowerShell/issues/115); after a 202 the poll asks
the same. Values compare the way Partner Center stores them (`values.same_value`).
"""

from __future__ import annotations

from typing import Any

from bulkpatch.catalog.fields import REMOVE_RENEWAL, field
from bulkpatch.check.values import same_value
from bulkpatch.plan.changes import LINE, Change, show

WORDS = {"autoRenewEnabled": "auto-renew"}


def unmet(change: Change, resource: dict[str, Any]) -> list[str]:
    """Every target of `change` that `resource` does not show, in words.

    Enums compare without case (answers may say `Annual`), dates by day when the sheet gave a
    day, lists as sets. An order cancel that names lines is met when those lines show
    quantity 0 ("Cancel software purchases": the order stays `completed` while others remain).
    """
    missed = []
    line_cancel = (
        change.kind == "orders" and change.lines and change.values.get("status") == "cancelled"
    )
    for name, want in change.values.items():
        if line_cancel and name == "status":
            continue
        if name == REMOVE_RENEWAL.name:  # met when nothing is scheduled any more
            if want and resource.get("scheduledNextTermInstructions"):
                missed.append("the renewal changes are still scheduled")
            continue
        have = _dotted(resource, name)
        if not same_value(field(change.kind, name), want, have):
            missed.append(_still(name, have, want))
    if change.kind == "orders":
        items = resource.get("lineItems") or []
        for line in change.lines:
            item = line_item(items, line)
            if item is None:
                missed.append(f"line item {line.get('lineItemNumber')} is not in the order")
                continue
            targets = {
                k: v for k, v in line.items() if k not in ("lineItemNumber", "subscriptionId")
            }
            if line_cancel:
                targets["quantity"] = 0
            for name, want in targets.items():
                if not same_value(field(change.kind, LINE + name), want, item.get(name)):
                    missed.append(
                        _still(
                            f"line item {item.get('lineItemNumber')} {name}", item.get(name), want
                        )
                    )
    return missed


def _dotted(resource: dict[str, Any], name: str) -> Any:
    node: Any = resource
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def line_item(items: list[dict[str, Any]], line: dict[str, Any]) -> dict[str, Any] | None:
    """The order's line item that a sheet's line names (by number, or by subscription)."""
    number, sub = line.get("lineItemNumber"), str(line.get("subscriptionId") or "").lower()
    for item in items:
        if number is not None and item.get("lineItemNumber") == number:
            return item
        if sub and str(item.get("subscriptionId", "")).lower() == sub:
            return item
    return None


def _still(name: str, have: Any, want: Any) -> str:
    word = WORDS.get(name, name)
    if isinstance(want, bool):
        return f"{word} is still {'on' if have else 'off'}"
    return f"{word} is still {show(have)} (asked {show(want)})"
