"""The undo sheet: a valid input sheet that puts back the values read before each applied change.

Apply it like any sheet (`bulkpatch apply undo.csv`). What cannot be undone through the API is
left out and said so in its Notes column: a cancellation, or a value that was empty before.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from bulkpatch.apply.outcome import Result
from bulkpatch.outcomes import APPLIED
from bulkpatch.plan.changes import Change
from bulkpatch.report import writers as report

FINAL = {("status", "deleted"), ("status", "cancelled")}
LINE = re.compile(r"^lineItems\[(\d+)\]\.(.+)$")


def cell(value: Any) -> str:
    """A value as a sheet cell that `load` and `check` read back to the same value."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def frames(applied: list[tuple[Change, Result]]) -> dict[str, pl.DataFrame]:
    """The undo sheet of each kind where something was applied: a subscriptions sheet and an
    orders sheet, cells neutralised, ready to write."""
    sheets: dict[str, list[dict[str, str]]] = {"subscriptions": [], "orders": []}
    for change, result in applied:
        if result.outcome in APPLIED and result.before:
            sheets[change.kind] += _rows(change, result)
    made = {}
    for kind, rows in sheets.items():
        if rows:
            frame = pl.DataFrame(rows).select(pl.all().fill_null(""))
            made[kind] = frame.with_columns(report.neutralise(c) for c in frame.iter_columns())
    return made


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Whole objects (renewal instructions that ended) as the dotted fields a sheet holds."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update(
                _flat({k: v for k, v in value.items() if v is not None}, f"{prefix}{name}.")
            )
        else:
            flat[prefix + name] = value
    return flat


def _rows(change: Change, result: Result) -> list[dict[str, str]]:
    resource = "Subscription ID" if change.kind == "subscriptions" else "Order ID"
    base = {"Customer ID": change.customer_id, resource: change.resource_id}
    lines: dict[str, dict[str, str]] = {}
    notes = []
    after = dict(change.values)
    cancel = ("status", after.get("status")) in FINAL  # an order's lines go with its cancel
    for name, before in _flat(result.before).items():
        line = LINE.match(name)
        field = line.group(2) if line else name
        if (field, after.get(field)) in FINAL or (line and cancel):
            what = f"line item {line.group(1)}" if line else field
            notes.append(f"{what} cannot be undone (a cancellation is final)")
        elif before is None:
            notes.append(f"{name} was empty before; clear it by hand if needed")
        elif line:
            lines.setdefault(line.group(1), {})[f"lineItems.{field}"] = cell(before)
        else:
            base[name] = cell(before)
    base["Notes"] = "; ".join(notes)
    if not lines:
        return [base]
    return [{**base, "lineItems.lineItemNumber": n, **values} for n, values in lines.items()]
