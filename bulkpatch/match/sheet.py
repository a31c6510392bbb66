"""The rows to match, as the matching joins take them, and the matched sheet they give back.

`asked` reads a checked sheet's rows without ids (`check.needs`): their company, domain, offer
cells, friendly name and term. `matched` is the user's sheet with `Customer ID` and
`Subscription ID` filled in (columns added at the end when it had none) and a `Matched by`
column; a row that stops carries its problem as an issue, so checking the matched sheet again
makes it `invalid` with the message. That sheet is what `matched.csv` holds: a valid input,
its ids keep it from being matched again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from bulkpatch.catalog.fields import MATCHED_BY, field
from bulkpatch.check.needs import stand_ins, wanting
from bulkpatch.load.codes import rule
from bulkpatch.load.sheet import ISSUE_SCHEMA, ROW, Column, Sheet, cleaned
from bulkpatch.match.found import CANDIDATES

NOT_MATCHED = "not matched"
MOVED = "match.moved"  # a plan's row whose names now match other ids (`moves`)
NOT_PLANNED = "match.not_planned"  # a resume's row its plan found no ids for (`recorded`)
# Each code a row that stops may get, with its rule words.
RULES = {
    code: rule(code)
    for code in (
        "match.no_customer",
        "match.customers_alike",
        "match.no_subscription",
        "match.subscriptions_alike",
        NOT_PLANNED,
    )
}
_PARTS = {
    "company": "match:company",
    "domain": "match:domain",
    "customer_id": "customer_id",
    "subscription_id": "subscription_id",
    "term": "termDuration",
}


def asked(sheet: Sheet) -> tuple[pl.DataFrame, dict[str, str]]:
    """ROW, company, domain, customer_id, subscription_id, offers (a list), friendly, term,
    wants_customer, wants_subscription: the rows a match must complete; and the
    sheet's header for each part (match field or part -> header), for the messages."""
    wanted = wanting(sheet)
    offers = stand_ins(sheet).get("subscription_id", [])
    friendly = [
        c.name for n in ("current:friendlyName", "friendlyName") if (c := sheet.column_for(n))
    ]
    columns = {part: sheet.column_for(name) for part, name in _PARTS.items()}
    names = [c.name for c in columns.values() if c] + offers + friendly
    text = cleaned(sheet, list(dict.fromkeys(names)))

    def cell(part: str) -> pl.Expr:
        c = columns[part]
        return (pl.col(c.name) if c else pl.lit(None, pl.String)).alias(part)

    key = [
        pl.col(c.name).str.to_lowercase().str.strip_chars("{}").alias(p)
        if (c := columns[p])
        else pl.lit(None, pl.String).alias(p)
        for p in ("customer_id", "subscription_id")
    ]
    none = pl.lit(False)
    frame = text.select(
        ROW,
        cell("company"),
        cell("domain"),
        *key,
        pl.concat_list([pl.col(n) for n in offers] or [pl.lit(None, pl.String)])
        .list.drop_nulls()
        .alias("offers"),
        (pl.coalesce(friendly) if friendly else pl.lit(None, pl.String)).alias("friendly"),
        cell("term"),
        wanted.get("customer_id", none).alias("wants_customer"),
        wanted.get("subscription_id", none).alias("wants_subscription"),
    )
    headers = {p: c.header for p, c in columns.items() if c}
    headers |= {n: c.header for p, n in _PARTS.items() if (c := columns[p])}
    if offers:
        headers["offer"] = next(c.header for c in sheet.columns if c.name == offers[0])
        headers["offers"] = " and ".join(c.header for c in sheet.columns if c.name in offers)
    if friendly:
        headers["friendly"] = next(c.header for c in sheet.columns if c.name == friendly[0])
    return frame.filter(pl.col("wants_customer") | pl.col("wants_subscription")), headers


# What `found` holds for a row: the ids it found (null: given, or not found) and how.
FOUND = {
    ROW: pl.Int64,
    "customer_id": pl.String,
    "customer_by": pl.String,
    "subscription_id": pl.String,
    "subscription_by": pl.String,
    "code": pl.String,
    "column": pl.String,
    "message": pl.String,
    "asked": pl.String,  # for a row that stops: the value it asked,
    "tell": pl.String,  # the column that would tell its candidates apart,
    "candidates": CANDIDATES,  # them (found.CANDIDATE),
    "closest": CANDIDATES,  # or the closest (a suggestion, never used)
}


def way() -> pl.Expr:
    """How a row of FOUND was matched, in the words `Matched by` and the CLI say:
    `name + offer`, `id + offer and friendly name` (a part the row gave is `id`)."""
    return pl.concat_str(
        pl.col("customer_by").fill_null("id"),
        pl.lit(" + "),
        pl.col("subscription_by").fill_null("id"),
    )


def matched(sheet: Sheet, found: pl.DataFrame) -> Sheet:
    """`sheet` with the ids `found` (FOUND) filled in, `Matched by` said for every row, and
    the rows that stop carrying their problem."""
    columns, frame = list(sheet.columns), sheet.frame
    for name in ("customer_id", "subscription_id"):
        if sheet.column_for(name) is None:
            f = field(sheet.kind, name)
            columns.append(Column(name, f.label, f))
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    by = sheet.column_for(MATCHED_BY.name)
    if by is None:
        by = Column(MATCHED_BY.name, MATCHED_BY.label, MATCHED_BY)
        columns.append(by)
        frame = frame.with_columns(pl.lit(None, pl.String).alias(by.name))
    ways = found.select(
        ROW, "customer_id", "customer_by", "subscription_id", "subscription_by", "code"
    )
    joined = frame.join(ways, on=ROW, how="left", maintain_order="left", suffix=":found")
    filled = [
        pl.coalesce(pl.col(c.name).replace("", None), pl.col(f"{n}:found")).alias(c.name)
        for n in ("customer_id", "subscription_id")
        if (c := next(c for c in columns if c.field and c.field.name == n))
    ]
    said = (
        pl.when(pl.col("code").is_not_null())
        .then(pl.lit(NOT_MATCHED))
        .when(pl.col("customer_by").is_null() & pl.col("subscription_by").is_null())
        .then(pl.coalesce(pl.col(by.name).replace("", None), pl.lit("id")))
        .otherwise(way())
        .alias(by.name)
    )
    frame = joined.with_columns(*filled, said).select(
        sheet.frame.columns + [c.name for c in columns if c.name not in sheet.frame.columns]
    )
    stopped = found.filter(pl.col("code").is_not_null())
    issues = stopped.select(
        pl.col(ROW).alias("row"),
        "column",
        pl.col("asked").fill_null("").alias("value"),  # what the row asked, as it wrote it
        "code",
        pl.col("code").replace_strict(RULES, return_dtype=pl.String).alias("rule"),
        "message",
    )
    return dataclasses.replace(
        sheet,
        columns=columns,
        frame=frame,
        issues=pl.concat([sheet.issues, issues.cast(ISSUE_SCHEMA)]),
    )


def moves(sheet: Sheet, found: pl.DataFrame, planned: list[dict[str, Any]]) -> list[str]:
    """The rows of a matched sheet whose ids are not those `planned` (a plan's changes)
    recorded for them, in words with their code (MOVED)."""
    recorded = {
        row: (c["customer_id"].lower(), c["resource_id"].lower())
        for c in planned
        if c["kind"] == sheet.kind
        for row in c["rows"]
    }
    ids = [sheet.column_for(n) for n in ("customer_id", "subscription_id")]
    now = sheet.frame.join(found.select(ROW), on=ROW).select(
        ROW, *(pl.col(c.name).str.to_lowercase().fill_null("") for c in ids if c)
    )
    said = []
    for row, customer, sub in now.iter_rows():
        before = recorded.get(row)
        if before is not None and before != (customer, sub):
            said.append(
                f"row {row} ({MOVED}): planned subscription {before[1]}, now {sub or 'none'}"
            )
    return said


def recorded(sheet: Sheet, wanted: pl.DataFrame, ids: pl.DataFrame) -> pl.DataFrame:
    """FOUND for a resumed run: the rows to match (`wanted`, ROW) with the ids its plan
    recorded (`ids`: ROW, customer_id, subscription_id); a row the plan found none for stops
    (NOT_PLANNED), as it did when planned."""
    first = next((c.header for c in sheet.columns if c.field and c.field.role == "match"), "")
    found = wanted.select(ROW).join(ids, on=ROW, how="left")
    stops = pl.col("subscription_id").is_null()
    return found.select(
        ROW,
        "customer_id",
        pl.when(~stops).then(pl.lit("plan")).alias("customer_by"),
        "subscription_id",
        pl.when(~stops).then(pl.lit("plan")).alias("subscription_by"),
        pl.when(stops).then(pl.lit(NOT_PLANNED)).alias("code"),
        pl.when(stops).then(pl.lit(first or "Customer")).alias("column"),
        pl.when(stops)
        .then(
            pl.lit(
                "has no change in this run's plan (it found no ids, or asked nothing, when "
                "planned): the run sends nothing for it; plan the sheet again to match it"
            )
        )
        .alias("message"),
        *(pl.lit(None, FOUND[n]).alias(n) for n in ("asked", "tell", "candidates", "closest")),
    ).cast(FOUND)
