"""sandbox customers: the customer list's pages and continuation tokens, the orders list, both
counted and paced like every other route ("Get a list of customers", "Get all of a customer's
orders")."""

from __future__ import annotations

import pytest

from bulkpatch.sandbox import SandboxConfig, SeedSpec
from bulkpatch.sandbox.customers import company_name

pytestmark = pytest.mark.anyio


async def test_customer_list_pages_with_continuation_tokens(serve_sandbox):
    async with serve_sandbox(SandboxConfig(seed=SeedSpec(synthetic=(7, 1)))) as run:
        pages, path, headers = [], "/v1/customers?size=3", {}
        while path:
            page = (await run.client.get(path, headers=headers)).json()
            pages.append(page)
            after = page["links"].get("next")
            path = "/v1" + after["uri"] if after else None
            headers = {h["key"]: h["value"] for h in after["headers"]} if after else {}
        no_token = await run.client.get("/v1/customers?size=3&seekOperation=Next")
        stats = await run.stats()
    assert [p["totalCount"] for p in pages] == [3, 3, 1]
    items = [c for p in pages for c in p["items"]]
    assert len({c["id"] for c in items}) == 7
    first = items[0]
    assert first["companyProfile"]["tenantId"] == first["id"]
    assert first["companyProfile"]["companyName"] == company_name(first["id"])
    assert first["companyProfile"]["domain"].endswith(".onmicrosoft.com")
    assert first["attributes"]["objectType"] == "Customer"
    assert pages[0]["attributes"]["objectType"] == "Collection"
    assert pages[0]["links"]["next"]["uri"] == "/customers?size=3&seekOperation=Next"
    assert pages[0]["links"]["next"]["headers"][0]["key"] == "MS-ContinuationToken"
    assert no_token.status_code == 400 and no_token.json()["code"] == 800002
    assert stats["calls"]["GET"]["customers"] == 4


async def test_orders_list_and_unknown_customers(serve_sandbox):
    seed = SeedSpec(sheets=SeedSpec.samples().sheets, synthetic=(1, 1))  # one without orders
    async with serve_sandbox(SandboxConfig(seed=seed)) as run:
        customers = [c["id"] for c in (await run.client.get("/v1/customers")).json()["items"]]
        lists = [(await run.client.get(f"/v1/customers/{c}/orders")).json() for c in customers]
        unknown = await run.client.get("/v1/customers/00000000-0000-4000-8000-000000000000/orders")
        stats = await run.stats()
    assert all(page["attributes"]["objectType"] == "Collection" for page in lists)
    orders = [o for page in lists for o in page["items"]]
    assert orders and all(o["attributes"]["objectType"] == "Order" for o in orders)
    assert any(page["totalCount"] == 0 for page in lists)  # the synthetic customer
    assert unknown.status_code == 403 and unknown.json()["code"] == 20002
    assert stats["calls"]["GET"]["orders"] == len(customers) + 1


async def test_lists_count_against_the_rate_limit(serve_sandbox):
    config = SandboxConfig(seed=SeedSpec(synthetic=(2, 1)), rate_limit=(2, 60))
    async with serve_sandbox(config) as run:
        answers = [(await run.client.get("/v1/customers?size=1")).status_code for _ in range(3)]
        customer = (await run.client.get("/v1/customers")).status_code
    assert answers == [200, 200, 429] and customer == 429
