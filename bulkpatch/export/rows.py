"""The rows of an export: one per subscription (or per order line item), with headers that
`load` reads back as the catalog fields they came from.

Each settable column (`Quantity`) comes right after a `Current ...` column (`Current seats`)
holding the same value read: an expected column, so the sheet records what it was made from.
A settable cell equal to its row's current value asks for nothing (README, "What a sheet may hold"),
so an export applied as it is sends no PATCH, and an edited cell whose live value moved since
is a conflict, never a silent overwrite. Everything else read (offer, term, dates) is an
expected column; the company name is a note.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.catalog.fields import Kind, enum_key
from bulkpatch.errors import InputError

if TYPE_CHECKING:
    from bulkpatch.export.read import Customer, Read

# (header, where the value is: `customer:name`, `customer_id`, a dotted path in the resource,
# or for orders `order:<path>` / `line:<path>`)
Column = tuple[str, str]
# (settable header, the `Current ...` header beside it, where the value is)
Pair = tuple[str, str, str]
NEXT = "scheduledNextTermInstructions"

SUBSCRIPTION_KEYS: tuple[Column, ...] = (
    ("Customer", "customer:name"),
    ("Customer ID", "customer_id"),
    ("Subscription ID", "id"),
    ("Offer name", "offerName"),
    ("Offer ID", "offerId"),
    ("Term duration", "termDuration"),
    ("Commitment end date", "commitmentEndDate"),
    ("Reseller ID", "partnerId"),  # the indirect reseller (empty for a direct one's)
)
SUBSCRIPTION_PAIRS: tuple[Pair, ...] = (
    ("Status", "Current status", "status"),
    ("Quantity", "Current seats", "quantity"),
    ("Auto renew", "Current auto renew", "autoRenewEnabled"),
    ("Billing cycle", "Current billing cycle", "billingCycle"),
    ("Friendly name", "Current friendly name", "friendlyName"),
    ("Next term quantity", "Current next term quantity", f"{NEXT}.quantity"),
    ("Next term SKU ID", "Current next term SKU ID", f"{NEXT}.product.skuId"),
    ("Next term duration", "Current next term duration", f"{NEXT}.product.termDuration"),
    (
        "Next term billing cycle",
        "Current next term billing cycle",
        f"{NEXT}.product.billingCycle",
    ),
    ("Next term end date", "Current next term end date", f"{NEXT}.customTermEndDate"),
)
ORDER_KEYS: tuple[Column, ...] = (
    ("Customer", "customer:name"),
    ("Customer ID", "customer_id"),
    ("Order ID", "order:id"),
    ("Line item", "line:lineItemNumber"),
    ("Subscription ID", "line:subscriptionId"),
    ("Offer ID", "line:offerId"),
    ("Friendly name", "line:friendlyName"),
    ("Term duration", "line:termDuration"),
    ("Creation date", "order:creationDate"),
)
ORDER_PAIRS: tuple[Pair, ...] = (
    ("Status", "Current status", "order:status"),
    ("Billing cycle", "Current billing cycle", "order:billingCycle"),
    ("Quantity", "Current seats", "line:quantity"),
)
# written as the day: compared by day
DAYS = {"commitmentEndDate", "order:creationDate", f"{NEXT}.customTermEndDate"}
# The subscriptions a renewal review lists: those that renew at the end of their term, or can
# still be changed before it. "Subscription lifecycle states" (https://learn.microsoft.com/
# partner-center/customers/subscription-lifecycle): an active subscription is the one partners
# can change; a suspended one can be reactivated before the end of its term (else it moves on
# to expired); an expired, disabled or deleted one has ended and does not renew.
RENEWING = ("active", "suspended")


@dataclass(frozen=True)
class Filters:
    """Which rows to keep: statuses (any of them), an offer (a part of its name, or its id)
    and a commitment end date from today to `days` days on. With `days` and no statuses, the
    statuses are those that renew (`RENEWING`): a renewal review lists no ended subscription."""

    statuses: tuple[str, ...] = ()
    offer: str | None = None
    days: int | None = None
    reseller: str | None = None  # an indirect reseller's partner id (`partnerId`)

    @property
    def kept(self) -> tuple[str, ...]:
        """The statuses kept (empty: any)."""
        return self.statuses or (RENEWING if self.days is not None else ())

    def to_json(self) -> dict[str, Any]:
        return {
            "status": list(self.kept),
            "offer": self.offer,
            "renewing_within_days": self.days,
            "reseller": self.reseller,
        }


def window_days(text: str | None, today: date) -> int | None:
    """`--renewing-within`: `30d`, `8w`, `3m` (calendar months from today) or a bare number of
    days, as days from `today`; None when not given."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d{1,4})\s*([dwm]?)\s*", text.lower())
    if not match:
        raise InputError(
            f"--renewing-within {text!r}: write a number of days, weeks or months, such as "
            "30d, 8w or 3m."
        )
    n, unit = int(match[1]), match[2] or "d"
    if unit != "m":
        return n * (7 if unit == "w" else 1)
    months = today.month - 1 + n
    year, month = today.year + months // 12, months % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
    return (date(year, month, min(today.day, last)) - today).days


def headers(kind: Kind) -> list[str]:
    """The export's headers, in sheet order."""
    return [h for h, _, _ in _columns(kind)]


def _columns(kind: Kind) -> list[tuple[str, str, bool]]:
    """(header, where its value is, settable?) for every column, in sheet order."""
    keys, pairs = (
        (SUBSCRIPTION_KEYS, SUBSCRIPTION_PAIRS)
        if kind == "subscriptions"
        else (ORDER_KEYS, ORDER_PAIRS)
    )
    made = [(h, where, False) for h, where in keys]
    for settable, current, where in pairs:
        made += [(current, where, False), (settable, where, True)]
    return made


def frame(kind: Kind, read: Read, filters: Filters, today: date) -> pl.DataFrame:
    """Every row the filters keep, as text cells under the export's headers (None: empty).

    Renewal instructions are settable only while auto-renew is on (Partner Center keeps none
    without it): on a subscription that does not renew, their white cells are left empty and
    the `Current next term ...` cells still say what is scheduled.
    """
    columns = _columns(kind)
    rows = [
        [
            None if settable and _held(where, values) else _cell(where, values)
            for _, where, settable in columns
        ]
        for values in _records(kind, read)
        if _keep(kind, values, filters, today)
    ]
    schema = {h: pl.String for h, _, _ in columns}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _held(where: str, values: dict[str, Any]) -> bool:
    """A renewal instruction of a subscription whose auto-renew is off: not offered to edit."""
    return where.startswith(NEXT) and values["resource"].get("autoRenewEnabled") is False


def _records(kind: Kind, read: Read) -> Iterator[dict[str, Any]]:
    """What each row is made of: its customer, its resource (and for orders, its line)."""
    for one in read.customers:
        for item in read.items.get(one.id, []):
            if kind == "subscriptions":
                yield {"customer": one, "resource": item}
                continue
            for line in item.get("lineItems") or []:
                yield {"customer": one, "resource": item, "line": line}


def _value(where: str, values: dict[str, Any]) -> Any:
    """The value `where` names in a row's record (see `Column`)."""
    customer: Customer = values["customer"]
    if where == "customer:name":
        return customer.name
    if where == "customer_id":
        return customer.id
    source, parts = _path(where)
    node: Any = values[source]
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    return node


@functools.cache
def _path(where: str) -> tuple[str, tuple[str, ...]]:
    """`line:pricing.price` -> ("line", ("pricing", "price")): split once, not per cell."""
    source, _, path = where.partition(":") if ":" in where else ("resource", "", where)
    return ("line" if source == "line" else "resource"), tuple(path.split("."))


def _cell(where: str, values: dict[str, Any]) -> str | None:
    """A value as a cell reads it back: booleans TRUE/FALSE, dates as the day, lists with `;`."""
    value = _value(where, values)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, list):
        return ";".join(map(str, value))
    if where in DAYS:
        return str(value)[:10]
    return str(value)


def _keep(kind: Kind, values: dict[str, Any], filters: Filters, today: date) -> bool:
    status = _value("status" if kind == "subscriptions" else "order:status", values)
    if filters.kept and enum_key(str(status)) not in {enum_key(s) for s in filters.kept}:
        return False
    if filters.offer:
        wanted = filters.offer.casefold()
        name = _value("offerName" if kind == "subscriptions" else "line:friendlyName", values)
        offer = _value("offerId" if kind == "subscriptions" else "line:offerId", values)
        if wanted not in str(name or "").casefold() and wanted != str(offer or "").casefold():
            return False
    if filters.reseller and kind == "subscriptions":
        held = str(_value("partnerId", values) or "")
        if held.casefold() != filters.reseller.strip().casefold():
            return False
    if filters.days is not None:
        end = str(_value("commitmentEndDate", values) or "")[:10]
        last = (today + timedelta(days=filters.days)).isoformat()
        if not end or not today.isoformat() <= end <= last:
            return False
    return True
