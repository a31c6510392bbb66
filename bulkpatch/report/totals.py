"""Sums over a run's changes, pure Polars: seats before and after per customer and offer (as
planned, or as applied), and the preview a live run shows before it sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from bulkpatch.catalog.fields import normalize_header
from bulkpatch.load.sheet import Sheet, clean
from bulkpatch.report.rows import outcome_counts
from bulkpatch.report.words import plural


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


# Headers a sheet names its customers by (an export writes `Customer`): a note, never sent.
NAME_HEADERS = frozenset({"customer", "customername", "company", "companyname"})


def customer_names(sheets: list[Sheet]) -> dict[str, str]:
    """Customer id (lower case) -> the name the sheets give it in a `Customer` column, so the
    seats tables name customers as the sheet does, the tenant id beside."""
    found: dict[str, str] = {}
    for sheet in sheets:
        ids = sheet.column_for("customer_id")
        named = next(
            (
                c
                for c in sheet.columns
                if (c.field and c.field.name == "match:company")
                or (not c.field and normalize_header(c.header) in NAME_HEADERS)
            ),
            None,
        )
        if ids is None or named is None:
            continue
        pairs = sheet.frame.select(
            clean(ids.name).str.to_lowercase().alias("id"), clean(named.name).alias("name")
        ).drop_nulls()
        for key, name in pairs.unique("id", keep="first", maintain_order=True).iter_rows():
            found.setdefault(key, name)
    return found


def seat_totals(entries: list[dict[str, Any]], names: dict[str, str] | None = None) -> pl.DataFrame:
    """Seats before and after per customer and offer, over the subscriptions read."""
    return _seats(_subscription_entries(entries), names or {})


def seats_applied(
    applied: list[tuple[str, str, Any, Any]], names: dict[str, str] | None = None
) -> pl.DataFrame:
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
    return _seats(frame.with_columns(pl.col("customer_id").str.to_lowercase()), names or {})


def _seats(frame: pl.DataFrame, names: dict[str, str]) -> pl.DataFrame:
    """Per customer (its name from the sheet, when it gives one; its tenant id after) and
    offer: subscriptions, seats before and after, added, removed, change."""
    change = pl.col("seats_after") - pl.col("seats_before")
    named = pl.col("customer_id").replace_strict(names, default="", return_dtype=pl.String)
    totals = (
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
    return totals.select(named.alias("customer"), pl.all())


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
