"""The per-row and summary tables of a run, pure Polars, for the report writers beside them.

`plan_rows` and `result_rows` give each sheet row its verdict (joined to the user's own
columns by `report.table`); `seat_totals` and `preview` sum the plan entries (one per change:
what was read, what would be sent, and the assessment's verdict).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from bulkpatch.catalog.fields import field as catalog_field
from bulkpatch.catalog.model import PLAIN, plain
from bulkpatch.check.checker import Checked
from bulkpatch.load.sheet import ROW, Sheet
from bulkpatch.outcomes import FIX
from bulkpatch.plan.assess import scheduled_words

RESULT_SCHEMA = {
    "outcome": pl.String,
    "http_status": pl.Int64,
    "error_code": pl.Int64,
    "error_message": pl.String,
    "changes": pl.String,
    "request_id": pl.String,
    "correlation_id": pl.String,
    "attempts": pl.Int64,
    "elapsed_ms": pl.Int64,
}
PLAN_SCHEMA = {
    ROW: pl.Int64,
    "plan": pl.String,
    "changes": pl.String,
    "reason": pl.String,
    "request_id": pl.String,
}
Held = dict[tuple[str, int], str]  # (kind, row) -> why a valid row is kept back
SHOWN = ("change", "ok", "accepted")  # the rows whose before and after columns are filled
LINE = re.compile(r"^lineItems\[(\d+)\]\.(.+)$")


def _held(held: Held, kind: str) -> list[tuple[int, str]]:
    return [(row, why) for (k, row), why in held.items() if k == kind]


def plan_rows(part: Checked, entries: list[dict[str, Any]], held: Held) -> pl.DataFrame:
    """ROW, outcome (`change`, `no_change`, `conflict`, `would_fail`, or check's verdict),
    changes in the sheet's words, errors (or warnings), request_id, and the before and after
    columns, for every row of a checked sheet."""
    kind = part.sheet.kind
    name = spelled(part.sheet)
    mine = [e for e in entries if e["change"]["kind"] == kind]
    planned = pl.DataFrame(
        [
            {
                ROW: row,
                "plan": e["outcome"],
                "changes": in_words(e.get("diffs") or {}, name),
                "reason": e.get("error") or "; ".join(e.get("warnings") or []),
                "request_id": e["change"]["request_id"],
            }
            for e in mine
            for row in e["change"]["rows"]
        ],
        schema=PLAN_SCHEMA,
    )
    kept = pl.DataFrame(
        _held(held, kind), schema={ROW: pl.Int64, "reason": pl.String}, orient="row"
    )
    rows = (
        part.outcomes.join(planned, on=ROW, how="left")
        .join(kept, on=ROW, how="left", suffix="_held")
        .select(
            ROW,
            pl.coalesce(
                "plan",
                pl.when(pl.col("outcome") == "valid")
                .then(pl.lit("would_fail"))
                .otherwise("outcome"),
            ).alias("outcome"),
            pl.coalesce("errors", "reason", "reason_held", pl.lit("")).alias("errors"),
            pl.col("changes").fill_null(""),
            pl.col("request_id").fill_null(""),
        )
    )
    shown = [(e["change"], e["outcome"], e.get("diffs") or {}) for e in mine]
    return _beside(rows, before_after(shown, name), "changes")


def result_rows(
    part: Checked, results: list[tuple[dict[str, Any], dict[str, Any]]], held: Held
) -> pl.DataFrame:
    """ROW and the result columns: a change's result on each of its rows (`results`: the
    change's `rows` and `lines`, and the result's fields), check's verdict on the others; the
    changes in the sheet's words, and the before and after columns of what was applied."""
    kind = part.sheet.kind
    name = spelled(part.sheet)
    rows = [
        {
            ROW: row,
            **{k: v for k, v in result.items() if k in RESULT_SCHEMA},
            "changes": in_words(result.get("diffs") or {}, name),
        }
        for change, result in results
        for row in change["rows"]
    ]
    rows += [
        {ROW: row, "outcome": "invalid", "error_message": why} for row, why in _held(held, kind)
    ]
    sent = pl.DataFrame(rows, schema={ROW: pl.Int64, **RESULT_SCHEMA})
    table = part.outcomes.join(sent, on=ROW, how="left", suffix="_sent").select(
        ROW,
        pl.coalesce(
            "outcome_sent",
            pl.when(pl.col("outcome") == "valid").then(pl.lit("not_sent")).otherwise("outcome"),
        ).alias("outcome"),
        pl.coalesce("errors", "error_message", pl.lit("")).alias("error_message"),
        pl.col("changes").fill_null(""),
        # then what a support ticket needs (a printed report stops before these)
        "http_status",
        "error_code",
        *[
            pl.col(c).fill_null("") if RESULT_SCHEMA[c] == pl.String else pl.col(c)
            for c in ("request_id", "correlation_id", "attempts", "elapsed_ms")
        ],
    )
    shown = [(c, r["outcome"], r.get("diffs") or {}) for c, r in results]
    return _beside(table, before_after(shown, name), "changes")


def spelled(sheet: Sheet) -> Callable[[str], str]:
    """How `sheet` names a changed field: its own header for the field, else plain words
    (`lineItems[2].quantity` is the line's `Quantity`: each line item has its own row)."""
    headers = {c.field.name: c.header for c in sheet.columns if c.field and c.field.changes}

    def name(key: str) -> str:
        line = LINE.match(key)
        base = f"lineItems.{line.group(2)}" if line else key
        own = PLAIN.get(base.removeprefix("lineItems."))
        return headers.get(base) or (_capital(own) if own else _words(sheet, base))

    return name


def _words(sheet: Sheet, name: str) -> str:
    """A catalog field in the words its first spelling gives (`next term quantity`), or its
    API name in plain words."""
    try:
        aliases = catalog_field(sheet.kind, name).aliases
    except KeyError:
        aliases = ()
    return _capital(aliases[0] if aliases else plain(name))


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def shown(value: Any) -> str:
    """A value as a finance user reads it in a cell: TRUE/FALSE, renewal changes in words."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dict):
        return scheduled_words(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def in_words(diffs: dict[str, Any], name: Callable[[str], str]) -> str:
    """`Seats: 10 -> 12; Auto renew: TRUE -> FALSE`, named as the sheet names them."""
    return "; ".join(f"{name(k)}: {shown(b)} -> {shown(a)}" for k, (b, a) in diffs.items())


def before_after(
    changes: list[tuple[dict[str, Any], str, dict[str, Any]]], name: Callable[[str], str]
) -> pl.DataFrame:
    """ROW, then `<field> before` and `<field> after` for each field a change that was (or
    would be) made sets: on the row of its line item for an order's lines, on every row of the
    change otherwise. Numbers stay numbers, so seat changes can be summed."""
    cells: dict[str, dict[int, Any]] = {}
    for change, outcome, diffs in changes:
        if outcome not in SHOWN:
            continue
        rows = change["rows"]
        by_line = {
            str(line.get("lineItemNumber")): row
            for row, line in zip(rows, change.get("lines") or [], strict=False)
        }
        for key, (before, after) in diffs.items():
            if isinstance(before, dict | list) or isinstance(after, dict | list):
                continue  # whole renewal instructions: told in `changes`
            line = LINE.match(key)
            at = [by_line[line.group(1)]] if line and line.group(1) in by_line else rows
            for row in at:
                cells.setdefault(f"{name(key)} before", {})[row] = before
                cells.setdefault(f"{name(key)} after", {})[row] = after
    every = sorted({row for values in cells.values() for row in values})
    return pl.DataFrame(
        [pl.Series(ROW, every, pl.Int64)]
        + [_typed(column, [values.get(row) for row in every]) for column, values in cells.items()]
    )


def _typed(column: str, values: list[Any]) -> pl.Series:
    """Integers, decimals and booleans as such; anything mixed as text."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool} or kinds <= {int} or kinds <= {int, float}:
        return pl.Series(column, values, strict=False)
    return pl.Series(column, [None if v is None else shown(v) for v in values], pl.String)


def _beside(table: pl.DataFrame, extra: pl.DataFrame, after: str) -> pl.DataFrame:
    """`table` with `extra`'s columns (keyed by ROW) placed right after its column `after`."""
    if extra.width <= 1:
        return table
    joined = table.join(extra, on=ROW, how="left", maintain_order="left")
    at = table.columns.index(after) + 1
    names = [*table.columns[:at], *extra.columns[1:], *table.columns[at:]]
    return joined.select(names)


def outcome_counts(frames: list[pl.DataFrame], outcomes: tuple[str, ...] = ()) -> dict[str, int]:
    """Rows per outcome over `frames` (each with an `outcome` column); `outcomes` always shown."""
    found = (
        pl.concat([f.select("outcome") for f in frames]).group_by("outcome").len()
        if frames
        else pl.DataFrame(schema={"outcome": pl.String, "len": pl.UInt32})
    )
    counted = dict(found.sort("outcome").iter_rows())
    return {**dict.fromkeys(outcomes, 0), **counted}


def _subscription_entries(entries: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per subscription change that was read: customer, offer, outcome, seats."""
    return pl.DataFrame(
        [
            {
                "customer_id": e["change"]["customer_id"].lower(),
                "offer": e["before"].get("offerName") or e["before"].get("offerId") or "?",
                "outcome": e["outcome"],
                "seats_before": e["before"].get("quantity", 0),
                "seats_after": e["body"].get("quantity", 0)
                if e["outcome"] == "change"
                else e["before"].get("quantity", 0),
                "status_after": (e.get("diffs") or {}).get("status", [None, None])[1],
            }
            for e in entries
            if e["change"]["kind"] == "subscriptions" and "before" in e
        ],
        schema={
            "customer_id": pl.String,
            "offer": pl.String,
            "outcome": pl.String,
            "seats_before": pl.Int64,
            "seats_after": pl.Int64,
            "status_after": pl.String,
        },
    )


def seat_totals(entries: list[dict[str, Any]]) -> pl.DataFrame:
    """Seats before and after per customer and offer, over the subscriptions read."""
    return _seats(_subscription_entries(entries))


def seats_applied(applied: list[tuple[str, str, Any, Any]]) -> pl.DataFrame:
    """Seats added and removed per customer and offer by the changes applied (`applied`:
    customer id, offer, quantity before, after)."""
    frame = pl.DataFrame(
        applied,
        schema={
            "customer_id": pl.String,
            "offer": pl.String,
            "seats_before": pl.Int64,
            "seats_after": pl.Int64,
        },
        orient="row",
    )
    return _seats(frame.with_columns(pl.col("customer_id").str.to_lowercase()))


def _seats(frame: pl.DataFrame) -> pl.DataFrame:
    change = pl.col("seats_after") - pl.col("seats_before")
    return (
        frame.group_by("customer_id", "offer", maintain_order=True)
        .agg(
            pl.len().alias("subscriptions"),
            pl.sum("seats_before"),
            pl.sum("seats_after"),
            change.clip(lower_bound=0).sum().alias("added"),
            (-change).clip(lower_bound=0).sum().alias("removed"),
        )
        .with_columns((pl.col("seats_after") - pl.col("seats_before")).alias("change"))
    )


@dataclass
class Preview:
    """What a run would do, read from the current state: shown before a live run."""

    rows: dict[str, int]
    changes: int = 0
    unchanged: int = 0
    would_fail: int = 0
    conflicts: int = 0
    renewals_removed: int = 0
    customers: int = 0
    seats: dict[str, int] = field(default_factory=dict)
    suspensions: int = 0
    cancellations: int = 0

    def lines(self) -> list[str]:
        rows = ", ".join(f"{n} {o}" for o, n in self.rows.items())
        seats = "; ".join(f"{offer}: {n:+d}" for offer, n in sorted(self.seats.items())) or "none"
        return [
            f"Rows: {rows}.",
            f"Changes: {self.changes} to send for {plural(self.customers, 'customer')}, "
            f"{self.unchanged} no_change, {self.would_fail} would_fail, {self.conflicts} "
            "conflict (the sheet's expected values differ: not sent).",
            f"Seat changes by offer: {seats}.",
            f"Set apart: {plural(self.suspensions, 'suspension')}, "
            f"{plural(self.cancellations, 'cancellation')}.",
            f"Renewal changes removed: {plural(self.renewals_removed, 'subscription')} (a seat or "
            "billing "
            "change deletes the changes scheduled for their renewal).",
        ]


def plural(n: int, word: str) -> str:
    """`1 row`, `2 rows`: counts in words people write."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fix_note(stem: str, outcomes: pl.DataFrame, path: Path) -> str:
    """What to do with the rows in the to-fix file `path`, by why they did not go (`outcomes`:
    the run's `outcome` column): each kind of row has its own next step."""
    bad = outcomes.filter(pl.col("outcome").is_in(FIX))
    counts: dict[str, int] = dict(bad.group_by("outcome").len().iter_rows())
    rows = plural(sum(counts.values()), "row")
    if stem == "check":
        return f"{rows} to fix: they are in {path}, each with its reason; fix them and check again."
    advice = []
    if counts.keys() & {"invalid", "failed", "would_fail"}:
        advice.append("fix the invalid or refused ones there and apply that file as it is")
    if "conflict" in counts:
        advice.append(
            "rows in conflict expect values Partner Center no longer holds: export again (or "
            "update their expected columns) before sending them"
        )
    if "not_sent" in counts:
        advice.append("rows not sent go with a resume of this run, not with that file")
    said = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    went = "would not go" if stem == "plan" else "did not go"  # a plan sends nothing
    return f"{rows} {went} ({said}): they are in {path}; " + "; ".join(advice) + "."


def preview(rows: dict[str, int], entries: list[dict[str, Any]]) -> Preview:
    """Count what the plan entries would change (`rows`: the sheet's rows by check outcome)."""
    verdicts = pl.DataFrame(
        {
            "outcome": [e["outcome"] for e in entries],
            "customer_id": [e["change"]["customer_id"].lower() for e in entries],
        },
        schema={"outcome": pl.String, "customer_id": pl.String},
    )
    counts = outcome_counts([verdicts], ("change", "no_change", "conflict", "would_fail"))
    subs = _subscription_entries(entries).filter(pl.col("outcome") == "change")
    seats = (
        subs.filter(pl.col("seats_after") != pl.col("seats_before"))
        .group_by("offer")
        .agg((pl.col("seats_after") - pl.col("seats_before")).sum())
    )
    return Preview(
        rows,
        changes=counts["change"],
        unchanged=counts["no_change"],
        would_fail=counts["would_fail"],
        conflicts=counts["conflict"],
        renewals_removed=sum(bool(e.get("warnings")) for e in entries),
        customers=verdicts.filter(pl.col("outcome") == "change")["customer_id"].n_unique(),
        seats=dict(seats.iter_rows()),
        suspensions=subs.filter(pl.col("status_after") == "suspended").height,
        cancellations=subs.filter(pl.col("status_after").is_in(["deleted", "cancelled"])).height,
    )
