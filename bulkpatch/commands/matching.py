"""Matching in a run: the reads it needs, the matched sheets checked again, and what is shown.

A sheet with rows to match (`check.needs`) is read against once: the customer list when a
row names its customer by name or domain, then one subscription list per customer a row
names, kept for the read-modify-write reads (README, "Matching"). Each matched sheet is
checked again, exactly as a sheet with ids. `apply --plan` matches again from fresh reads and
refuses a plan whose rows now match other ids; a resume takes the ids its plan recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.check.checker import Checked, check
from bulkpatch.errors import InputError
from bulkpatch.load.sheet import ROW
from bulkpatch.match.customers import match_customers
from bulkpatch.match.found import customers_frame, subscriptions_frame
from bulkpatch.match.sheet import FOUND, NOT_MATCHED, RULES, asked, matched, moves, way
from bulkpatch.match.sheet import recorded as recorded_ids
from bulkpatch.match.subscriptions import match_subscriptions

if TYPE_CHECKING:
    from bulkpatch.apply.session import Session
    from bulkpatch.network.calls import Reply
    from bulkpatch.plan.changes import Change


def needs_matching(parts: list[Checked]) -> bool:
    """Does any sheet have rows whose ids a match must find?"""
    return any(p.matching.height for p in parts)


def match_parts(parts: list[Checked], session: Session) -> tuple[list[Checked], dict[str, Reply]]:
    """The sheets with their rows matched and checked again, and the subscription lists read
    (by customer id: the run's reads of those customers)."""
    from bulkpatch.apply.lookup import listed_items, read_customers, read_lists

    asks = [asked(p.sheet) if p.matching.height else None for p in parts]
    wanting = [a for a in asks if a is not None]
    customers = None
    if any(a.get_column("wants_customer").any() for a, _ in wanting):
        customers = customers_frame(read_customers(session))
    found_customers = [
        match_customers(a.filter(pl.col("wants_customer")), customers, h)
        if customers is not None
        else None
        for a, h in wanting
    ]
    known = [_with_customers(a, c) for (a, _), c in zip(wanting, found_customers, strict=True)]
    ids = pl.concat([k.filter(pl.col("wants_subscription")).select("customer_id") for k in known])
    replies = read_lists(session, sorted(set(ids.drop_nulls().get_column("customer_id"))))
    items, unread = listed_items(replies)
    subs = subscriptions_frame(items)
    done, i = [], 0
    for part, ask in zip(parts, asks, strict=True):
        if ask is None:
            done.append(part)
            continue
        k, headers = known[i], wanting[i][1]
        to_find = k.filter(pl.col("wants_subscription") & pl.col("customer_id").is_not_null())
        found_subs = match_subscriptions(to_find, subs, headers, unread)
        done.append(_rechecked(part, _found(k, found_customers[i], found_subs)))
        i += 1
    return done, replies


def _with_customers(ask: pl.DataFrame, found: pl.DataFrame | None) -> pl.DataFrame:
    """The asked rows with the customer each found (the given id where it had one)."""
    if found is None:
        return ask
    ids = found.select(ROW, pl.col("customer_id").alias("found"))
    joined = ask.join(ids, on=ROW, how="left")
    return joined.with_columns(pl.coalesce("customer_id", "found").alias("customer_id"))


def _found(known: pl.DataFrame, customers: pl.DataFrame | None, subs: pl.DataFrame) -> pl.DataFrame:
    """FOUND: per asked row, the ids found and how, or the first problem that stopped it."""
    frame = known.select(ROW)
    if customers is not None:
        frame = frame.join(customers, on=ROW, how="left")
    else:
        # every customer given by id: none found, no problem yet (the subscriptions' follow)
        given = [n for n in FOUND if n not in (ROW, "subscription_id", "subscription_by")]
        frame = frame.with_columns(pl.lit(None, FOUND[n]).alias(n) for n in given)
    frame = frame.join(subs, on=ROW, how="left", suffix=":s")
    return frame.select(
        ROW,
        pl.col("customer_id").cast(pl.String),
        pl.col("customer_by").cast(pl.String),
        "subscription_id",
        "subscription_by",
        *(pl.coalesce(n, f"{n}:s").cast(FOUND[n]).alias(n) for n in list(FOUND)[5:]),
    )


def _rechecked(part: Checked, found: pl.DataFrame) -> Checked:
    again = check(matched(part.sheet, found))
    again.found = found
    return again


def recorded(parts: list[Checked], changes: list[Change]) -> list[Checked]:
    """The sheets with the ids their plan recorded (a resume: no reads, nothing moves)."""
    done = []
    for part in parts:
        if not part.matching.height:
            done.append(part)
            continue
        rows = [
            (row, c.customer_id, c.resource_id)
            for c in changes
            if c.kind == part.sheet.kind
            for row in c.rows
        ]
        ids = pl.DataFrame(rows, schema=[ROW, "customer_id", "subscription_id"], orient="row")
        found = recorded_ids(part.sheet, part.matching, ids)
        done.append(_rechecked(part, found))
    return done


def moved(parts: list[Checked], planned: list[dict[str, Any]]) -> None:
    """Refuse a plan whose matched rows now match other ids (InputError naming each row)."""
    said = [
        line
        for part in parts
        if part.found is not None
        for line in moves(part.sheet, part.found, planned)
    ]
    if said:
        raise InputError(
            "the plan's names now match other subscriptions: "
            + "; ".join(said[:10])
            + ". Nothing was sent: plan the sheet again and check what it matches."
        )


def ways(found: pl.DataFrame) -> list[tuple[str, int]]:
    """The rows of `found` (FOUND) that matched, counted by how (`match.sheet.way`: the
    words of `Matched by`), most first."""
    ok = found.filter(pl.col("code").is_null())
    counted = ok.group_by(way().alias("by")).len().sort(["len", "by"], descending=[True, False])
    return [(by, n) for by, n in counted.rows()]


def counted(part: Checked) -> list[tuple[str, int]]:
    """A matched sheet's rows by how they were matched, in `Matched by`'s words: each way
    (`ways`), `id` (rows that gave their ids), then `not matched`."""
    if part.found is None:
        return []
    found = part.found
    stops = found.filter(pl.col("code").is_not_null()).height
    given = part.sheet.frame.height - found.height
    return ways(found) + [(w, n) for w, n in (("id", given), (NOT_MATCHED, stops)) if n]


def shown(parts: list[Checked], most: int = 10) -> list[str]:
    """How the rows without ids were matched, in words: a count by way, then the first
    `most` rows (`row 2: by name + offer: customer ..., subscription ...`)."""
    lines = []
    for part in parts:
        if part.found is None:
            continue
        found = part.found
        ok = found.filter(pl.col("code").is_null())
        counted = ", ".join(f"{n} by {by}" for by, n in ways(found))
        lines.append(
            f"Matched {ok.height} of {found.height} rows without ids in {part.sheet.label}"
            + (f" ({counted})" if counted else "")
            + (f"; {found.height - ok.height} not matched" if found.height > ok.height else "")
        )
        for row, c, cb, s, sb in ok.select(ROW, *list(FOUND)[1:5]).head(most).iter_rows():
            lines.append(
                f"  row {row}: by {cb or 'id'} + {sb or 'id'}: customer {c or 'as given'}, "
                f"subscription {s or 'as given'}"
            )
        if ok.height > most:
            lines.append(f"  ... and {ok.height - most} more in matched.csv")
    return lines


def stopped(part: Checked) -> pl.DataFrame:
    """The rows matching stopped, each with what it asked, why (code, rule, message), the
    column that would tell its candidates apart, them, or the closest (FOUND's columns): what
    the CLI prints and `--json` carries of them, as a frame to show a page of."""
    assert part.found is not None
    rows = part.found.filter(pl.col("code").is_not_null()).sort(ROW)
    rule = pl.col("code").replace_strict(RULES, return_dtype=pl.String).alias("rule")
    shown = ("message", "tell", "candidates", "closest")
    return rows.select(pl.col(ROW).alias("row"), "column", "asked", "code", rule, *shown)


def matching_json(part: Checked) -> list[dict[str, Any]]:
    """`--json`'s `matching`: per row matched this run, how, the ids, or why not."""
    if part.found is None:
        return []
    return part.found.rename({ROW: "row"}).to_dicts()
