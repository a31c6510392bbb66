"""Issue 25: Partner Center's rules by product, predicted by plan and enforced by the sandbox.

Each kind of product ("New commerce experience cancellation policy", its table) at the edges of
its window (the day before it closes, the day of it before and after the closing hour, the day
after, in UTC), against the sandbox in-process and over real HTTP: plan's prediction (`assess`
on the subscription as read), the sandbox's own answer to the PATCH, and the result row.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest
from conftest import FAST, apply, order_change, put_order, sub_change, uvicorn_server

from bulkpatch.commands.api import check_file, plan_file
from bulkpatch.commands.apply import apply_file
from bulkpatch.plan.assess import assess
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec, resources

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)
# closes in: a day, an hour (the day of, before), an hour ago (the day of, after), a day ago
EDGES = [timedelta(days=1), timedelta(hours=1), -timedelta(hours=1), -timedelta(days=1)]
OPEN = [True, True, False, False]
WINDOW = {
    "license": timedelta(days=7),
    "software": timedelta(days=7),
    "saas": timedelta(hours=72),
    "perpetual": timedelta(days=30),
}
KIND_PRODUCT = {p[3]: p for p in resources.KIND_PRODUCTS}


class Held:
    """A sandbox not served yet, as `place` puts resources into it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox


def place(run, kind: str, bought: datetime, **state) -> tuple[str, dict]:
    """A subscription of `kind` bought at `bought`, as the sandbox seeds that kind."""
    customer, sid = str(uuid.uuid4()), str(uuid.uuid4())
    created = resources.iso(bought)
    body = resources.subscription(
        customer,
        sid,
        NOW,
        legacy=False,
        quantity=10,
        creationDate=created,
        effectiveStartDate=created,
        commitmentEndDate=resources.iso(bought + timedelta(days=365)),
        termDuration="P1Y",
        billingCycle="annual",
    )
    body.pop("refundableQuantity", None)  # no seats refundable: the window alone decides
    if kind != "license":
        resources.as_kind(body, kind, KIND_PRODUCT[kind])
    body.update(state)
    run.sandbox.store.put_many("subscriptions", [(customer, body)])
    return f"/v1/customers/{customer}/subscriptions/{sid}", body


async def edges(run, tmp_path, kind: str, values: dict, code: int) -> None:
    """The four edges of `kind`'s window for a change `values`: plan, sandbox and result."""
    closes = [NOW + e for e in EDGES]
    placed = [place(run, kind, c - WINDOW[kind]) for c in closes]
    changes = [sub_change(path, values, name=f"{kind}{i}") for i, (path, _) in enumerate(placed)]
    predicted = [assess(c, body, NOW) for c, (_, body) in zip(changes, placed, strict=True)]
    done, _ = await apply(run.client, changes, tmp_path / kind)
    for (path, body), change, plan, is_open, close in zip(
        placed, changes, predicted, OPEN, closes, strict=True
    ):
        row = done[change.key]
        after = (await run.client.get(path)).json()
        if is_open:
            assert plan.verdict == "change", (kind, close)
            assert row.outcome == "ok"
            assert all(after[k] == v for k, v in values.items())
            continue
        answer = await run.client.patch(path, json={**body, **values})  # the sandbox itself
        assert (plan.verdict, plan.code) == ("would_fail", code)
        assert f"closed on {close:%Y-%m-%d}" in plan.reason
        assert (answer.status_code, answer.json()["code"]) == (400, code)
        assert (row.outcome, row.error_code) == ("failed", code)
        assert row.error_message.startswith("not sent: Partner Center would refuse it")
        assert after["status"] == body["status"] and after["quantity"] == body["quantity"]


@pytest.mark.parametrize("kind", ["license", "software", "saas"])
async def test_cancelling_each_kind_at_the_edges_of_its_window(serve_sandbox, tmp_path, kind):
    async with serve_sandbox() as run:
        await edges(run, tmp_path, kind, {"status": "deleted"}, 900117)


async def test_a_software_subscription_keeps_its_licences_after_seven_days(serve_sandbox, tmp_path):
    async with serve_sandbox() as run:
        await edges(run, tmp_path, "software", {"quantity": 8}, 800090)


async def test_license_based_window_reopens_at_renewal_not_at_a_mid_term_addition(
    serve_sandbox, tmp_path
):
    renewed = NOW - timedelta(days=6)  # bought 371 days ago, renewed 6 days ago
    async with serve_sandbox() as run:
        fresh, fresh_body = place(
            run,
            "license",
            renewed - timedelta(days=365),
            effectiveStartDate=resources.iso(renewed - timedelta(days=365)),
            commitmentEndDate=resources.iso(renewed + timedelta(days=365)),
        )
        added, added_body = place(  # bought 20 days ago, two seats added yesterday
            run,
            "license",
            NOW - timedelta(days=20),
            refundableQuantity={
                "totalQuantity": 2,
                "details": [
                    {"quantity": 2, "allowedUntilDateTime": resources.iso(NOW + timedelta(days=6))}
                ],
            },
        )
        upgraded, upgraded_body = place(  # a partial upgrade's: its parent's window, closed
            run,
            "license",
            NOW - timedelta(days=1),
            cancellationAllowedUntilDate=resources.iso(NOW - timedelta(hours=2)),
        )
        changes = [
            sub_change(p, {"status": "deleted"}, name=n)
            for p, n in ((fresh, "f"), (added, "a"), (upgraded, "u"))
        ]
        plans = [
            assess(c, b, NOW)
            for c, b in zip(changes, (fresh_body, added_body, upgraded_body), strict=True)
        ]
        done, _ = await apply(run.client, changes, tmp_path)
        answers = [
            await run.client.patch(p, json={**b, "status": "deleted"})
            for p, b in ((added, added_body), (upgraded, upgraded_body))
        ]
    assert [p.verdict for p in plans] == ["change", "would_fail", "would_fail"]
    assert f"closed on {NOW - timedelta(days=13):%Y-%m-%d}" in plans[1].reason
    assert [done[c.key].outcome for c in changes] == ["ok", "failed", "failed"]
    assert [a.json()["code"] for a in answers] == [900117, 900117]


async def test_perpetual_software_is_cancelled_through_its_order_within_30_days(
    serve_sandbox, tmp_path
):
    async with serve_sandbox() as run:
        sub, sub_body = place(run, "perpetual", NOW - timedelta(days=2))
        orders = [put_order(run) for _ in EDGES]
        for (path, body), edge in zip(orders, EDGES, strict=True):
            body["creationDate"] = resources.iso(NOW + edge - timedelta(days=30))
            run.sandbox.store.put_many("orders", [(path.split("/")[3], body)])
        cancel = sub_change(sub, {"status": "deleted"}, name="perpetual")
        plan_sub = assess(cancel, sub_body, NOW)
        by_order = await run.client.patch(sub, json={**sub_body, "status": "deleted"})
        changes = [
            order_change(p, {"status": "cancelled"}, [], name=f"o{i}")
            for i, (p, _) in enumerate(orders)
        ]
        plans = [assess(c, b, NOW) for c, (_, b) in zip(changes, orders, strict=True)]
        done, _ = await apply(run.client, changes, tmp_path)
        late = await run.client.patch(orders[2][0], json={**orders[2][1], "status": "cancelled"})
    assert (plan_sub.verdict, plan_sub.code) == ("would_fail", 800002)
    assert "through its order" in plan_sub.reason
    assert (by_order.status_code, by_order.json()["code"]) == (400, 800002)
    assert [p.verdict for p in plans] == ["change", "change", "would_fail", "would_fail"]
    assert f"closed on {NOW - timedelta(hours=1):%Y-%m-%d}" in plans[2].reason
    assert "30-day cancellation window" in plans[3].reason
    assert [done[c.key].outcome for c in changes] == ["ok", "ok", "failed", "failed"]
    assert (late.status_code, late.json()["code"]) == (400, 900117)


async def test_azure_and_an_untold_product_are_not_predicted(serve_sandbox, tmp_path):
    async with serve_sandbox() as run:
        azure, azure_body = place(run, "azure", NOW - timedelta(days=90))
        untold, untold_body = place(
            run, "license", NOW - timedelta(days=90), productType={"id": "Bundle"}
        )
        changes = [sub_change(p, {"status": "deleted"}, name=p) for p in (azure, untold)]
        plans = [assess(c, b, NOW) for c, b in zip(changes, (azure_body, untold_body), strict=True)]
        done, _ = await apply(run.client, changes, tmp_path)
    assert [p.verdict for p in plans] == ["change", "change"]
    assert plans[0].warnings == []
    assert "does not say which cancellation window applies" in plans[1].warnings[0]
    assert [done[c.key].outcome for c in changes] == ["ok", "ok"]
    assert "Partner Center decides" in done[changes[1].key].error_message


# --- 5. nothing the catalog knows waits for plan -------------------------------------------------


def test_every_bound_the_catalog_knows_is_checked_offline(tmp_path):
    """Seats and renewal seats past the catalog's bounds, a status the resource does not take,
    a read-only field: check refuses each cell before anything is read."""
    customer, subs = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(4)]
    sheet = tmp_path / "bounds.csv"
    sheet.write_text(
        "Customer ID,Subscription ID,Quantity,Next term quantity,Status,refundOptions.type\n"
        f"{customer},{subs[0]},20000,,,\n"
        f"{customer},{subs[1]},,20000,,\n"
        f"{customer},{subs[2]},,,expird,\n"
        f"{customer},{subs[3]},5,,,Full\n"
    )
    run = check_file(sheet, out=tmp_path / "o")
    issues = run.parts[0].issues.select("row", "column", "code").rows()
    assert sorted(code for _, _, code in issues) == [
        "column.read_only",
        "enum.unknown_value",
        "number.above_maximum",
        "number.above_maximum",
    ]
    assert {column for _, column, _ in issues} == {
        "Quantity",
        "Next term quantity",
        "Status",
        "refundOptions.type",
    }


# --- 2. renewal instructions, complete -----------------------------------------------------------

BASIC = "CFQ7TTC0LH18:0001"  # Microsoft 365 Business Basic: renews into Premium or E3


def renewing(run, **state) -> tuple[str, dict]:
    """A license-based Business Basic subscription, auto-renew on, renewing on a known day."""
    path, body = place(
        run,
        "license",
        NOW - timedelta(days=30),
        offerId=f"{BASIC}:CFQ7TTC0K5TJ",
        offerName="Microsoft 365 Business Basic",
        autoRenewEnabled=True,
        commitmentEndDate="2027-02-28T00:00:00Z",
        scheduledNextTermInstructions={
            "product": {
                "productId": "CFQ7TTC0LH18",
                "skuId": "0001",
                "availabilityId": "CFQ7TTC0K5TJ",
                "billingCycle": "annual",
                "termDuration": "P1Y",
            },
            "quantity": 10,
            "customTermEndDate": None,
        },
        **state,
    )
    return path, body


async def eligibility_calls(run) -> int:
    return (await run.stats())["calls"].get("GET", {}).get("transitionEligibilities", 0)


async def test_an_ineligible_renewal_sku_stops_at_plan_naming_the_eligible_ones(
    serve_sandbox, tmp_path
):
    async with serve_sandbox() as run:
        wrong, wrong_body = renewing(run)
        right, _ = renewing(run)
        product = "scheduledNextTermInstructions.product"
        asked = {f"{product}.productId": "CFQ7TTC0L3PB", f"{product}.skuId": "0001"}
        premium = {f"{product}.productId": "CFQ7TTC0LCHC", f"{product}.skuId": "0002"}
        changes = [
            sub_change(wrong, asked, name="wrong"),
            sub_change(right, {**premium, "scheduledNextTermInstructions.quantity": 10}, "ok"),
        ]
        done, engine = await apply(run.client, changes, tmp_path)
        calls = await eligibility_calls(run)
        body = {
            **wrong_body,
            "scheduledNextTermInstructions": {
                "product": {"productId": "CFQ7TTC0L3PB", "skuId": "0001", "termDuration": "P1Y"},
                "quantity": 10,
            },
        }
        answer = await run.client.patch(wrong, json=body)
        after = (await run.client.get(right)).json()
    stopped, ok = done[changes[0].key], done[changes[1].key]
    assert (stopped.outcome, stopped.error_code) == ("failed", 800002)
    assert stopped.error_message.startswith("not sent: Partner Center would refuse it")
    assert "CFQ7TTC0L3PB:0001 is not eligible" in stopped.error_message
    assert "Microsoft 365 Business Premium (CFQ7TTC0LCHC:0002)" in stopped.error_message
    assert "Microsoft 365 E3 (CFQ7TTC0LFLX:0001)" in stopped.error_message
    assert (answer.status_code, answer.json()["code"]) == (400, 800002)  # the sandbox enforces
    assert ok.outcome == "ok"
    assert after["scheduledNextTermInstructions"]["product"]["productId"] == "CFQ7TTC0LCHC"
    assert "renews on 2027-03-01, processed from 00:00 UTC, up to 24 hours" in ok.error_message
    assert calls == 2 == engine.calls[("subscriptions", "ELIGIBILITY")]


async def test_a_run_without_renewal_sku_or_term_changes_reads_no_eligibilities(
    serve_sandbox, tmp_path
):
    async with serve_sandbox() as run:
        paths = [renewing(run)[0] for _ in range(3)]
        changes = [
            sub_change(paths[0], {"quantity": 12}, "a"),
            sub_change(paths[1], {"scheduledNextTermInstructions.quantity": 4}, "b"),
            sub_change(paths[2], {"friendlyName": "Sales"}, "c"),
        ]
        done, engine = await apply(run.client, changes, tmp_path)
        calls = await eligibility_calls(run)
    assert [done[c.key].outcome for c in changes] == ["ok", "ok", "ok"], [
        done[c.key].error_message for c in changes
    ]
    assert calls == 0 and ("subscriptions", "ELIGIBILITY") not in engine.calls


async def test_a_custom_term_end_date_is_checked_against_the_documented_rules(
    serve_sandbox, tmp_path
):
    end = "scheduledNextTermInstructions.customTermEndDate"
    async with serve_sandbox() as run:
        paths = [renewing(run)[0] for _ in range(3)]
        changes = [
            sub_change(paths[0], {end: "2027-12-31T00:00:00Z"}, "month-end"),
            sub_change(paths[1], {end: "2027-12-15T00:00:00Z"}, "mid-month"),
            sub_change(paths[2], {end: "2026-12-31T00:00:00Z"}, "before-renewal"),
        ]
        done, _ = await apply(run.client, changes, tmp_path)
    month_end, mid, early = (done[c.key] for c in changes)
    assert month_end.outcome == "ok"
    # not predicted (it may co-term another subscription); the sandbox finds none and refuses
    assert (mid.outcome, mid.error_code) == ("failed", 800002)
    assert "co-terms" in mid.error_message
    assert (early.outcome, early.error_code) == ("failed", 800002)
    assert early.error_message.startswith("not sent: Partner Center would refuse it")
    assert "not inside the next term (from 2027-03-01" in early.error_message


def test_removing_renewal_changes_from_a_sheet_shows_in_changes_and_undoes(tmp_path):
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec()))
    path, body = renewing(Held(sandbox))
    customer, sid = path.split("/")[3], path.split("/")[5]
    scheduled = body["scheduledNextTermInstructions"]
    sheet = tmp_path / "remove.csv"
    sheet.write_text(f"Customer ID,Subscription ID,Remove renewal changes\n{customer},{sid},yes\n")
    with uvicorn_server(sandbox.app) as url:
        plan = plan_file(sheet, target=url, out=tmp_path / "plan", settings=FAST)
        run = apply_file(sheet, target=url, out=tmp_path / "run", settings=FAST)
        removed = sandbox.store.get("subscriptions", customer, sid, time.time())
        again = apply_file(sheet, target=url, out=tmp_path / "again", settings=FAST)
        undo = apply_file(
            tmp_path / "run" / "undo.csv", target=url, out=tmp_path / "u", settings=FAST
        )
        restored = sandbox.store.get("subscriptions", customer, sid, time.time())
    assert plan.outcomes["change"] == 1 and run.counts()["ok"] == 1
    row = pl.read_csv(tmp_path / "run" / "results.csv", infer_schema=False).row(0, named=True)
    assert row["outcome"] == "ok"
    assert row["changes"].startswith("Renewal changes")
    assert "scheduledNextTermInstructions" not in removed
    assert again.counts()["no_change"] == 1  # nothing left to remove
    assert undo.counts()["ok"] == 1
    assert restored["scheduledNextTermInstructions"]["product"] == scheduled["product"]
    assert restored["scheduledNextTermInstructions"]["quantity"] == scheduled["quantity"]


# --- 3. two-tier partners ------------------------------------------------------------------------


def test_export_for_one_reseller_carries_its_id_through_apply(tmp_path, cli):
    customer = str(uuid.uuid4())
    subs = [str(uuid.uuid4()) for _ in range(3)]
    seed = tmp_path / "two-tier.csv"
    seed.write_text(
        "Customer ID,Subscription ID,Reseller ID,Quantity\n"
        f"{customer},{subs[0]},5113412,\n{customer},{subs[1]},5113412,\n"
        f"{customer},{subs[2]},6224523,\n"
    )
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec(sheets=[seed])))
    sandbox_before = {s: sandbox.store.get("subscriptions", customer, s, time.time()) for s in subs}
    assert sandbox_before[subs[2]]["partnerId"] == "6224523"
    with uvicorn_server(sandbox.app) as url:
        done = cli(
            "export", "--customer", customer, "--reseller", "5113412", "--target", url,
            "--out", "r.csv", "--json",
        )  # fmt: skip
        calls = (httpx.get(f"{url}/_sandbox/stats", timeout=10)).json()["calls"]
        exported = pl.read_csv(tmp_path / "r.csv", infer_schema=False)
        more = pl.col("Current seats").cast(pl.Int64) + 1
        edited = exported.with_columns(more.cast(pl.String).alias("Quantity"))
        edited.write_csv(tmp_path / "edited.csv")
        run = apply_file(tmp_path / "edited.csv", target=url, out=tmp_path / "run", settings=FAST)
        other = sandbox.store.get("subscriptions", customer, subs[2], time.time())
    assert done.returncode == 0, done.stderr
    assert sorted(exported.get_column("Subscription ID")) == sorted(subs[:2])
    assert set(exported.get_column("Reseller ID")) == {"5113412"}
    assert calls["GET"]["subscriptions"] == 1  # one list call, filtered by mpn_id
    assert run.counts()["ok"] == 2
    results = pl.read_csv(tmp_path / "run" / "results.csv", infer_schema=False)
    assert set(results.get_column("Reseller ID")) == {"5113412"}
    assert other == sandbox_before[subs[2]]  # the other reseller's subscription is untouched


def test_the_sandbox_seeds_each_kind_a_sheet_names_and_plan_tells_them_apart(tmp_path):
    customer = str(uuid.uuid4())
    rows = [(p[2], str(uuid.uuid4()), p[3]) for p in resources.KIND_PRODUCTS]
    sheet = tmp_path / "kinds.csv"
    sheet.write_text(
        "Customer ID,Subscription ID,Product,Status\n"
        + "".join(f"{customer},{sid},{name},deleted\n" for name, sid, _ in rows)
    )
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec(sheets=[sheet])))
    held = {k: sandbox.store.get("subscriptions", customer, s, time.time()) for _, s, k in rows}
    with uvicorn_server(sandbox.app) as url:
        plan = plan_file(sheet, target=url, out=tmp_path / "plan", settings=FAST)
    assert {k: held[k]["productType"]["id"] for k in held} == {
        "perpetual": "Software",
        "software": "Software",
        "saas": "OnlineServicesNCE",
        "azure": "Azure",
    }
    assert "termDuration" not in held["perpetual"] and held["software"]["termDuration"] == "P1Y"
    assert held["saas"]["isMicrosoftProduct"] is False
    by_row = {e["change"]["rows"][0]: e for e in plan.entries}
    outcomes = {kind: by_row[i + 2]["outcome"] for i, (_, _, kind) in enumerate(rows)}
    # bought days ago, inside every window; perpetual software is cancelled through its order
    assert outcomes == {
        "perpetual": "would_fail",
        "software": "change",
        "saas": "change",
        "azure": "change",
    }
    assert by_row[2]["error_code"] == 800002
