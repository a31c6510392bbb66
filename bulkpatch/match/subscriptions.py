"""Which subscription a row names by offer, within its customer: a join with the lists read.

A row's offer cells (`Product`, `Offer`, `SKU`, `Offer name`, `Offer ID`) each match a
subscription's `offerName` (folded) or its `offerId` (the id, or its first parts: `CFQ7TTC0LH18`
and `CFQ7TTC0LH18:0001` both name `CFQ7TTC0LH18:0001:CFQ7TTC0KDLJ`). Only subscriptions that can
still change are candidates, active and suspended ones ("Subscription lifecycle states",
https://learn.microsoft.com/partner-center/customers/subscription-lifecycle: an expired or
disabled one has ended, and only a suspended one is reactivated), also when the row asks for
`active`; a row naming only an ended one is told so. Several candidates are told apart by the
row's friendly name, then its term; still several, the row stops listing each.
"""

from __future__ import annotations

import difflib

import polars as pl

from bulkpatch.load.sheet import ROW
from bulkpatch.match.fold import fold, fold_text
from bulkpatch.match.found import CANDIDATES, subscription_candidate

LIVE = ("active", "suspended")
RESULT = {
    ROW: pl.Int64,
    "subscription_id": pl.String,
    "subscription_by": pl.String,
    "code": pl.String,
    "column": pl.String,
    "message": pl.String,
    "asked": pl.String,  # for a row that stops (as `customers.RESULT`): the offer it asked,
    "tell": pl.String,  # the column that would tell its candidates apart,
    "candidates": CANDIDATES,  # them,
    "closest": CANDIDATES,  # or the subscriptions of the closest offer the customer has
}


def match_subscriptions(
    asked: pl.DataFrame, subs: pl.DataFrame, headers: dict[str, str], unread: dict[str, str]
) -> pl.DataFrame:
    """RESULT for the rows of `asked` (ROW, customer_id, offers, friendly, term)
    whose customer is known and subscription id is not; `subs`: `found.subscriptions_frame`;
    `unread`: customer id -> why its list could not be read."""
    named = _named(asked, subs)
    hits = _hits(asked, subs, named)
    chosen = _chosen(hits)
    one = chosen.select(
        ROW,
        "subscription_id",
        "subscription_by",
        *(pl.lit(None, RESULT[n]).alias(n) for n in list(RESULT)[3:]),
    )
    stopped = asked.join(chosen.select(ROW), on=ROW, how="anti")
    said = [_stopped(r, hits, named, subs, headers, unread) for r in stopped.to_dicts()]
    return pl.concat([one.cast(RESULT), pl.DataFrame(said, schema=RESULT, orient="row")])


def _named(asked: pl.DataFrame, subs: pl.DataFrame) -> pl.DataFrame:
    """ROW, offer, subscription_id, status: each offer cell of a row with each subscription of
    its customer it names, whatever its status.

    Equi-joins only: an offer cell names a subscription by its folded name, or by its id or
    the id's first parts (each subscription is listed once per prefix of its id)."""
    pairs = asked.select(
        ROW,
        "customer_id",
        pl.col("offers").list.unique().alias("offer"),
    ).explode("offer")
    pairs = pairs.with_columns(
        fold(pl.col("offer")).alias("name_key"), pl.col("offer").str.to_uppercase().alias("id_key")
    )
    names = subs.select(
        "customer_id", "subscription_id", fold(pl.col("offerName")).alias("name_key")
    )
    parts = pl.col("offerId").str.to_uppercase().str.split(":")
    prefixes = subs.select(
        "customer_id",
        "subscription_id",
        parts.alias("parts"),
        pl.int_ranges(1, parts.list.len() + 1).alias("n"),
    ).explode("n")
    prefixes = prefixes.select(
        "customer_id",
        "subscription_id",
        pl.col("parts").list.head(pl.col("n")).list.join(":").alias("id_key"),
    )
    found = pl.concat(
        [
            pairs.join(names, on=["customer_id", "name_key"]).select(
                ROW, "offer", "subscription_id"
            ),
            pairs.join(prefixes, on=["customer_id", "id_key"]).select(
                ROW, "offer", "subscription_id"
            ),
        ]
    ).unique()
    return found.join(subs.select("subscription_id", "status"), on="subscription_id")


def _hits(asked: pl.DataFrame, subs: pl.DataFrame, named: pl.DataFrame) -> pl.DataFrame:
    """Every (row, subscription that can change) that every offer cell of the row names
    (`named`), with the subscription's columns and the row's friendly name and term (folded
    names too)."""
    given = asked.select(ROW, pl.col("offers").list.unique().list.len().alias("asked"))
    return (
        named.filter(pl.col("status").is_in(LIVE))
        .group_by(ROW, "subscription_id")
        .agg(pl.col("offer").n_unique().alias("hits"))
        .join(given, on=ROW)
        .filter(pl.col("hits") == pl.col("asked"))
        .join(
            subs.drop("customer_id").with_columns(fold(pl.col("friendlyName")).alias("held_name")),
            on="subscription_id",
        )
        .join(
            asked.select(ROW, "friendly", "term", fold(pl.col("friendly")).alias("asked_name")),
            on=ROW,
        )
    )


def _chosen(hits: pl.DataFrame) -> pl.DataFrame:
    """The rows with exactly one candidate, by offer alone or once narrowed."""
    named = (pl.col("asked_name") == pl.col("held_name")).fill_null(False)
    termed = (pl.col("term").str.to_uppercase() == pl.col("termDuration")).fill_null(False)
    over = pl.len().over(ROW)
    ways = [
        (over == 1, "offer"),
        (named & (named.sum().over(ROW) == 1), "offer and friendly name"),
        (termed & (termed.sum().over(ROW) == 1), "offer and term"),
        (
            (named & termed) & ((named & termed).sum().over(ROW) == 1),
            "offer, friendly name and term",
        ),
    ]
    by = pl.when(ways[0][0]).then(pl.lit(ways[0][1]))
    for test, words in ways[1:]:
        by = by.when(test).then(pl.lit(words))
    picked = hits.with_columns(by.otherwise(None).alias("subscription_by"))
    picked = picked.filter(pl.col("subscription_by").is_not_null())
    return picked.unique(ROW, keep="first", maintain_order=True)


def _stopped(
    row: dict,
    hits: pl.DataFrame,
    named: pl.DataFrame,
    subs: pl.DataFrame,
    headers: dict[str, str],
    unread: dict,
) -> tuple:
    """RESULT for a row that found no subscription of its offer, or several."""
    column = headers.get("offer") or "Product"
    value = " / ".join(row["offers"])
    customer = row["customer_id"]
    stops = (row[ROW], None, None)
    if customer in unread:
        why = unread[customer]
        message = f"{column}: the subscriptions of customer {customer} could not be read ({why})"
        return (*stops, "match.no_subscription", column, message, value, None, [], [])
    alike = hits.filter(pl.col(ROW) == row[ROW]).sort("subscription_id")
    if alike.height:
        listed = "; ".join(_described(s) for s in alike.to_dicts())
        tell = _telling(alike, headers)
        add = f"the {tell}" if tell == "Subscription ID" else f"a {tell} cell"
        message = (
            f'{column}: "{value}" is {alike.height} subscriptions of customer {customer}: '
            f"{listed}; add {add} that names one of them"
        )
        candidates = [subscription_candidate(s) for s in alike.to_dicts()]
        return (*stops, "match.subscriptions_alike", column, message, value, tell, candidates, [])
    message, closest = _none_named(row, named, subs, headers)
    return (*stops, "match.no_subscription", column, message, value, None, [], closest)


def _none_named(
    row: dict, named: pl.DataFrame, subs: pl.DataFrame, headers: dict[str, str]
) -> tuple[str, list[dict]]:
    """Why a row's offer cells name no subscription of its customer that can change, and what
    comes closest: its ended ones of that offer, or the live ones of the nearest offer."""
    column = headers.get("offer") or "Product"
    value = " / ".join(row["offers"])
    customer = row["customer_id"]
    mine = subs.filter(pl.col("customer_id") == customer)
    has = mine.filter(pl.col("status").is_in(LIVE))
    message = f'{column}: "{value}" is no subscription customer {customer} can change'
    wanted = set(row["offers"])
    hit = named.filter(pl.col(ROW) == row[ROW])
    gone = (
        hit.filter(~pl.col("status").is_in(LIVE))
        .group_by("subscription_id")
        .agg(pl.col("offer").n_unique().alias("n"))
    )
    gone = gone.filter(pl.col("n") == len(wanted)).get_column("subscription_id")
    ended = mine.filter(pl.col("subscription_id").is_in(gone.implode())).sort("subscription_id")
    live = set(hit.filter(pl.col("status").is_in(LIVE)).get_column("offer"))
    if len(wanted) > 1 and live == wanted:  # each names one, no one subscription all
        return message + (
            f": {headers.get('offers', column)} each name a subscription it "
            "has, but not the same one; correct the one that is wrong, or give the "
            "Subscription ID"
        ), []
    if ended.height:
        shown = "; ".join(f"{s['subscription_id']} ({s['status']})" for s in ended.to_dicts())
        return message + (
            f": its {value} has ended ({shown}), and an expired or disabled subscription is not "
            "changed or reactivated; buy a new one in Partner Center, or give the Subscription "
            "ID of a live one"
        ), [subscription_candidate(s) for s in ended.to_dicts()]
    offers = sorted({o for o in has.get_column("offerName").to_list() if o})
    near = difflib.get_close_matches(  # close in most letters, not in "Microsoft" alone
        fold_text(row["offers"][0]), [fold_text(o) for o in offers], n=1, cutoff=0.7
    )
    closest = []
    if near:
        offer = next(o for o in offers if fold_text(o) == near[0])
        message += f'; the closest it has is "{offer}", not used'
        of = has.filter(pl.col("offerName") == offer).sort("subscription_id")
        closest = [subscription_candidate(s) for s in of.to_dicts()]
    elif offers:
        message += f"; it has {', '.join(offers)}"
    message += ": write the offer as Partner Center names it, or give the Subscription ID"
    return message, closest


def _described(s: dict) -> str:
    """`8b2f... (Contoso - Power BI Pro, 40 seats, P1Y, ends 2027-03-01)`."""
    end = (s.get("commitmentEndDate") or "")[:10] or "no end date"
    return (
        f"{s['subscription_id']} ({s.get('friendlyName') or 'no friendly name'}, "
        f"{s.get('quantity')} seats, {s.get('termDuration') or 'no term'}, ends {end})"
    )


def _telling(alike: pl.DataFrame, headers: dict[str, str]) -> str:
    """The column that would tell the candidates apart, as the sheet names it (or would)."""
    if alike.get_column("friendlyName").n_unique() == alike.height:
        return headers.get("friendly") or "Friendly name"
    if alike.get_column("termDuration").n_unique() == alike.height:
        return headers.get("term") or "Term"
    return "Subscription ID"
