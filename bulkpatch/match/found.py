"""What was read, as frames to join with: the customer list and the customers' subscriptions.

"Customer resources" (https://learn.microsoft.com/partner-center/developer/customer-resources):
a Customer has `companyProfile` (`companyName`, `domain`) and `customDomains`, a list of
strings. "Subscription resources" (https://learn.microsoft.com/partner-center/developer/
subscription-resources): `offerName`, `offerId`, `friendlyName`, `quantity`, `termDuration`,
`commitmentEndDate`, `status`, the columns a candidate is told apart by.
"""

from __future__ import annotations

from typing import Any

import polars as pl

CUSTOMERS = {
    "customer_id": pl.String,
    "company": pl.String,
    "domain": pl.String,
    "domains": pl.List(pl.String),
}
SUBSCRIPTIONS = {
    "customer_id": pl.String,
    "subscription_id": pl.String,
    "offerName": pl.String,
    "offerId": pl.String,
    "friendlyName": pl.String,
    "quantity": pl.Int64,
    "termDuration": pl.String,
    "commitmentEndDate": pl.String,
    "status": pl.String,
}


# A customer or a subscription as a row that stops shows it, its choices or the closest one
# (`--json`'s `matching` and the page's Plan page: id, then what tells it apart).
CANDIDATE = pl.Struct(
    {
        "id": pl.String,
        "company": pl.String,
        "domain": pl.String,
        "offer": pl.String,
        "friendly_name": pl.String,
        "seats": pl.Int64,
        "term": pl.String,
        "ends": pl.String,
    }
)
CANDIDATES = pl.List(CANDIDATE)


def customer_candidate(c: dict[str, Any]) -> dict[str, Any]:
    """A row of `customers_frame` as a CANDIDATE."""
    return {"id": c["customer_id"], "company": c["company"], "domain": c["domain"]}


def subscription_candidate(s: dict[str, Any]) -> dict[str, Any]:
    """A row of `subscriptions_frame` as a CANDIDATE (its commitment end date's day)."""
    return {
        "id": s["subscription_id"],
        "offer": s.get("offerName"),
        "friendly_name": s.get("friendlyName"),
        "seats": s.get("quantity"),
        "term": s.get("termDuration"),
        "ends": (s.get("commitmentEndDate") or "")[:10] or None,
    }


def customers_frame(items: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per customer of the list: its id, company name, default domain and every
    domain the list carries (the default and its custom domains)."""
    rows = []
    for item in items:
        profile = item.get("companyProfile") or {}
        domain = str(profile.get("domain") or "")
        custom = [str(d) for d in item.get("customDomains") or [] if d]
        name = str(profile.get("companyName") or "")
        rows.append((str(item.get("id", "")).lower(), name, domain, [domain, *custom]))
    return pl.DataFrame(rows, schema=CUSTOMERS, orient="row")


def subscriptions_frame(lists: dict[str, list[dict[str, Any]]]) -> pl.DataFrame:
    """One row per subscription listed, with the customer it was listed for."""
    names = list(SUBSCRIPTIONS)[2:]
    rows = [
        (
            customer,
            str(item.get("id", "")).lower(),
            *(_int(item.get(n)) if n == "quantity" else _text(item.get(n)) for n in names),
        )
        for customer, items in lists.items()
        for item in items
    ]
    return pl.DataFrame(rows, schema=SUBSCRIPTIONS, orient="row")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
