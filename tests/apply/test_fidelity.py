"""Issue 11: the engine and the sandbox behave as Partner Center's documentation says.

One test per numbered point, each against the sandbox in-process and over real HTTP, asserting
what the result sheet shows (outcome, status, code, message) and what was sent (the call log:
paths, MS-RequestIds, bodies, recorded by an httpx request hook on the real client).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from conftest import apply, order_change, put_order, put_subscription, sub_change, uvicorn_server

from bulkpatch.catalog.fields import field
from bulkpatch.check.values import same_value
from bulkpatch.commands.apply import apply_file
from bulkpatch.network.calls import attempt_id, versioned
from bulkpatch.runs.journal import replay
from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, SeedSpec, resources
from bulkpatch.sandbox.seed import synthetic
from bulkpatch.settings import Settings

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)
FAST = Settings(rate=60_000, concurrency=4, backoff=0.001, poll_timeout=10)


def record(client: httpx.AsyncClient) -> list[httpx.Request]:
    """Every request the client sends, as sent (method, path, headers, body)."""
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    client.event_hooks["request"] = [*client.event_hooks["request"], hook]
    return seen


def sent(requests: list[httpx.Request], method: str) -> list[tuple[str, str, dict | None]]:
    """(path, MS-RequestId, JSON body) of every `method` request."""
    return [
        (
            r.url.path,
            r.headers.get("MS-RequestId", ""),
            json.loads(r.content) if r.content else None,
        )
        for r in requests
        if r.method == method
    ]


def journal(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]


@pytest.fixture(params=["in-process", "uvicorn"])
def serve_app(request):
    """Serve any ASGI app (a sandbox wrapped by a test) in-process, then over real HTTP."""

    @contextlib.asynccontextmanager
    async def start(app, token: str = "test-token"):
        headers = {"Authorization": f"Bearer {token}"}
        if request.param == "in-process":
            async with httpx.AsyncClient(
                transport=SandboxTransport(app), base_url="http://127.0.0.1", headers=headers
            ) as client:
                yield client
            return
        with uvicorn_server(app) as url:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
                yield client

    return start


class Running:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox


# --- 1. links and Location are relative to the API version -------------------------------------


async def test_1_a_202_is_polled_under_v1_and_a_dead_location_falls_back_to_the_resource(
    serve_app, tmp_path
):
    sandbox = Sandbox(SandboxConfig(accepted_share=1.0, accepted_delay=0.3))
    good, body = put_subscription(Running(sandbox), quantity=10)
    dead, _ = put_subscription(Running(sandbox), quantity=10)
    assert body["links"]["self"]["uri"] == good.removeprefix("/v1")  # documented form

    async def app(scope, receive, send):
        """The sandbox, except that the 202 for `dead` points at an address that 404s."""

        async def sending(message):
            if message["type"] == "http.response.start" and scope["path"] == dead:
                message["headers"] = [
                    (k, (v.decode() + "/operations/1").encode() if k == b"location" else v)
                    for k, v in message["headers"]
                ]
            await send(message)

        await sandbox.app(scope, receive, sending)

    async with serve_app(app) as client:
        seen = record(client)
        done, _ = await apply(
            client,
            [sub_change(good, {"quantity": 12}), sub_change(dead, {"quantity": 13})],
            tmp_path,
        )
    results = {k.split("/")[-1]: r for k, r in done.items()}
    assert {r.outcome for r in results.values()} == {"ok"}
    assert {r.http_status for r in results.values()} == {202}
    polls = [c["path"] for c in journal(tmp_path) if c.get("op") == "POLL"]
    assert len(sent(seen, "GET")) == len(polls) + 2  # one read per subscription, then polls
    good_polls = [p for p in polls if p.startswith(good)]
    assert good_polls and set(good_polls) == {good}  # `/customers/...` read as `/v1/customers/...`
    dead_polls = [p for p in polls if p.startswith(dead)]
    assert dead_polls[0] == dead + "/operations/1"  # the Location as given, under /v1
    assert dead_polls.count(dead + "/operations/1") == 1  # a 404: never polled there again
    assert set(dead_polls[1:]) == {dead}  # then read where the subscription lives
    assert len(polls) < 15  # not a poll budget of 404s
    assert versioned("/customers/c/subscriptions/s", "/v1/customers/c") == (
        "/v1/customers/c/subscriptions/s"
    )
    assert versioned("https://elsewhere.example/v1/customers/c?x=1", "/v1/c") == (
        "/v1/customers/c?x=1"
    )


# --- 2. "not ready to be updated" is retried whatever its status --------------------------------


async def test_2_not_ready_comes_as_400_and_is_retried_with_the_same_request_id(
    serve_sandbox, tmp_path
):
    async with serve_sandbox(SandboxConfig(conflict_share=0.5, random_seed=11)) as run:
        # each attempt of each call draws its fault: with 16 changes, some PATCH meets one
        paths = [put_subscription(run, quantity=10)[0] for _ in range(16)]
        seen = record(run.client)
        done, _ = await apply(
            run.client,
            [sub_change(p, {"quantity": 14}, f"not-ready-{i}") for i, p in enumerate(paths)],
            tmp_path,
            attempts=12,
        )
        stats = await run.stats()
    assert {r.outcome for r in done.values()} == {"ok"}
    assert stats["faults"]["conflict"] > 0 and stats["applied"] == len(paths)
    not_ready = [c for c in journal(tmp_path) if c["event"] == "call" and c["code"] == 800082]
    assert not_ready and {c["status"] for c in not_ready} == {400}
    patches = sent(seen, "PATCH")
    for path in paths:
        ids = {rid for p, rid, _ in patches if p == path}
        assert len(ids) == 1  # every retry of the change carries its one MS-RequestId
    retried = [p for p in paths if sum(1 for q, _, _ in patches if q == p) > 1]
    assert retried and sum(r.attempts for r in done.values()) == len(patches)


# --- 3. business 403s are row failures, not a bad token ----------------------------------------


async def test_3_customers_without_a_relationship_fail_their_rows_and_the_run_goes_on(
    serve_sandbox, tmp_path
):
    async with serve_sandbox() as run:
        known, _ = put_subscription(run, quantity=10)
        strangers = []
        for i in range(6):  # six customers in a row without a commerce relationship
            customer = str(uuid.uuid4())
            for j in range(2):
                path = f"/v1/customers/{customer}/subscriptions/{uuid.uuid4()}"
                strangers.append(sub_change(path, {"quantity": 5}, f"stranger-{i}-{j}"))
        seen = record(run.client)
        done, engine = await apply(
            run.client,
            [*strangers, sub_change(known, {"quantity": 12})],
            tmp_path,
            concurrency=1,
            auth_streak=5,
        )
    assert engine.stopped == ""
    assert done[sub_change(known, {}).key].outcome == "ok"
    refused = [done[c.key] for c in strangers]
    assert {(r.outcome, r.http_status, r.error_code) for r in refused} == {("failed", 403, 20002)}
    assert "no commerce relationship" in refused[0].error_message
    assert [r.method for r in seen].count("GET") == 7  # six list calls refused, one read
    assert sent(seen, "PATCH")[0][0] == known


# --- 4. MS-RequestId as documented: a new id after a business answer ----------------------------


async def test_4_a_stale_etag_is_read_again_and_sent_with_a_new_reproducible_id(
    serve_app, tmp_path
):
    sandbox = Sandbox(SandboxConfig())
    path, _ = put_subscription(Running(sandbox), legacy=True, quantity=10)
    _, _, _, customer, _, sid = path.split("/")
    first_patch = []

    async def app(scope, receive, send):
        """Another administrator changes the subscription just before our first write."""
        if scope["type"] == "http" and scope["method"] == "PATCH" and not first_patch:
            first_patch.append(scope["path"])
            body = sandbox.store.get("subscriptions", customer, sid, 0)
            body["attributes"]["etag"] = "changed-elsewhere"
            body["friendlyName"] = "Renamed by a colleague"
            sandbox.store.put_many("subscriptions", [(customer, body)])
        await sandbox.app(scope, receive, send)

    change = sub_change(path, {"quantity": 15}, "stale")
    async with serve_app(app) as client:
        seen = record(client)
        done, _ = await apply(client, [change], tmp_path)
        patches = sent(seen, "PATCH")
        after = (await client.get(path)).json()
        replay = await client.patch(path, json=after, headers={"MS-RequestId": change.request_id})
    result = done[change.key]
    assert result.outcome == "ok" and result.http_status == 200
    assert after["quantity"] == 15 and after["friendlyName"] == "Renamed by a colleague"
    second = attempt_id(change.request_id, 2)
    assert [rid for _, rid, _ in patches] == [change.request_id, second]
    assert second == str(
        uuid.uuid5(
            uuid.UUID("7c1d9e2f-3a4b-4c5d-8e6f-a0b1c2d3e4f5"), f"{change.request_id}:attempt 2"
        )
    )
    assert patches[1][2]["attributes"]["etag"] == "changed-elsewhere"  # sent the fresh read
    assert result.request_id == second  # the result names the id that landed
    # the first id stays tied to its answer: a repeat of it is the old 2055, never applied
    assert (replay.status_code, replay.json()["code"]) == (400, 2055)


# --- 5. an order cancel sends only the named lines ----------------------------------------------


async def test_5_cancelling_one_line_cancels_that_line_and_the_order_stays_completed(
    serve_sandbox, tmp_path
):
    async with serve_sandbox() as run:
        path, order = put_order(run, days_old=5)
        licenses, _ = put_order(run, days_old=5, software=False)
        seen = record(run.client)
        first, _ = await apply(
            run.client,
            [
                order_change(path, {"status": "cancelled"}, [{"lineItemNumber": 1}]),
                order_change(licenses, {"status": "cancelled"}, [{"lineItemNumber": 0}]),
            ],
            tmp_path / "a",
        )
        middle = (await run.client.get(path)).json()
        second, _ = await apply(
            run.client,
            [order_change(path, {"status": "cancelled"}, [{"lineItemNumber": 0}], "again")],
            tmp_path / "b",
        )
        final = (await run.client.get(path)).json()
    one = first[order_change(path, {}, []).key]
    assert (one.outcome, one.http_status, one.changes) == (
        "ok",
        200,
        "lineItems[1].quantity: 5 -> 0",
    )
    body = next(b for p, _, b in sent(seen, "PATCH") if p == path)  # the software order's
    assert body["status"] == "cancelled" and [i["lineItemNumber"] for i in body["lineItems"]] == [1]
    assert body["lineItems"][0]["offerId"] == order["lineItems"][1]["offerId"]
    assert middle["status"] == "completed"
    assert [i["quantity"] for i in middle["lineItems"]] == [3, 0]
    assert second[order_change(path, {}, []).key].outcome == "ok"
    assert final["status"] == "cancelled" and [i["quantity"] for i in final["lineItems"]] == [0, 0]
    refused = first[order_change(licenses, {}, []).key]
    assert (refused.outcome, refused.http_status, refused.error_code) == ("failed", 400, 800063)
    assert "cannot be cancelled" in refused.error_message


# --- 6. billing frequency through the subscription ----------------------------------------------


async def test_6_billing_cycle_changes_on_a_new_commerce_subscription_not_through_its_order(
    serve_sandbox, tmp_path
):
    async with serve_sandbox() as run:
        path, body = put_subscription(run, quantity=10, termDuration="P1Y", billingCycle="monthly")
        customer, sid = path.split("/")[3], path.split("/")[5]
        oid = f"ORD-{uuid.uuid4().hex[:8]}"
        order = resources.order(
            customer, oid, NOW, [{"subscriptionId": sid, "quantity": 10}], billingCycle="monthly"
        )
        run.sandbox.store.put_many("orders", [(customer, order)])
        seen = record(run.client)
        done, _ = await apply(
            run.client,
            [
                sub_change(path, {"billingCycle": "annual"}),
                order_change(
                    f"/v1/customers/{customer}/orders/{oid}",
                    {"billingCycle": "annual"},
                    [{"lineItemNumber": 0}],
                ),
            ],
            tmp_path,
            concurrency=1,
        )
        after = (await run.client.get(path)).json()
    ok = done[sub_change(path, {}).key]
    assert ok.outcome == "ok" and ok.changes.split("; ")[0] == "billingCycle: monthly -> annual"
    if body.get("scheduledNextTermInstructions"):  # a mid-term change removes them: said so
        assert "removes the renewal changes scheduled for" in ok.error_message
    assert after["billingCycle"] == "annual" and after["quantity"] == 10
    sub_body = next(b for p, _, b in sent(seen, "PATCH") if p == path)
    assert sub_body == {**body, "billingCycle": "annual"}  # the whole subscription, one change
    refused = done[f"orders/{customer}/{oid}"]
    assert (refused.outcome, refused.http_status, refused.error_code) == ("failed", 400, 800097)


def test_6_a_sheet_changes_billing_cycles_on_subscription_rows(write_csv, tmp_path):
    customer = str(uuid.uuid4())
    subs = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"cycle-{i}")) for i in range(3)]
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Billing cycle"],
            *[[customer, s, "Annual" if i % 2 else "monthly"] for i, s in enumerate(subs)],
        ]
    )
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec(sheets=[path])))
    with uvicorn_server(sandbox.app) as url:
        run = apply_file(path, target=url, out=tmp_path / "run", settings=FAST)
    after = [sandbox.store.get("subscriptions", customer, s, 0)["billingCycle"] for s in subs]
    assert run.counts()["ok"] == 3
    assert after == ["monthly", "annual", "monthly"]
    table = pl.read_csv(tmp_path / "run" / "results.csv")
    changes = {c.split("; ")[0] for c in table.get_column("changes")}
    assert changes == {"Billing cycle: annual -> monthly", "Billing cycle: monthly -> annual"}
    for row in table.filter(pl.col("changes").str.contains("Renewal changes")).to_dicts():
        assert "removes the renewal changes scheduled for" in row["error_message"]


# --- 8. the new commerce cancel window -----------------------------------------------------------


async def test_8_cancelling_is_allowed_only_inside_the_window(serve_sandbox, tmp_path):
    async with serve_sandbox() as run:
        fresh, _ = put_subscription(run, creationDate=resources.iso(NOW - timedelta(days=2)))
        old, _ = put_subscription(run)  # bought 20 to 300 days ago
        extended, _ = put_subscription(
            run, cancellationAllowedUntilDate=resources.iso(NOW + timedelta(days=3))
        )
        closed, _ = put_subscription(
            run,
            creationDate=resources.iso(NOW - timedelta(days=2)),
            cancellationAllowedUntilDate=resources.iso(NOW - timedelta(hours=1)),
        )
        seen = record(run.client)
        changes = [sub_change(p, {"status": "deleted"}) for p in (fresh, old, extended, closed)]
        done, _ = await apply(run.client, changes, tmp_path)
        patched = {p for p, _, _ in sent(seen, "PATCH")}
        direct = await run.client.patch(
            old, json={**(await run.client.get(old)).json(), "status": "deleted"}
        )
    by_path = {p: done[c.key] for p, c in zip((fresh, old, extended, closed), changes, strict=True)}
    assert by_path[fresh].outcome == by_path[extended].outcome == "ok"
    for path in (old, closed):
        refused = by_path[path]
        assert (refused.outcome, refused.error_code) == ("failed", 900117)
        assert refused.error_message.startswith("not sent: Partner Center would refuse it")
        assert "7-day cancellation window" in refused.error_message
    assert patched == {fresh, extended}
    assert (direct.status_code, direct.json()["code"]) == (400, 900117)  # the sandbox enforces


def test_8_refund_windows_are_seeded_as_production_has_them():
    bodies = [body for _, body in synthetic(10, 20, NOW) if "refundableQuantity" in body]
    open_ = [b for b in bodies if b["refundableQuantity"]["totalQuantity"] > 0]
    assert bodies and 0 < len(open_) < len(bodies) / 2  # most are past their window
    for body in open_:
        until = datetime.fromisoformat(
            body["refundableQuantity"]["details"][0]["allowedUntilDateTime"].replace("Z", "+00:00")
        )
        assert NOW < until <= NOW + timedelta(days=7)


# --- 9. verify what was written ----------------------------------------------------------------


async def test_9_a_200_that_kept_auto_renew_on_is_failed_not_ok(serve_sandbox, tmp_path):
    async with serve_sandbox(SandboxConfig(fixed_auto_renew_share=1.0)) as run:
        fixed, _ = put_subscription(run, legacy=True, autoRenewEnabled=True)
        modern, _ = put_subscription(run, autoRenewEnabled=True)
        done, _ = await apply(
            run.client,
            [
                sub_change(fixed, {"autoRenewEnabled": False, "friendlyName": "Kept"}),
                sub_change(modern, {"autoRenewEnabled": False}),
            ],
            tmp_path,
        )
        after = (await run.client.get(fixed)).json()
    kept = done[sub_change(fixed, {}).key]
    assert (kept.outcome, kept.http_status) == ("failed", 200)
    assert kept.error_message == "Partner Center answered 200 but auto-renew is still on"
    assert after["autoRenewEnabled"] is True and after["friendlyName"] == "Kept"
    assert done[sub_change(modern, {}).key].outcome == "ok"


def test_9_targets_compare_enums_without_case_dates_by_day_and_lists_as_sets():
    def same(name, have, want):
        return same_value(field("subscriptions", name), want, have)

    assert same("billingCycle", "Annual", "annual") and same("status", "Deleted", "deleted")
    assert same("commitmentEndDate", "2027-03-01T00:00:00Z", "2027-03-01")
    assert not same("commitmentEndDate", "2027-03-02T00:00:00Z", "2027-03-01")
    assert same("suspensionReasons", ["Fraud", "Other"], ["other", "fraud"])
    assert not same("autoRenewEnabled", True, 1) and same("quantity", 10, 10)
    assert not same("quantity", 10, 11)


# --- 10. a read refused for the token is not a row failure --------------------------------------


async def test_10_rows_behind_a_refused_read_are_not_sent_and_a_good_token_sends_them(
    serve_sandbox, tmp_path
):
    async with serve_sandbox(SandboxConfig(token="right"), token="expired") as run:
        made = []
        for i in range(3):
            customer = str(uuid.uuid4())
            for j in range(2):
                sid = str(uuid.uuid4())
                body = resources.subscription(customer, sid, NOW, quantity=10)
                run.sandbox.store.put_many("subscriptions", [(customer, body)])
                path = f"/v1/customers/{customer}/subscriptions/{sid}"
                made.append(sub_change(path, {"quantity": 11}, f"token-{i}-{j}"))
        refused, engine = await apply(run.client, made, tmp_path, concurrency=1)
        journaled = replay(tmp_path / "journal.jsonl").finished
        resend = [c for c in made if c.key not in journaled]  # what a resume sends again
        run.client.headers["Authorization"] = "Bearer right"
        resumed, _ = await apply(run.client, resend, tmp_path)
        stats = await run.stats()
    assert {(r.outcome, r.http_status) for r in refused.values()} == {("not_sent", 401)}
    assert all(
        r.error_message.startswith("not sent: Partner Center refused the token (HTTP 401")
        for r in refused.values()
    )
    assert engine.auth_failures == 3 and engine.stopped == ""  # three list calls, one streak
    assert journaled == {} and resend == made  # never reached the business logic: all again
    lines = [e for e in journal(tmp_path) if e["event"] == "result"]
    assert {e["outcome"] for e in lines[: len(made)]} == {"not_sent"}
    assert {r.outcome for r in resumed.values()} == {"ok"}
    assert stats["applied"] == 6 and stats["calls"]["PATCH"]["subscription"] == 6


async def test_3_a_403_without_a_code_is_the_token_and_stops_the_run(serve_app, tmp_path):
    async def refusing(scope, receive, send):
        """A gateway in front of Partner Center refusing the token: 403, no error body."""
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    made = [
        sub_change(f"/v1/customers/{uuid.uuid4()}/subscriptions/{uuid.uuid4()}", {"quantity": 3})
        for _ in range(8)
    ]
    async with serve_app(refusing) as client:
        seen = record(client)
        done, engine = await apply(client, made, tmp_path, concurrency=1, auth_streak=5)
    assert "refused the token 5 times in a row (HTTP 403)" in engine.stopped
    assert len(seen) == 5 and {r.method for r in seen} == {"GET"}
    assert {(r.outcome, r.http_status) for r in done.values()} == {("not_sent", 403)}
    assert len(done) == 5  # the other three are never read: the run layer marks them not_sent
