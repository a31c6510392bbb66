"""The undo sheet: a valid input sheet that puts back the values read before each applied change.

Apply it like any sheet (`bulkpatch apply undo.csv`). What cannot be undone through the API is
left out and said so in its Notes column: a cancellation, or a value that was empty before. A
resume writes it again; the rows of an earlier one that the readable journal cannot rebuild are
kept as they were (`earlier`), and give back the values read before those changes (`before`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.load import quoting
from bulkpatch.outcomes import APPLIED
from bulkpatch.plan.changes import Change

if TYPE_CHECKING:  # the network side: a resume reads earlier sheets before it calls out
    from bulkpatch.apply.outcome import Result

RESOURCE = {"subscriptions": "Subscription ID", "orders": "Order ID"}
FINAL = {("status", "deleted"), ("status", "cancelled")}
LINE = re.compile(r"^lineItems\[(\d+)\]\.(.+)$")


def cell(value: Any) -> str:
    """A value as a sheet cell that `load` and `check` read back to the same value."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def frames(
    applied: list[tuple[Change, Result]], kept: dict[str, list[dict[str, str]]] | None = None
) -> dict[str, pl.DataFrame]:
    """The undo sheet of each kind where something was applied: a subscriptions sheet and an
    orders sheet, ready to write: formula-like text quoted, with the record that has it read
    back exactly (`quoting`, `EXACT`): the values read before, tabs and all. `kept`: an
    earlier sheet's rows of a change (by key, as read back), written as they were instead of
    rows from its result."""
    kept = kept or {}
    sheets: dict[str, list[dict[str, str]]] = {"subscriptions": [], "orders": []}
    for change, result in applied:
        if change.key in kept:
            sheets[change.kind] += kept[change.key]
        elif result.outcome in APPLIED and result.before:
            sheets[change.kind] += _rows(change, result)
    made = {}
    for kind, rows in sheets.items():
        if rows:  # every row's columns, wherever a column first shows up
            frame = pl.DataFrame(rows, infer_schema_length=None).select(pl.all().fill_null(""))
            made[kind] = quoting.quote(frame, frame.columns, exact=True)[0]
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
    base = {"Customer ID": change.customer_id, RESOURCE[change.kind]: change.resource_id}
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


def earlier(sheets: dict[str, pl.DataFrame], keys: set[str]) -> dict[str, list[dict[str, str]]]:
    """The rows of earlier undo sheets (every cell text, by kind) of the changes in `keys`, by
    change key, as they were written."""
    found: dict[str, list[dict[str, str]]] = {}
    wanted = {k.lower(): k for k in keys}
    for kind, frame in sheets.items():
        if not {"Customer ID", RESOURCE[kind]} <= set(frame.columns) or not wanted:
            continue
        key = pl.concat_str(pl.lit(f"{kind}/"), "Customer ID", pl.lit("/"), RESOURCE[kind])
        mine = frame.with_columns(key.str.to_lowercase().alias("key"))
        for row in mine.filter(pl.col("key").is_in(list(wanted))).to_dicts():
            found.setdefault(wanted[row.pop("key")], []).append(row)
    return found


def before(change: Change, rows: list[dict[str, str]]) -> dict[str, Any]:
    """The values an undo row puts back for the change's own fields (its order's, not its
    lines'), typed as the change's targets are: what was read before the change."""
    row = rows[0]
    likes = {**change.values, **({"quantity": 0} if change.delta is not None else {})}
    return {k: _typed(row[k], like) for k, like in likes.items() if row.get(k)}


def _typed(text: str, like: Any) -> Any:
    """A cell as `cell` wrote it, read back as the type of `like`."""
    if isinstance(like, bool) and text.upper() in ("TRUE", "FALSE"):
        return text.upper() == "TRUE"
    if isinstance(like, int) and not isinstance(like, bool) and re.fullmatch(r"-?\d+", text):
        return int(text)
    return text
