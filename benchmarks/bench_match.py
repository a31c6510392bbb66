"""The matching figure for `run.py`: `bulkpatch plan` of a names-only true-up sheet against the
same sheet with ids, on a real `bulkpatch sandbox` whose customers have company names and
domains; the time of the names against the ids, and the calls each makes (the ids: one
subscription list per customer; the names: the customer pages, then the same lists).

Every row is a valid, distinct change: customer n has `per` subscriptions, of the sandbox's
offers in turn, each with its own friendly name, so a row names its subscription by offer and
friendly name (`Current friendly name`: what a row tells two subscriptions of one offer apart
by) and asks for seats the subscription does not have (the seeded quantity is a few below).
A customer is named by company name (n % 4 in 0, 2), by its default domain (1) or by its
custom domain (3). The ids sheet is the same rows with `Customer ID` and `Subscription ID`
instead of the names, offer and friendly name.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from pathlib import Path

import polars as pl
from run import NS, PYTHON, Measured, SandboxServer, ids, measure

from bulkpatch.apply.lookup import PAGE_SIZE
from bulkpatch.sandbox.customers import FIRST, SECOND
from bulkpatch.sandbox.resources import PRODUCTS

# The sheet-seeded sandbox also holds a look-alike customer (`sandbox.customers.LOOKALIKE`),
# so the customer list has one customer more than the sheet names.
LISTED_BESIDES = 1


def sheets(work: Path, customers: int, rows: int) -> tuple[Path, Path, Path, pl.DataFrame]:
    """The seed sheet (ids and names), the names-only sheet, the ids sheet, and the ids every
    row should be matched to (`row` as the reports number it: the header is row 1)."""
    per = rows // customers
    tenants = ids(customers, "match-customer")
    slugs = [f"{FIRST[c % 8].lower()}{c:05d}" for c in range(customers)]
    offers = [p[2] for p in PRODUCTS]
    pairs = [(c, s) for c in range(customers) for s in range(per)]
    full = pl.DataFrame(
        {
            "Customer ID": [tenants[c] for c, _ in pairs],
            "Subscription ID": [str(uuid.uuid5(NS, f"match-{i}")) for i in range(len(pairs))],
            "Customer": [f"{FIRST[c % 8]} {SECOND[c // 8 % 8]} {c:05d} Ltd" for c, _ in pairs],
            "Domain": [f"{slugs[c]}.onmicrosoft.com" for c, _ in pairs],
            "Product": [offers[s % len(offers)] for _, s in pairs],
            "Current friendly name": [f"Team {s}" for _, s in pairs],
            "Seats": [str(5 + i % 40) for i in range(len(pairs))],
        }
    )
    seed, by_names, by_ids = work / "match-seed.csv", work / "names.csv", work / "ids.csv"
    full.write_csv(seed)  # seeds each customer's name, domain and a custom domain (`slug`.com)
    way = pl.Series([c % 4 for c, _ in pairs])
    full.with_columns(
        pl.when(way.is_in([0, 2])).then(pl.col("Customer")).alias("Customer"),
        pl.when(way == 1)
        .then(pl.col("Domain"))
        .when(way == 3)
        .then(pl.col("Domain").str.replace(r"\.onmicrosoft\.com$", ".com"))
        .alias("Domain"),
    ).drop("Customer ID", "Subscription ID").write_csv(by_names)
    full.select("Customer ID", "Subscription ID", "Seats").write_csv(by_ids)
    expected = full.select(
        (pl.int_range(pl.len()) + 2).alias("row"),
        pl.col("Customer ID").alias("customer_id"),
        pl.col("Subscription ID").alias("subscription_id"),
    )
    return seed, by_names, by_ids, expected


def bench_match(work: Path, customers: int, rows: int, runs: int) -> dict:
    seed, by_names, by_ids, expected = sheets(work, customers, rows)
    server = SandboxServer(work, seed)  # no rate limit: the figure is plan's own time
    try:
        timed: dict[str, list[tuple[Measured, Counter]]] = {"ids": [], "names": []}
        for r in range(runs):  # taking turns, as `run.best`
            for name, sheet in (("ids", by_ids), ("names", by_names)):
                timed[name].append(
                    _plan(work / f"match-{name}-{r}", sheet, server, expected.height)
                )
    finally:
        server.close()
    (ids_run, ids_calls), (names_run, names_calls) = (
        min(timed[name], key=lambda t: t[0].seconds) for name in ("ids", "names")
    )
    pages = math.ceil((customers + LISTED_BESIDES) / PAGE_SIZE)
    for _, calls in timed["ids"]:
        assert calls == Counter({"GET subscriptions": customers}), calls
    for _, calls in timed["names"]:
        assert calls == Counter({"GET customers": pages, "GET subscriptions": customers}), calls
    ways = _matched(names_run, expected)
    return {
        "rows": expected.height,
        "customers": customers,
        "matched_by": ways,
        "ids_seconds": round(ids_run.seconds, 2),
        "names_seconds": round(names_run.seconds, 2),
        "time_names_vs_ids": round(names_run.seconds / ids_run.seconds, 2),
        "ids_cpu_seconds": round(ids_run.cpu_seconds, 2),
        "names_cpu_seconds": round(names_run.cpu_seconds, 2),
        "cpu_names_vs_ids": round(names_run.cpu_seconds / ids_run.cpu_seconds, 2),
        "ids_peak_mb": round(ids_run.peak_mb),
        "names_peak_mb": round(names_run.peak_mb),
        "customer_pages": pages,
        "ids_calls": dict(ids_calls),
        "names_calls": dict(names_calls),
        "ids_calls_vs_customers": sum(ids_calls.values()) - customers,
        "names_calls_vs_pages_plus_customers": sum(names_calls.values()) - (pages + customers),
        "targets": {
            "time_names_vs_ids": "<= 1.5",
            "ids_calls_vs_customers": "0",
            "names_calls_vs_pages_plus_customers": "0",
        },
    }


def _plan(out: Path, sheet: Path, server: SandboxServer, rows: int) -> tuple[Measured, Counter]:
    """`bulkpatch plan` of `sheet` (as fast as the sandbox answers), and the calls it made, as
    the sandbox counted them; every row must be a change."""
    before = _calls(server)
    run = measure(
        [
            PYTHON,
            "-m",
            "bulkpatch",
            "plan",
            str(sheet),
            "--target",
            server.url,
            "--json",
            "--quiet",
            "--rate",
            "10000000",
            "--concurrency",
            "8",
            "--out",
            str(out),
        ]
    )
    calls = _calls(server) - before
    summary = json.loads(run.stdout)
    assert summary["change"] == rows and summary["invalid_rows"] == 0, summary.get("outcomes")
    return run, calls


def _calls(server: SandboxServer) -> Counter:
    """Every call the sandbox has served, as `METHOD resource`."""
    served = server.stats()["calls"]
    return Counter({f"{m} {r}": n for m, by in served.items() for r, n in by.items()})


def _matched(run: Measured, expected: pl.DataFrame) -> dict[str, int]:
    """How the names run's rows were matched (rows by way); every row to the ids it should."""
    found = pl.DataFrame(json.loads(run.stdout)["sheets"][0]["matching"])
    wrong = found.join(expected, on="row", how="full", suffix=":want").filter(
        (pl.col("customer_id") != pl.col("customer_id:want"))
        | (pl.col("subscription_id") != pl.col("subscription_id:want"))
        | pl.col("customer_id").is_null()
        | pl.col("customer_id:want").is_null()
    )
    assert wrong.is_empty(), wrong.head()
    ways = found.group_by(pl.concat_str("customer_by", pl.lit(" + "), "subscription_by")).len()
    return dict(sorted(ways.rows()))
