"""sandbox seed: the default seed holds every id the samples name; a sheet seeds the same
resources every time."""

from __future__ import annotations

import pytest
from conftest import CUSTOMER, SAMPLES, SUB1

from bulkpatch.load import load
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec
from bulkpatch.sandbox.schema import problems
from bulkpatch.values import typed

pytestmark = pytest.mark.anyio


def sample_ids() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    subs, orders = set(), set()
    for path in sorted(SAMPLES.iterdir()):
        for sheet in load(path):
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
