"""The per-row and summary tables of a run, pure Polars, for the report writers beside them.

`plan_rows` and `result_rows` give each sheet row its verdict (joined to the user's own
columns by `report.table`); `seat_totals` and `preview` sum the plan entries (one per change:
what was read, what would be sent, and the assessment's verdict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from bulkpatch.check import Checked
from bulkpatch.plan import describe
from bulkpatch.sheet import ROW

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
RESULT_OUTCOMES = ("ok", "accepted", "no_change", "invalid", "conflict", "failed", "not_sent")
PLAN_SCHEMA = {
    ROW: pl.Int64,
    "plan": pl.String,
    "changes": pl.String,
    "reason": pl.String,
    "request_id": pl.String,
}
Held = dict[tuple[str, int], str]  # (kind, row) -> why a valid row is kept back


def _held(held: Held, kind: str) -> list[tuple[int, str]]:
    return [(row, why) for (k, row), why in held.items() if k == kind]


def plan_rows(part: Checked, entries: list[dict[str, Any]], held: Held) -> pl.DataFrame:
    """ROW, outcome (`change`, `no_change`, `conflict`, `would_fail`, or check's verdict),
    changes, errors (or warnings) and request_id for every row of a checked sheet."""
    kind = part.sheet.kind
    planned = pl.DataFrame(
        [
            {
                ROW: row,
                "plan": e["outcome"],
                "changes": describe(e.get("diffs") or {}),
                "reason": e.get("error") or "; ".join(e.get("warnings") or []),
                "request_id": e["change"]["request_id"],
            }
            for e in entries
            if e["change"]["kind"] == kind
            for row in e["change"]["rows"]
        ],
        schema=PLAN_SCHEMA,
    )
    kept = pl.DataFrame(
        _held(held, kind), schema={ROW: pl.Int64, "reason": pl.String}, orient="row"
    )
    return (
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
            pl.col("changes").fill_null(""),
            pl.coalesce("errors", "reason", "reason_held", pl.lit("")).alias("errors"),
            pl.col("request_id").fill_null(""),
        )
    )


def result_rows(part: Checked, results: list[tuple[list[int], dict]], held: Held) -> pl.DataFrame:
    """ROW and the result columns: a change's result (`results`: its rows and the result's
    fields) on each of its rows, check's verdict on the others."""
    kind = part.sheet.kind
    rows = [
        {ROW: row, **{k: v for k, v in result.items() if k in RESULT_SCHEMA}}
        for rows_of, result in results
        for row in rows_of
    ]
    rows += [
        {ROW: row, "outcome": "invalid", "error_message": why} for row, why in _held(held, kind)
    ]
    sent = pl.DataFrame(rows, schema={ROW: pl.Int64, **RESULT_SCHEMA})
    return part.outcomes.join(sent, on=ROW, how="left", suffix="_sent").select(
        ROW,
        pl.coalesce(
            "outcome_sent",
            pl.when(pl.col("outcome") == "valid").then(pl.lit("not_sent")).otherwise("outcome"),
        ).alias("outcome"),
        "http_status",
        "error_code",
        pl.coalesce("errors", "error_message", pl.lit("")).alias("error_message"),
        *[
            pl.col(c).fill_null("") if RESULT_SCHEMA[c] == pl.String else pl.col(c)
            for c in ("changes", "request_id", "correlation_id", "attempts", "elapsed_ms")
        ],
    )


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
    return (
        _subscription_entries(entries)
        .group_by("customer_id", "offer", maintain_order=True)
        .agg(pl.sum("seats_before"), pl.sum("seats_after"), pl.len().alias("subscriptions"))
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
        rows = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in self.rows.items())
        seats = "; ".join(f"{offer}: {n:+d}" for offer, n in sorted(self.seats.items())) or "none"
        return [
            f"Rows: {rows}.",
            f"Changes: {self.changes} to send for {plural(self.customers, 'customer')}, "
            f"{self.unchanged} "
            f"already done, {self.would_fail} would fail, {self.conflicts} in conflict with "
            "the sheet's expected values (not sent).",
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
