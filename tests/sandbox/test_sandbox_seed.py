"""sandbox seed: the default seed holds every id the samples name; a sheet seeds the same
resources every time, as its expected columns say, in a world Partner Center could hold."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from conftest import CUSTOMER, SAMPLES, SUB1, SUB2

from bulkpatch.check.values import typed
from bulkpatch.load.reader import load
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec
from bulkpatch.sandbox.schema import problems
from bulkpatch.sandbox.seed import build
from bulkpatch.sandbox.semantics import when

pytestmark = pytest.mark.anyio


def sample_ids() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    subs, orders = set(), set()
    for path in sorted(p for p in SAMPLES.iterdir() if p.suffix in (".csv", ".xlsx")):
        for sheet in load(path):
            if sheet.column_for("customer_id") is None:
                continue  # the names-only sample (true-up-by-name.csv): no ids to seed
            names = {c.name: c.field.name for c in sheet.columns if c.field}
            rows = typed(sheet).rename(names).to_dicts()
            key = "subscription_id" if sheet.kind == "subscriptions" else "order_id"
            found = {(r["customer_id"], r[key]) for r in rows if r["customer_id"] and r[key]}
            (subs if sheet.kind == "subscriptions" else orders).update(found)
    return subs, orders


async def test_default_seed_holds_everything_the_samples_name_and_conforms(serve_sandbox):
    subs, orders = sample_ids()
    assert len(subs) >= 30 and len(orders) == 5
    async with serve_sandbox() as run:
        for customer, sid in sorted(subs):
            answer = await run.client.get(f"/v1/customers/{customer}/subscriptions/{sid}")
            assert answer.status_code == 200
            assert problems("subscriptions", answer.json()) == []
        for customer, oid in sorted(orders):
            answer = await run.client.get(f"/v1/customers/{customer}/orders/{oid}")
            assert answer.status_code == 200 and problems("orders", answer.json()) == []
            assert len(answer.json()["lineItems"]) >= 1
        customer = sorted(subs)[0][0]
        listing = (await run.client.get(f"/v1/customers/{customer}/subscriptions")).json()
    assert listing["attributes"] == {"objectType": "Collection"}
    assert listing["totalCount"] == len(listing["items"]) >= 2
    assert set(listing) == {"totalCount", "items", "links", "attributes"}
    assert all(problems("subscriptions", item) == [] for item in listing["items"])


def test_seed_from_a_sheet_is_deterministic_and_opposite_to_the_sheet(write_csv):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Auto renew", "Status"],
            [CUSTOMER, SUB1, "20", "no", "suspended"],
        ]
    )
    made = [Sandbox(SandboxConfig(seed=SeedSpec(sheets=[path]))) for _ in range(2)]
    bodies = [m.store.get("subscriptions", CUSTOMER, SUB1, 0) for m in made]
    assert bodies[0]["id"] == SUB1 and bodies[0]["offerId"] == bodies[1]["offerId"]
    assert 15 <= bodies[0]["quantity"] < 20
    assert bodies[0]["autoRenewEnabled"] is True and bodies[0]["status"] == "active"


def sample_rows() -> list[dict[str, str]]:
    """The true-up sample's rows with usable ids, first row per subscription."""
    rows = pl.read_csv(SAMPLES / "subscriptions-true-up.csv", infer_schema=False).to_dicts()
    usable = [r for r in rows if not r["Subscription ID"].endswith("xyz")]
    return list({r["Subscription ID"]: r for r in reversed(usable)}.values())


def test_a_sheet_seeds_what_its_expected_columns_say_in_a_world_partner_center_could_hold():
    now = datetime.now(UTC)
    spec = SeedSpec(sheets=[SAMPLES / "subscriptions-true-up.csv"])
    seeded = build(spec, now)
    assert seeded == build(spec, now)  # derived from the ids: two runs agree
    bodies = {b["id"]: b for _, b in seeded["subscriptions"]}
    for row in sample_rows():
        body = bodies[row["Subscription ID"]]
        assert (body["offerName"], body["quantity"], body["status"]) == (
            row["Product"],
            int(row["Current seats"]),
            row["Current status"],
        )
        assert body["friendlyName"] == row["Product"]  # no rename from another offer's name
    for body in bodies.values():
        assert problems("subscriptions", body) == []
        if body["status"] in ("active", "suspended"):
            assert when(body["commitmentEndDate"]) > now
        if not body["autoRenewEnabled"] or body["status"] == "deleted":
            assert "scheduledNextTermInstructions" not in body
        if body["billingCycle"] == "annual":
            assert body["termDuration"] in ("P1Y", "P3Y")
        if "etag" not in body["attributes"]:  # new commerce: the offer id names the product
            product = body["offerId"].split(":")[0]
            assert body["links"]["product"]["uri"] == f"/products/{product}"


def test_offer_ids_terms_and_dates_from_the_sheet_are_seeded_as_written(write_csv):
    nce, legacy = "CFQ7TTC0L3PB:0001:CFQ712345678", "1D5F3B4A-4C2B-4F8E-9A1D-2B3C4D5E6F70"
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Offer ID", "Term duration", "Commitment end date"],
            [CUSTOMER, SUB1, nce, "P1M", "2031-01-31"],
            [CUSTOMER, SUB2, legacy, "", ""],
        ]
    )
    bodies = {
        b["id"]: b for _, b in build(SeedSpec(sheets=[path]), datetime.now(UTC))["subscriptions"]
    }
    one, two = bodies[SUB1], bodies[SUB2]
    assert (one["offerId"], one["offerName"], one["friendlyName"]) == (
        nce,
        "Power BI Pro",
        "Power BI Pro",
    )
    assert (one["termDuration"], one["renewalTermDuration"], one["billingCycle"]) == (
        "P1M",
        "P1M",
        "monthly",
    )
    assert one["commitmentEndDate"] == "2031-01-31T00:00:00Z"
    assert two["offerId"] == legacy and "etag" in two["attributes"]  # a GUID offer is legacy


def test_an_orders_sheet_seeds_its_current_billing_cycle_and_line_quantities(write_csv):
    order = "8f2a1c7e-oc9"
    path = write_csv(
        [
            [
                *("Customer ID", "Order ID", "Line item", "Subscription ID"),
                *("Current billing cycle", "Billing cycle", "Current quantity", "Quantity"),
            ],
            [CUSTOMER, order, "0", SUB1, "annual", "monthly", "7", "9"],
        ]
    )
    seeded = build(SeedSpec(sheets=[path]), datetime.now(UTC))
    (customer, body), *_ = seeded["orders"]
    subscription = {b["id"]: b for _, b in seeded["subscriptions"]}[SUB1]
    assert (customer, body["billingCycle"], body["lineItems"][0]["quantity"]) == (
        CUSTOMER,
        "annual",
        7,
    )
    assert subscription["billingCycle"] == "annual" and "etag" in subscription["attributes"]
