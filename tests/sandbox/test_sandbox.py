"""sandbox: behaves like Partner Center in everything the engine depends on.

Every test runs twice: in-process (httpx ASGITransport) and against a real uvicorn server on
127.0.0.1 (the `serve_sandbox` fixture).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import CUSTOMER, NEXT_TERM_PRODUCT, SUB1, put_order, put_subscription

from bulkpatch.sandbox import Sandbox, SandboxConfig, resources
from bulkpatch.sandbox.schema import problems

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)


async def test_bearer_token_is_required_and_checked(serve_sandbox):
    async with serve_sandbox(SandboxConfig(token="right")) as run:
        path, _ = put_subscription(run)
        missing = await run.client.get(path, headers={"Authorization": ""})
        wrong = await run.client.get(path, headers={"Authorization": "Bearer wrong"})
        right = await run.client.get(path, headers={"Authorization": "Bearer right"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert set(missing.json()) == {"code", "description", "data", "source"}


async def test_unknown_ids_are_404_with_partner_center_codes(serve_sandbox):
    async with serve_sandbox() as run:
        sub = await run.client.get(f"/v1/customers/{CUSTOMER}/subscriptions/{SUB1}")
        order = await run.client.get(f"/v1/customers/{CUSTOMER}/orders/nope")
        listing = await run.client.get(f"/v1/customers/{uuid.uuid4()}/subscriptions")
    assert (sub.status_code, sub.json()["code"]) == (404, 20003)
    assert (order.status_code, order.json()["code"]) == (404, 20000)
    assert sub.json()["source"] == "PartnerFD" and sub.json()["data"] == []
    # issue 11 point 11: an unknown customer is 403 20002 ("Partner Center REST error codes":
    # no commerce relationship with the customer), no longer 404
    assert (listing.status_code, listing.json()["code"]) == (403, 20002)


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": "ten"},
        {"billingCycle": "weekly"},
        {"status": "Active"},
        {"autoRenewEnabled": "yes"},
        {"suspensionReasons": "Fraud"},
    ],
)
async def test_wrong_types_and_enums_are_800002(serve_sandbox, change):
    async with serve_sandbox() as run:
        path, body = put_subscription(run)
        answer = await run.client.patch(path, json={**body, **change})
        after = (await run.client.get(path)).json()
    assert (answer.status_code, answer.json()["code"]) == (400, 800002)
    assert after == body


async def test_a_body_that_is_not_json_is_800002(serve_sandbox):
    async with serve_sandbox() as run:
        path, _ = put_subscription(run)
        answer = await run.client.patch(path, content=b"quantity=5")
    assert (answer.status_code, answer.json()["code"]) == (400, 800002)


async def test_full_object_semantics_turn_off_auto_renew_and_delete_instructions(serve_sandbox):
    instructions = {
        "product": NEXT_TERM_PRODUCT,
        "quantity": 9,
    }
    async with serve_sandbox() as run:
        path, body = put_subscription(run, scheduledNextTermInstructions=instructions)
        partial = {"quantity": body["quantity"] + 1}
        answer = await run.client.patch(path, json=partial)
        after = (await run.client.get(path)).json()
    assert answer.status_code == 200
    assert body["autoRenewEnabled"] is True and after["autoRenewEnabled"] is False
    assert "scheduledNextTermInstructions" not in after
    assert after["quantity"] == body["quantity"] + 1


@pytest.mark.parametrize(
    ("state", "change", "code"),
    [
        ({"status": "suspended"}, {"quantity": 50}, 800091),
        ({"status": "deleted"}, {"friendlyName": "new"}, 2011),
        ({"quantity": 10}, {"quantity": 5}, 800090),
        ({"termDuration": "P1M", "billingCycle": "monthly"}, {"billingCycle": "annual"}, 800097),
        ({}, {"quantity": 0}, 2002),
        ({}, {"quantity": 10_001}, 2002),
        ({}, {"autoRenewEnabled": False, "scheduledNextTermInstructions": {"quantity": 3}}, 800002),
    ],
)
async def test_business_rules_refuse_with_their_codes(serve_sandbox, state, change, code):
    async with serve_sandbox() as run:
        path, body = put_subscription(run, **state)
        answer = await run.client.patch(path, json={**body, **change})
        after = (await run.client.get(path)).json()
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert after == body


async def test_suspended_accepts_a_status_change_and_decrease_within_refund(serve_sandbox):
    async with serve_sandbox() as run:
        path, body = put_subscription(run, status="suspended")
        resumed = await run.client.patch(path, json={**body, "status": "active"})
        path2, body2 = put_subscription(run, quantity=10)
        smaller = await run.client.patch(path2, json={**body2, "quantity": 8})
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert smaller.status_code == 200
    assert smaller.json()["refundableQuantity"]["totalQuantity"] == 0


async def test_legacy_etag_must_match_in_body_and_if_match(serve_sandbox):
    async with serve_sandbox() as run:
        path, body = put_subscription(run, legacy=True)
        stale = {**body, "attributes": {"etag": "old", "objectType": "Subscription"}}
        by_body = await run.client.patch(path, json={**stale, "quantity": 40})
        by_header = await run.client.patch(
            path, json={**body, "quantity": 40}, headers={"If-Match": "old"}
        )
        good = await run.client.patch(
            path, json={**body, "quantity": 40}, headers={"If-Match": "etag-1"}
        )
        again = await run.client.patch(path, json={**body, "quantity": 41})
    assert [r.json().get("code") for r in (by_body, by_header)] == [2055, 2055]
    assert good.status_code == 200 and good.json()["attributes"]["etag"] != "etag-1"
    assert (again.status_code, again.json()["code"]) == (400, 2055)  # its etag is stale now


async def test_order_cancellation_only_when_young_and_billing_cycle_needs_line_items(
    serve_sandbox,
):
    async with serve_sandbox() as run:
        young, body = put_order(run, days_old=10)
        old, old_body = put_order(run, days_old=90)
        cancel = await run.client.patch(young, json={**body, "status": "cancelled"})
        too_old = await run.client.patch(old, json={**old_body, "status": "cancelled"})
        without = {k: v for k, v in old_body.items() if k != "lineItems"}
        no_lines = await run.client.patch(old, json={**without, "billingCycle": "annual"})
        with_lines = await run.client.patch(old, json={**old_body, "billingCycle": "annual"})
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    # "Partner Center REST error codes": 900117 "You have passed your {0}-day cancellation
    # window" (perpetual software: 30 calendar days, "New commerce experience cancellation policy")
    assert (too_old.status_code, too_old.json()["code"]) == (400, 900117)
    assert "30-day cancellation window" in too_old.json()["description"]  # perpetual software
    assert (no_lines.status_code, no_lines.json()["code"]) == (400, 800002)
    assert with_lines.status_code == 200 and with_lines.json()["billingCycle"] == "annual"


async def test_accepted_202_shows_after_the_delay(serve_sandbox):
    async with serve_sandbox(SandboxConfig(accepted_share=1.0, accepted_delay=0.3)) as run:
        path, body = put_subscription(run)
        answer = await run.client.patch(path, json={**body, "quantity": body["quantity"] + 3})
        before = (await run.client.get(path)).json()
        await asyncio.sleep(0.5)
        after = (await run.client.get("/v1" + answer.headers["Location"])).json()
        stats = await run.stats()
    # relative to the versioned base, as "Change the quantity of a subscription" shows it
    assert answer.status_code == 202 and "/v1" + answer.headers["Location"] == path
    assert before["quantity"] == body["quantity"]
    assert after["quantity"] == body["quantity"] + 3
    assert stats["accepted"] == 1 and stats["applied"] == 1


async def test_request_id_replays_the_answer_and_applies_once(serve_sandbox):
    async with serve_sandbox() as run:
        path, body = put_subscription(run)
        headers = {"MS-RequestId": "change-1", "MS-CorrelationId": "corr-1"}
        target = body["quantity"] + 1
        first = await run.client.patch(path, json={**body, "quantity": target}, headers=headers)
        second = await run.client.patch(
            path,
            json={**body, "quantity": target + 1},
            headers={**headers, "MS-CorrelationId": "corr-2"},
        )
        after = (await run.client.get(path)).json()
        stats = await run.stats()
    assert first.json() == second.json() and after["quantity"] == target
    assert second.headers["MS-RequestId"] == "change-1"
    assert second.headers["MS-CorrelationId"] == "corr-2"
    assert stats["applied"] == 1 and stats["replayed"] == 1
    assert stats["applied_per_resource"] == {body["id"]: 1}
    assert stats["calls"] == {"GET": {"subscription": 1}, "PATCH": {"subscription": 2}}


async def test_stats_reset_and_state_survives_a_restart(tmp_path):
    db = str(tmp_path / "sandbox.db")
    first = Sandbox(SandboxConfig(db=db))
    customer, sid = first.store.db.execute(
        "select customer_id, id from resources where kind='subscriptions'"
    ).fetchone()
    transport = httpx.ASGITransport(first.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers={"Authorization": "Bearer t"}
    ) as client:
        path = f"/v1/customers/{customer}/subscriptions/{sid}"
        body = (await client.get(path)).json()
        await client.patch(path, json={**body, "friendlyName": "Renamed"})
    restarted = Sandbox(SandboxConfig(db=db), reseed=False)
    assert restarted.store.get("subscriptions", customer, sid, 0)["friendlyName"] == "Renamed"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(restarted.app), base_url="http://127.0.0.1"
    ) as client:
        await client.post("/_sandbox/reset")
        stats = (await client.get("/_sandbox/stats")).json()
    assert restarted.store.get("subscriptions", customer, sid, 0)["friendlyName"] != "Renamed"
    assert stats["calls"] == {} and stats["applied"] == 0


# --- issue 11: the sandbox as Partner Center's documentation shows it ---------------------------


async def test_issue11_lists_carry_inactive_subscriptions_and_unknown_fields_are_ignored(
    serve_sandbox,
):
    async with serve_sandbox(SandboxConfig(accepted_share=1.0)) as run:
        customer = "05e2378a-d57e-57ef-9870-17ffaf155ec0"  # Contoso in samples/
        listing = (await run.client.get(f"/v1/customers/{customer}/subscriptions")).json()
        path, body = put_subscription(run, quantity=10)
        order_path, order = put_order(run)
        grown = {**body, "quantity": 11, "someFieldAddedLater": {"x": 1}}
        run.sandbox.config.accepted_share = 0.0
        answer = await run.client.patch(path, json=grown)
        run.sandbox.config.accepted_share = 1.0
        order_answer = await run.client.patch(order_path, json={**order, "status": "cancelled"})
        stranger = await run.client.get(f"/v1/customers/{uuid.uuid4()}/subscriptions")
    assert {"expired", "disabled", "active"} <= {i["status"] for i in listing["items"]}
    assert all(problems("subscriptions", i) == [] for i in listing["items"])
    assert answer.status_code == 200 and answer.json()["quantity"] == 11
    assert "someFieldAddedLater" not in answer.json()
    assert order_answer.status_code == 200 and order_answer.json()["status"] == "cancelled"
    assert (stranger.status_code, stranger.json()["code"]) == (403, 20002)
    assert body["links"]["self"]["uri"] == path.removeprefix("/v1")


async def test_issue11_a_mid_term_change_deletes_the_changes_scheduled_for_renewal(
    serve_sandbox,
):
    instructions = {"product": NEXT_TERM_PRODUCT, "quantity": 37, "customTermEndDate": None}
    async with serve_sandbox() as run:
        nce, body = put_subscription(run, scheduledNextTermInstructions=instructions)
        renamed = await run.client.patch(nce, json={**body, "friendlyName": "Renamed"})
        grown = await run.client.patch(nce, json={**renamed.json(), "quantity": 12})
        legacy, old = put_subscription(run, legacy=True, scheduledNextTermInstructions=instructions)
        kept = await run.client.patch(legacy, json={**old, "quantity": 12})
    assert body["productType"]["id"] == "OnlineServicesNCE"
    assert renamed.json()["scheduledNextTermInstructions"] == instructions  # not a mid-term change
    assert grown.status_code == 200 and grown.json()["quantity"] == 12
    assert "scheduledNextTermInstructions" not in grown.json()
    assert kept.json()["scheduledNextTermInstructions"] == instructions  # legacy: nothing scheduled


async def test_issue11_order_cancels_act_on_the_lines_sent_and_only_on_software(serve_sandbox):
    async with serve_sandbox() as run:
        software, order = put_order(run)
        licences, lic = put_order(run, software=False)
        other, oth = put_order(run, software=False)
        oth["lineItems"][0]["offerId"] = "7AE2D7A6-9E5E-4A7B-9F3B-1C2D3E4F5A6B"
        run.sandbox.store.put_many("orders", [(other.split("/")[3], oth)])
        one = await run.client.patch(
            software, json={**order, "status": "cancelled", "lineItems": [order["lineItems"][0]]}
        )
        refused = await run.client.patch(licences, json={**lic, "status": "cancelled"})
        forbidden = await run.client.patch(
            other, json={**oth, "status": "cancelled", "lineItems": [oth["lineItems"][0]]}
        )
    assert one.status_code == 200 and one.json()["status"] == "completed"
    assert [i["quantity"] for i in one.json()["lineItems"]] == [0, 5]
    assert (refused.status_code, refused.json()["code"]) == (400, 800063)
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, 800019)


async def test_issue11_billing_cycle_and_cancel_window_and_fixed_auto_renew(serve_sandbox):
    window = resources.iso(NOW + timedelta(days=2))
    async with serve_sandbox(SandboxConfig(fixed_auto_renew_share=1.0)) as run:
        legacy, old = put_subscription(run, legacy=True, termDuration="P1Y", billingCycle="monthly")
        annual = await run.client.patch(legacy, json={**old, "billingCycle": "annual"})
        nce, body = put_subscription(run)
        late = await run.client.patch(nce, json={**body, "status": "deleted"})
        claimed = await run.client.patch(
            nce, json={**body, "status": "deleted", "cancellationAllowedUntilDate": window}
        )
        fixed = await run.client.patch(
            legacy, json={**annual.json(), "autoRenewEnabled": False, "friendlyName": "x"}
        )
    # "Change the billing cycle": Update a subscription by ID changes it for legacy and NCE
    assert annual.status_code == 200 and annual.json()["billingCycle"] == "annual"
    assert (late.status_code, late.json()["code"]) == (400, 900117)
    assert "7-day cancellation window" in late.json()["description"]
    assert claimed.status_code == 400  # the window is the stored subscription's, not the body's
    assert fixed.status_code == 200 and fixed.json()["autoRenewEnabled"] is True
    assert fixed.json()["friendlyName"] == "x"
