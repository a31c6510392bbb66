"""sandbox rate limit: 429 with Retry-After, per scope (partner or customer) and kind of call.

Every async test runs twice: in-process and against a real uvicorn server (`serve_sandbox`).
"""

from __future__ import annotations

import pytest
from conftest import put_order, put_subscription

from bulkpatch.sandbox import SandboxConfig

pytestmark = pytest.mark.anyio


async def test_rate_limit_429_with_retry_after_per_scope_and_kind(serve_sandbox):
    config = SandboxConfig(rate_limit=(3, 30), order_rate_limit=(1, 30), limit_scope="customer")
    async with serve_sandbox(config) as run:
        path, _ = put_subscription(run)
        other, _ = put_subscription(run)
        order, _ = put_order(run)
        answers = [await run.client.get(path) for _ in range(4)]
        other_customer = await run.client.get(other)
        orders = [await run.client.get(order) for _ in range(2)]
        stats = await run.stats()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    seconds = int(throttled.headers["Retry-After"])
    assert 1 <= seconds <= 30
    assert throttled.json() == {
        "statusCode": 429,
        "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
    }
    assert other_customer.status_code == 200
    assert [o.status_code for o in orders] == [200, 429]
    assert stats["throttled"] == 2
