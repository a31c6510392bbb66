"""What the sandbox holds at start: the resources a sheet names, or N x M synthetic ones.

Seeded from a sheet, every id it names exists, and its current state is plausible and
deterministic: what the sheet's expected columns believe (offer, `Current seats`, `Current
status`, term, dates), else the opposite of what the sheet asks (fewer seats, auto-renew the
other way, the other status), so a user trying their own sheet sees their changes really apply,
and the rest drawn from the ids, kept within Partner Center's rules. A store that already holds
an id keeps its state (`Store.add_new`): the built-in sandbox is a place. What the sheet asks
is made possible as Partner Center would allow it: a subscription the sheet cancels was bought
days ago (inside its cancellation window), one whose seats it lowers added them days ago
(inside its refund window), an order it cancels sold software, an order whose billing cycle it
changes holds legacy subscriptions. Every customer also has an expired and a disabled
subscription, as Partner Center's lists carry them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from bulkpatch.catalog.fields import header_index, normalize_header
from bulkpatch.check.values import typed
from bulkpatch.errors import InputError
from bulkpatch.load.reader import load
from bulkpatch.load.sheet import Column, Sheet
from bulkpatch.sandbox import customers, resources, semantics
from bulkpatch.sandbox.config import SeedSpec

SYNTHETIC_NS = uuid.UUID("0b7c2d4e-5f60-4a1b-8c9d-0e1f2a3b4c5d")
Seeded = dict[str, list[tuple[str, dict[str, Any]]]]  # kind -> (customer id, body)
OPPOSITE_STATUS = {"suspended": "active", "active": "suspended", "deleted": "active"}
OTHER_CYCLE = {"annual": "monthly", "monthly": "annual"}
GUID = re.compile(r"^\{?[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\}?$", re.IGNORECASE)
NCE_OFFER = re.compile(r"^[A-Z0-9]{12}:[A-Z0-9]{4}(:[A-Z0-9]+)?$", re.IGNORECASE)


def build(spec: SeedSpec, now: datetime) -> Seeded:
    """Every resource of `spec`, deterministic for the same spec."""
    seeded: Seeded = {"subscriptions": [], "orders": [], "customers": []}
    for path in spec.sheets:
        try:
            sheets = load(path)
        except InputError as exc:
            raise InputError(f"cannot seed the sandbox from it: {exc}") from None
        for sheet in sheets:
            if sheet.kind == "subscriptions":
                seeded["subscriptions"] += _subscriptions(sheet, now)
                seeded["customers"] += _named(sheet)
            else:
                orders, subscriptions = _orders(sheet, now)
                seeded["orders"] += orders
                seeded["subscriptions"] += subscriptions
    if spec.sheets:
        seeded["subscriptions"] += _lookalike(now)
        seeded["subscriptions"] += _inactive(seeded, now)
        seeded["customers"].append(
            (
                customers.LOOKALIKE_ID,
                customers.customer(customers.LOOKALIKE_ID, *customers.LOOKALIKE),
            )
        )
    if spec.synthetic:
        seeded["subscriptions"] += synthetic(*spec.synthetic, now=now)
    return seeded


def synthetic(customers: int, per_customer: int, now: datetime) -> list[tuple[str, dict]]:
    """`customers` customers with `per_customer` subscriptions each, ids from fixed names."""
    made = []
    for c in range(customers):
        customer = str(uuid.uuid5(SYNTHETIC_NS, f"customer-{c}"))
        for s in range(per_customer):
            sub = str(uuid.uuid5(SYNTHETIC_NS, f"customer-{c}-subscription-{s}"))
            made.append((customer, resources.subscription(customer, sub, now)))
    return made


def _rows(sheet: Sheet) -> list[dict[str, Any]]:
    """Typed rows keyed by field name, rows without usable ids left out.

    A column such as `Current seats` or `Current status` (a field's name or alias after
    `Current`) is read as the field's current value, under the key `current:<field>`.
    """
    names = {c.name: c.field.name for c in sheet.columns if c.field}
    index = header_index(sheet.kind)
    current = {
        c: index[normalize_header(c.header[8:])]
        for c in sheet.columns
        if c.field is None
        and normalize_header(c.header).startswith("current")
        and normalize_header(c.header[8:]) in index
    }
    shadow = replace(
        sheet, columns=[Column(c.name, c.header, current.get(c, c.field)) for c in sheet.columns]
    )
    frame = typed(shadow).rename(
        {**names, **{c.name: f"current:{f.name}" for c, f in current.items()}}
    )
    key = "subscription_id" if sheet.kind == "subscriptions" else "order_id"
    if not {"customer_id", key} <= set(frame.columns):  # a sheet naming customers by name only
        return []
    return frame.filter(pl.col("customer_id").is_not_null() & pl.col(key).is_not_null()).to_dicts()


def _subscriptions(sheet: Sheet, now: datetime) -> list[tuple[str, dict]]:
    made: dict[str, tuple[str, dict]] = {}
    # what the sheet believes Partner Center holds (offer, term, dates): seeded as it says, so
    # a sheet exported from a place is applied to the same place
    believed = {
        c.field.name
        for c in sheet.columns
        if c.field and c.field.role == "expected" and not set(".:") & set(c.field.name)
    }
    for row in _rows(sheet):
        customer, sub = row["customer_id"], row["subscription_id"]
        if sub not in made:
            made[sub] = (customer, _subscription(customer, sub, row, believed, now))
    return list(made.values())


def _named(sheet: Sheet) -> list[tuple[str, dict]]:
    """The Customer resource of every customer the sheet names by company or domain."""
    if sheet.column_for("match:company") is None and sheet.column_for("match:domain") is None:
        return []
    named: dict[str, tuple[str, dict]] = {}
    for row in _rows(sheet):
        customer, name = row["customer_id"], row.get("match:company")
        if customer.lower() in named or not (name or row.get("match:domain")):
            continue
        body = customers.customer(customer, name, row.get("match:domain"))
        slug = body["companyProfile"]["domain"].split(".")[0]
        body["customDomains"] = [f"{slug}.com"]
        named[customer.lower()] = (customer, body)
    return list(named.values())


def _lookalike(now: datetime) -> list[tuple[str, dict]]:
    """The look-alike customer's one subscription, of an offer its namesake has too."""
    customer = customers.LOOKALIKE_ID
    sub = str(uuid.uuid5(SYNTHETIC_NS, f"{customer}-lookalike"))
    body = resources.subscription(customer, sub, now, legacy=False, status="active")
    _as_offer(body, [customers.LOOKALIKE_OFFER], {})
    _coherent(body, set(), now)
    return [(customer, body)]


def _subscription(
    customer: str, sub: str, row: dict[str, Any], believed: set[str], now: datetime
) -> dict[str, Any]:
    """The subscription a row is about: what the sheet believes is there (its expected
    columns) as it says, what the row asks the other way round, the rest drawn from the ids;
    then made consistent as Partner Center would hold it."""
    state: dict[str, Any] = {}
    if row.get("quantity"):
        step = resources.rng(customer, sub, "step").randint(1, 5)
        state["quantity"] = max(1, row["quantity"] - step) if row["quantity"] > 1 else 2
    if row.get("autoRenewEnabled") is not None:
        state["autoRenewEnabled"] = not row["autoRenewEnabled"]
    if row.get("status") in OPPOSITE_STATUS:
        state["status"] = OPPOSITE_STATUS[row["status"]]
    if row.get("billingCycle") in OTHER_CYCLE:  # the other cycle, on a term allowing both
        state["billingCycle"] = OTHER_CYCLE[row["billingCycle"]]
        state["termDuration"] = state["renewalTermDuration"] = "P1Y"
    stated = {k[8:]: v for k, v in row.items() if k.startswith("current:") and v is not None}
    stated.update({k: _json(v) for k, v in row.items() if k in believed and v is not None})
    state.update(stated)
    named = (row.get("offer:any"), stated.get("offerName"), stated.get("offerId"))
    offers = [str(v) for v in named if v]
    kind = next(filter(None, map(_kind_product, offers)), None)
    # the kinds of the new commerce cancellation policy's table are new commerce subscriptions
    options: dict[str, Any] = {"legacy": False if kind is not None else _legacy(offers)}
    if row.get("status") == "deleted":  # inside the 7-day cancellation window
        options["purchased_days_ago"] = 2
    if row.get("quantity") and state.get("quantity") and row["quantity"] < state["quantity"]:
        options["refundable"] = state["quantity"] - row["quantity"]  # seats added days ago
    body = resources.subscription(customer, sub, now, **options, **state)
    _as_offer(body, offers, stated)
    if kind is not None:  # a product of another row of the cancellation policy's table
        resources.as_kind(body, kind[3], kind)
        body.update({k: v for k, v in stated.items() if "." not in k})  # what the sheet says
    _coherent(body, set(stated), now)
    return body


def _json(value: Any) -> Any:
    """A typed cell as a JSON body holds it (dates as Partner Center writes them)."""
    return resources.iso(value.replace(tzinfo=UTC)) if isinstance(value, datetime) else value


def _legacy(offers: list[str]) -> bool | None:
    """A GUID offer id is a legacy subscription's, PRODUCT:SKU:... a new commerce one's; a
    name says neither (None: drawn from the ids)."""
    for offer in offers:
        if GUID.match(offer):
            return True
        if NCE_OFFER.match(offer):
            return False
    return None


def _product(offer: str) -> resources.Product | None:
    """The catalog product an offer name or new commerce offer id names, if the sandbox has it."""
    return next(
        (
            p
            for p in resources.PRODUCTS
            if offer.casefold() == p[2].casefold() or offer.upper().startswith(f"{p[0]}:{p[1]}")
        ),
        None,
    )


def _kind_product(offer: str) -> tuple[str, str, str, str] | None:
    """The product of `resources.KIND_PRODUCTS` an offer name or id names, if any."""
    return next(
        (
            p
            for p in resources.KIND_PRODUCTS
            if offer.casefold() in (p[2].casefold(), f"{p[0]}:{p[1]}".casefold())
        ),
        None,
    )


def _as_offer(body: dict[str, Any], offers: list[str], stated: dict[str, Any]) -> None:
    """The offer the sheet names (a `Product` or `Offer` cell, an offer name or id column),
    with the ids, links and friendly name that go with it: a row about Power BI Pro is seeded
    as Power BI Pro, not as whatever the ids would draw."""
    for offer in offers:
        body["offerId" if GUID.match(offer) or NCE_OFFER.match(offer) else "offerName"] = offer
    product = next(filter(None, map(_product, offers)), None)
    if product is not None:
        product_id, sku_id, name, _ = product
        body["offerName"] = stated.get("offerName") or next(
            (o for o in offers if o.casefold() == name.casefold()), name
        )
        if not GUID.match(body["offerId"]) and not NCE_OFFER.match(stated.get("offerId") or ""):
            availability = body["offerId"].rsplit(":", 1)[-1]
            body["offerId"] = f"{product_id}:{sku_id}:{availability}"
        body["links"].update(_catalog_links(product_id, sku_id))
        instructions = body.get("scheduledNextTermInstructions")
        if instructions:
            instructions["product"].update(productId=product_id, skuId=sku_id)
    if offers and "friendlyName" not in stated:
        body["friendlyName"] = body["offerName"]


def _catalog_links(product_id: str, sku_id: str) -> dict[str, Any]:
    path = f"/products/{product_id}"
    return {
        "offer": resources.link(f"/offers/{product_id}"),
        "product": resources.link(path),
        "sku": resources.link(f"{path}/skus/{sku_id}"),
        "availability": resources.link(f"{path}/skus/{sku_id}/availabilities"),
    }


def _coherent(body: dict[str, Any], stated: set[str], now: datetime) -> None:
    """What the sheet did not state is made to agree with Partner Center's rules
    (`semantics`): a cancelled subscription does not renew, renewal instructions need
    auto-renew on, annual billing needs a term of a year, and an active or suspended
    subscription's commitment has not ended (it renewed)."""
    if body["status"] == "deleted" and "autoRenewEnabled" not in stated:
        body["autoRenewEnabled"] = False
    if not body["autoRenewEnabled"] or body["status"] == "deleted":
        body.pop("scheduledNextTermInstructions", None)
    term = semantics.TERM.match(str(body.get("termDuration") or ""))
    months = (int(term[1]) * (12 if term[2] == "Y" else 1)) if term else 12
    if body["billingCycle"] == "annual" and months < 12:
        if "billingCycle" not in stated:
            body["billingCycle"] = "monthly"
        elif "termDuration" not in stated:
            body["termDuration"], months = "P1Y", 12
    if "termDuration" in stated and "renewalTermDuration" not in stated:
        body["renewalTermDuration"] = body["termDuration"]
    if (
        body["status"] in ("active", "suspended")
        and "commitmentEndDate" not in stated
        and body.get("commitmentEndDate")  # perpetual software has none
    ):
        end = semantics.when(body["commitmentEndDate"])
        while end <= now:
            end += timedelta(days=round(months * 365 / 12))
        body["commitmentEndDate"] = resources.iso(end)


def _inactive(seeded: Seeded, now: datetime) -> list[tuple[str, dict]]:
    """An expired and a disabled subscription for every customer, as lists show them."""
    customers = sorted({c.lower() for items in seeded.values() for c, _ in items})
    made = []
    for customer in customers:
        for status in ("expired", "disabled"):
            sub = str(uuid.uuid5(SYNTHETIC_NS, f"{customer}-{status}"))
            body = resources.subscription(customer, sub, now, status=status, autoRenewEnabled=False)
            body.pop("scheduledNextTermInstructions", None)
            made.append((customer, body))
    return made


def _orders(sheet: Sheet, now: datetime) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in _rows(sheet):
        grouped.setdefault((row["customer_id"], row["order_id"]), []).append(row)
    made, subscriptions = [], []
    for (customer, order_id), rows in grouped.items():
        lines = [
            {
                "lineItemNumber": r.get("lineItems.lineItemNumber", n),
                "subscriptionId": r.get("lineItems.subscriptionId"),
                "offerId": r.get("lineItems.offerId"),
                "quantity": r.get("current:lineItems.quantity") or r.get("lineItems.quantity"),
            }
            for n, r in enumerate(rows)
            if r.get("lineItems.lineItemNumber") is not None or r.get("lineItems.subscriptionId")
        ]
        state: dict[str, Any] = {}
        cycle = next((r["billingCycle"] for r in rows if r.get("billingCycle")), None)
        if cycle in OTHER_CYCLE:
            state["billingCycle"] = OTHER_CYCLE[cycle]
        state.update(_believed_order(rows))
        if cycle in OTHER_CYCLE:  # the order PATCH changes billing for legacy subscriptions only
            subscriptions += [
                (
                    customer,
                    resources.subscription(
                        customer,
                        line["subscriptionId"],
                        now,
                        legacy=True,
                        billingCycle=state["billingCycle"],
                    ),
                )
                for line in lines
                if line["subscriptionId"]
            ]
        if any(r.get("status") == "cancelled" for r in rows):
            state["software"] = True  # the one kind an order PATCH cancels
        made.append((customer, resources.order(customer, order_id, now, lines or [{}], **state)))
    return made, subscriptions


def _believed_order(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What an order's rows believe it holds now (`Current billing cycle`, `Current status`)."""
    return {
        name: value
        for name in ("billingCycle", "status")
        if (value := next((r[f"current:{name}"] for r in rows if r.get(f"current:{name}")), None))
    }
