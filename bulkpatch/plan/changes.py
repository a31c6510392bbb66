"""Stage 3, plan: each valid row becomes a change against one resource.

A change is what the sheet asks (absolute target values); merged into the resource as last read
it becomes the full body to PATCH, with before -> after for every field it changes. The
MS-RequestId of a change is derived from the run and the resource, so a resumed run sends the
same id again. Nothing here touches the network: reads happen in `apply`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from bulkpatch.catalog import fields as catalog
from bulkpatch.catalog.fields import Field, Kind
from bulkpatch.check.checker import Checked
from bulkpatch.check.values import requests, same_value
from bulkpatch.errors import ApiError
from bulkpatch.load.sheet import ROW
from bulkpatch.plan import rules

REQUEST_NS = uuid.UUID("9a1c5e2b-3f4d-4b6a-8c7e-1d2f3a4b5c6d")
LINE = "lineItems."


@dataclass
class Change:
    """One PATCH's worth of intent: target values for one subscription or one order."""

    kind: Kind
    customer_id: str
    resource_id: str
    rows: list[int]
    values: dict[str, Any]  # settable fields only: the targets, the only values ever sent
    lines: list[dict[str, Any]] = field(default_factory=list)  # orders: one per line item row
    request_id: str = ""
    # What the sheet says Partner Center holds now (offer, term, dates, `Current seats` keyed as
    # `quantity`): never sent; plan compares it with what it reads.
    expected: dict[str, Any] = field(default_factory=dict)
    # Orders: the expected values of line items, each with the keys that name its line.
    expected_lines: list[dict[str, Any]] = field(default_factory=list)
    delta: int | None = None  # a `Seat change` (+2, -1): plan turns it into a total
    # An exported row's export date (`export_record`): its expected values are what the export
    # read, and a conflict says so.
    exported: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.customer_id}/{self.resource_id}"

    @property
    def path(self) -> str:
        return f"/v1/customers/{self.customer_id}/{self.kind}/{self.resource_id}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Merged:
    """A change merged into the resource as read: the body to send and what it changes."""

    body: dict[str, Any]
    diffs: dict[str, tuple[Any, Any]]
    refusal: ApiError | None = None
    reactivate_first: bool = False  # a suspended subscription takes its status change alone

    def describe(self) -> str:
        return describe(self.diffs)


def describe(diffs: dict[str, Any]) -> str:
    """`quantity: 10 -> 12; autoRenewEnabled: true -> false`."""
    return "; ".join(f"{k}: {show(b)} -> {show(a)}" for k, (b, a) in diffs.items())


def show(value: Any) -> str:
    """A value as a finance user reads it in a cell."""
    if value is None:
        return "(none)"
    if isinstance(value, bool | list | dict):
        return json.dumps(value)
    return str(value)


def changes(checked: Checked, run_id: str) -> tuple[list[Change], dict[int, str]]:
    """The changes of a checked sheet, and rows held back with the reason why.

    Settable cells that ask for something become `values` (and order `lines`); expected cells
    become `expected` (a `current:` column under the field it describes); a seat change becomes
    `delta`. Keys and the etag are not values: the URL and the body as read carry them.
    """
    sheet = checked.sheet
    names = {c.name: c.field.name for c in sheet.columns if c.field}
    frame = requests(sheet).rename(names).join(checked.outcomes.select(ROW, "outcome"), on=ROW)
    roles = {c.field.name: c.field for c in sheet.columns if c.field}
    made: list[Change] = []
    held: dict[int, str] = {}
    if sheet.kind == "subscriptions":
        # A row that asks nothing is still compared when it says what it expects Partner
        # Center to hold: `Current seats 30, Quantity 30` is no change only if 30 is there.
        asking = frame.filter(pl.col("outcome").is_in(["valid", "no_change"]))
        seen: dict[tuple[str, str], Change] = {}
        for row in asking.to_dicts():
            day = sheet.exported.get(row[ROW], "")
            values, expected, delta = _split(row, roles, edited_only=bool(day))
            if row["outcome"] == "no_change" and (day or not expected):
                continue  # an exported row left as it was asks nothing, whatever moved since
            key = (_id(row["customer_id"]), _id(row["subscription_id"]))
            same = seen.get(key)
            if same is not None:  # a reconciliation file's charge lines asking the same (a
                same.rows.append(row[ROW])  # target asked otherwise twice is refused at check)
                continue
            made.append(
                Change(
                    "subscriptions",
                    row["customer_id"],
                    row["subscription_id"],
                    [row[ROW]],
                    values,
                    expected=expected,
                    delta=delta,
                    exported=day,
                )
            )
            seen[key] = made[-1]
    else:
        made, held = _order_changes(frame, roles, sheet.exported)
    for change in made:
        change.request_id = str(uuid.uuid5(REQUEST_NS, f"{run_id}:{change.key}"))
    return made, held


def _id(value: Any) -> str:
    """An id as rows compare it: without case or braces."""
    return str(value).strip("{}").lower()


def _split(
    row: dict[str, Any], fields: dict[str, Field], edited_only: bool = False
) -> tuple[dict, dict, int | None]:
    """A row's non-empty cells as (settable values, expected values, seat change).

    `edited_only` (an exported row): a `Current ...` value is expected only for a field the
    row edits; a field left as exported is neither sent nor compared (three-way)."""
    values, expected, delta = {}, {}, None
    for name, value in row.items():
        f = fields.get(name)
        if f is None or value is None:
            continue
        if f.role == "settable":
            values[name] = value
        elif f.role == "expected":
            expected[f.of or name] = value
        elif f.role == "delta":
            delta = value
    if edited_only:
        edited = set(values) | ({"quantity"} if delta is not None else set())
        current = {f.of for f in fields.values() if f.of}
        expected = {k: v for k, v in expected.items() if k not in current or k in edited}
    return values, expected, delta


def _order_changes(
    frame: pl.DataFrame, fields: dict[str, Field], exported: dict[int, str]
) -> tuple[list[Change], dict[int, str]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in frame.to_dicts():
        groups.setdefault((row["customer_id"] or "", row["order_id"] or ""), []).append(row)
    made, held = [], {}
    for (customer, order_id), rows in groups.items():
        outcomes = {r["outcome"] for r in rows}
        if "valid" not in outcomes:
            continue
        if "invalid" in outcomes:
            bad = ", ".join(str(r[ROW]) for r in rows if r["outcome"] == "invalid")
            held.update(
                {
                    r[ROW]: f"not sent: row {bad} of the same order is invalid"
                    for r in rows
                    if r["outcome"] != "invalid"
                }
            )
            continue
        values: dict[str, Any] = {}
        expected: dict[str, Any] = {}
        lines, expected_lines = [], []
        day = next((exported[r[ROW]] for r in rows if r[ROW] in exported), "")
        for r in rows:
            settable, believed, _ = _split(r, fields, edited_only=bool(day))
            values.update({k: v for k, v in settable.items() if not k.startswith(LINE)})
            expected.update({k: v for k, v in believed.items() if not k.startswith(LINE)})
            keys = {
                k.removeprefix(LINE): v
                for k, v in r.items()
                if v is not None and k in fields and fields[k].role == "key"
            }
            line = {k.removeprefix(LINE): v for k, v in settable.items() if k.startswith(LINE)}
            if keys or line:
                lines.append({**keys, **line, "_cancel": r.get("status") is not None})
            believed_line = {
                k.removeprefix(LINE): v for k, v in believed.items() if k.startswith(LINE)
            }
            if believed_line:
                expected_lines.append({**keys, **believed_line})
        if values.get("status") == "cancelled":  # only the lines whose row says so are cancelled
            lines = [line for line in lines if line["_cancel"]]
        lines = [{k: v for k, v in line.items() if k != "_cancel"} for line in lines]
        made.append(
            Change(
                "orders",
                customer,
                order_id,
                [r[ROW] for r in rows],
                values,
                lines,
                expected=expected,
                expected_lines=expected_lines,
                exported=day,
            )
        )
    return made, held


def merge(change: Change, current: dict[str, Any], now: datetime) -> Merged:
    """The full body: `current` with the sheet's values set, and a predicted refusal if any."""
    body = copied(current)
    body.pop(rules.ELIGIBLE, None)  # what the engine read beside the resource: never sent
    diffs: dict[str, tuple[Any, Any]] = {}
    instructions = "scheduledNextTermInstructions"
    for name, value in change.values.items():
        if name == catalog.REMOVE_RENEWAL.name:  # cleared: the full-object PATCH holds none
            if value and body.get(instructions):
                diffs[instructions] = (body.pop(instructions), None)
            continue
        _set(body, name, value, diffs, name, catalog.field(change.kind, name))
    if (
        change.kind == "subscriptions"
        and "autoRenewEnabled" in diffs  # this change turns it off: not a row asking nothing
        and body.get("autoRenewEnabled") is False
        and body.get(instructions)
        and not any(k.startswith(instructions) for k in change.values)
    ):
        diffs[instructions] = (body.pop(instructions), None)  # they end with auto-renew
    refusal = None
    reactivate = (
        change.kind == "subscriptions"
        and current.get("status") == "suspended"
        and body.get("status") == "active"
        and len(diffs) > 1
    )
    if change.kind == "orders":
        refusal = _merge_lines(change, body, diffs)
    try:
        if refusal is None and diffs:
            if change.kind == "subscriptions":
                basis = {**current, "status": "active"} if reactivate else current
                rules.check_subscription(basis, body, now)
            else:
                rules.check_order(current, body, now, lines_sent=True)
    except ApiError as exc:
        refusal = exc
    return Merged(body, diffs, refusal, reactivate)


def copied(value: Any) -> Any:
    """A deep copy of JSON (dicts, lists, scalars): three times faster than `copy.deepcopy`,
    which every change pays for."""
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) for v in value]
    return value


def _merge_lines(change: Change, body: dict[str, Any], diffs: dict) -> ApiError | None:
    """The order body's `lineItems` are the lines the sheet names, merged into them as read.

    In an order PATCH the lineItems sent are the ones acted on ("Cancel software purchases",
    https://learn.microsoft.com/partner-center/developer/cancel-software-purchases): a cancel
    naming one line cancels that line (its quantity becomes 0, the order stays `completed`
    while other lines remain), and a cancel naming none cancels the whole order. So a line the
    sheet does not name is never sent. A change naming no lines that is not a cancel (a billing
    cycle: "Change the billing cycle" requires lineItems) sends the order's lines as read.
    """
    items = body.get("lineItems") or []
    cancel = change.values.get("status") == "cancelled"
    named: list[dict[str, Any]] = []
    for line in change.lines:
        number, sub = line.get("lineItemNumber"), (line.get("subscriptionId") or "").lower()
        item = next(
            (
                i
                for i in items
                if (number is not None and i["lineItemNumber"] == number)
                or (sub and str(i.get("subscriptionId", "")).lower() == sub)
            ),
            None,
        )
        if item is None:
            which = f"line item {number}" if number is not None else f"subscription {sub}"
            return ApiError(400, rules.BAD_INPUT, f"The order has no {which}.")
        if not any(i is item for i in named):
            named.append(item)
        for name, value in line.items():
            if name not in ("lineItemNumber", "subscriptionId"):
                label = f"lineItems[{item['lineItemNumber']}].{name}"
                _set(item, name, value, diffs, label, catalog.field("orders", LINE + name))
        if cancel and item.get("quantity"):
            diffs[f"lineItems[{item['lineItemNumber']}].quantity"] = (item["quantity"], 0)
    if named:
        body["lineItems"] = named
        if cancel:  # the lines are what is cancelled; the order's status follows by itself
            diffs.pop("status", None)
    elif cancel:
        body.pop("lineItems", None)
    return None


def _set(body: dict[str, Any], dotted: str, value: Any, diffs: dict, label: str, f: Field) -> None:
    """Set a target in the body; a diff only when the value really changes, compared the way
    Partner Center stores it (`same_value`): a sheet applied twice settles to no change."""
    *parents, leaf = dotted.split(".")
    node = body
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    before = node.get(leaf)
    if not same_value(f, value, before):
        diffs[label] = (before, value)
        node[leaf] = value
