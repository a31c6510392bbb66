"""Which customer a row names by company name or domain: a join with the customer list.

Exact after folding (`fold`); a row naming both must find one customer by both. One candidate
fills the row's `Customer ID`; none says which name comes closest (a suggestion, never used);
several list each (tenant id, name, domain) and the column that tells them apart.
"""

from __future__ import annotations

import difflib

import polars as pl

from bulkpatch.load.sheet import ROW
from bulkpatch.match.fold import domain_key, fold, fold_text
from bulkpatch.match.found import CANDIDATES, customer_candidate

# ROW, the customer found (or null), how, and for a row that stops: its code and message, the
# value it asked, the column that would tell its candidates apart, them, or the closest one.
RESULT = {
    ROW: pl.Int64,
    "customer_id": pl.String,
    "customer_by": pl.String,
    "code": pl.String,
    "column": pl.String,
    "message": pl.String,
    "asked": pl.String,
    "tell": pl.String,
    "candidates": CANDIDATES,
    "closest": CANDIDATES,
}


def match_customers(
    asked: pl.DataFrame, known: pl.DataFrame, headers: dict[str, str]
) -> pl.DataFrame:
    """RESULT for the rows of `asked` (ROW, company, domain) that name no customer id.

    `known`: `found.customers_frame`; `headers`: match field -> the sheet's header for it."""
    rows = asked.select(ROW, "company", "domain")
    by_name = rows.filter(pl.col("company").is_not_null()).join(
        known.select(pl.col("customer_id"), fold(pl.col("company")).alias("key")),
        left_on=fold(pl.col("company")),
        right_on="key",
        how="inner",
    )
    domains = known.select("customer_id", pl.col("domains").alias("d")).explode("d")
    by_domain = rows.filter(pl.col("domain").is_not_null()).join(
        domains.select("customer_id", domain_key(pl.col("d")).alias("key")).unique(),
        left_on=domain_key(pl.col("domain")),
        right_on="key",
        how="inner",
    )
    found = rows.join(_ids(by_name, "named"), on=ROW, how="left").join(
        _ids(by_domain, "domained"), on=ROW, how="left"
    )
    both = pl.col("company").is_not_null() & pl.col("domain").is_not_null()
    candidates = (
        pl.when(both)
        .then(pl.col("named").list.set_intersection(pl.col("domained")))
        .when(pl.col("company").is_not_null())
        .then(pl.col("named"))
        .otherwise(pl.col("domained"))
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )
    found = found.with_columns(candidates.alias("ids"))
    one = found.filter(pl.col("ids").list.len() == 1).select(
        ROW,
        pl.col("ids").list.first().alias("customer_id"),
        pl.when(both)
        .then(pl.lit("name and domain"))
        .when(pl.col("company").is_not_null())
        .then(pl.lit("name"))
        .otherwise(pl.lit("domain"))
        .alias("customer_by"),
        *(pl.lit(None, RESULT[n]).alias(n) for n in list(RESULT)[3:]),
    )
    stopped = found.filter(pl.col("ids").list.len() != 1)
    names = {fold_text(c["company"]): c for c in known.to_dicts() if c["company"]}
    said = [_stopped(r, known, names, headers) for r in stopped.to_dicts()]  # the few that stop
    return pl.concat([one.cast(RESULT), pl.DataFrame(said, schema=RESULT, orient="row")])


def _ids(joined: pl.DataFrame, name: str) -> pl.DataFrame:
    return joined.group_by(ROW).agg(pl.col("customer_id").unique().sort().alias(name))


def _stopped(
    row: dict, known: pl.DataFrame, names: dict[str, dict], headers: dict[str, str]
) -> tuple:
    """RESULT for a row that found no customer, or several."""
    column = headers.get("match:company") if row["company"] else headers.get("match:domain")
    value = row["company"] or row["domain"]
    if row["ids"]:
        alike = known.filter(pl.col("customer_id").is_in(row["ids"])).sort("customer_id")
        listed = "; ".join(
            f"{c['customer_id']} ({c['company']}, {c['domain']})" for c in alike.to_dicts()
        )
        tell = headers.get("match:domain") or "Domain"
        if row["domain"]:
            tell = "Customer ID"
        message = (
            f'{column}: "{value}" is {alike.height} customers: {listed}; add a {tell} column '
            f"(or cell) that names one of them"
        )
        candidates = [customer_candidate(c) for c in alike.to_dicts()]
        code = "match.customers_alike"
        return (row[ROW], None, None, code, column, message, value, tell, candidates, [])
    code = "match.no_customer"
    if row["company"] and row["domain"] and (row["named"] or row["domained"]):
        message = (
            f'{column}: "{row["company"]}" and {headers.get("match:domain")} "{row["domain"]}" '
            "name different customers: correct one of them, or give the Customer ID"
        )
        each = (row["named"] or []) + (row["domained"] or [])  # what the name, the domain name
        named = known.filter(pl.col("customer_id").is_in(each)).sort("customer_id").to_dicts()
        candidates = [customer_candidate(c) for c in named]
        return (row[ROW], None, None, code, column, message, value, "Customer ID", candidates, [])
    said, near = _closest(row, names)
    message = f'{column}: "{value}" names no customer{said}'
    closest = [customer_candidate(near)] if near else []
    return (row[ROW], None, None, code, column, message, value, None, [], closest)


def _closest(row: dict, names: dict[str, dict]) -> tuple[str, dict | None]:
    """`; the closest is "Contoso Ltd" (contosoltd.onmicrosoft.com): ...` or what to type,
    and that closest customer (a suggestion, never used); `names`: the customers by folded
    company name."""
    if row["company"]:
        near = difflib.get_close_matches(fold_text(row["company"]), list(names), n=1, cutoff=0.6)
        if near:
            c = names[near[0]]
            return (
                f'; the closest is "{c["company"]}" ({c["domain"]}), not used: write the name '
                "as Partner Center has it, or give the Customer ID"
            ), c
    return ": write the customer's company name or domain as Partner Center has it, or its ID", None
