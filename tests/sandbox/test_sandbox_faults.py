"""sandbox faults: injected failures, conflicts, drops and slow answers, drawn from the seed.

Every async test runs twice: in-process and against a real uvicorn server (`serve_sandbox`).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import put_subscription

from bulkpatch.sandbox import SandboxConfig

pytestmark = pytest.mark.anyio


async def test_injected_failures_and_conflicts_apply_nothing(serve_sandbox):
    async with serve_sandbox(SandboxConfig(fail_share=1.0)) as run:
        path, body = put_subscription(run)
        failed = await run.client.patch(path, json={**body, "quantity": body["quantity"] + 1})
        stats = await run.stats()
    assert failed.status_code in (500, 503) and stats["applied"] == 0
    async with serve_sandbox(SandboxConfig(conflict_share=1.0)) as run:
        path, body = put_subscription(run)
        conflict = await run.client.patch(path, json={**body, "quantity": body["quantity"] + 1})
    # documented as 400 ("Partner Center REST error codes"), no longer 409 (issue 11 point 2)
    assert (conflict.status_code, conflict.json()["code"]) == (400, 800082)


async def test_dropped_connection_after_the_change_then_the_retry_is_a_replay(serve_sandbox):
    async with serve_sandbox(SandboxConfig(drop_share=1.0)) as run:
        path, body = put_subscription(run)
        with pytest.raises(httpx.TransportError):
            await run.client.patch(
                path,
                json={**body, "quantity": body["quantity"] + 1},
                headers={"MS-RequestId": "drop-1"},
            )
        run.sandbox.config.drop_share = 0.0
        retry = await run.client.patch(
            path,
            json={**body, "quantity": body["quantity"] + 1},
            headers={"MS-RequestId": "drop-1"},
        )
        stats = await run.stats()
    assert retry.status_code == 200 and retry.json()["quantity"] == body["quantity"] + 1
    assert stats["applied"] == 1 and stats["replayed"] == 1 and stats["faults"] == {"drop": 1}


async def test_slow_answers_outlast_a_client_timeout_and_latency_is_added(serve_sandbox):
    async with serve_sandbox(SandboxConfig(slow_share=1.0, slow_seconds=3)) as run:
        path, body = put_subscription(run)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                run.client.patch(
                    path,
                    json={**body, "quantity": body["quantity"] + 1},
                    headers={"MS-RequestId": "slow-1"},
                ),
                0.5,
            )
        stats = await run.stats()
    assert stats["applied"] == 1 and stats["faults"] == {"slow": 1}
    async with serve_sandbox(SandboxConfig(latency_ms=5_000)) as run:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run.client.get(path), 0.2)


async def test_faults_are_drawn_from_the_seed(serve_sandbox):
    config = SandboxConfig(fail_share=0.5, random_seed=7)
    outcomes = []
    for _ in range(2):
        async with serve_sandbox(config) as run:
            path, _ = put_subscription(run)
            codes = [
                (await run.client.get(path, headers={"MS-RequestId": f"r{i}"})).status_code
                for i in range(12)
            ]
            outcomes.append([c == 200 for c in codes])
    assert outcomes[0] == outcomes[1]
    assert 0 < sum(outcomes[0]) < 12
