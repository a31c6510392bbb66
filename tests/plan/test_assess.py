"""assess: a change held against what Partner Center holds. Expected values that differ stop the
row as a conflict; seat changes become totals, never added twice; a mid-term change that removes
scheduled renewal changes is named before sending, undoable, and can schedule them again."""

from __future__ import annotations

import json
import uuid

import polars as pl
from conftest import (
    FAST,
    NEXT_TERM_PRODUCT,
    SAMPLES,
    current,
    journal_calls,
    results,
    server,
    stats,
)

from bulkpatch.commands.api import plan_file, prepare
from bulkpatch.commands.apply import apply_file, preview

CUSTOMER = "0f1b2c3d-1111-4222-8333-444455556666"


def subs(n: int, salt: str) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}-{i}")) for i in range(n)]


def sheet(tmp_path, header: list[str], rows: list[list[str]], name: str = "sheet.csv"):
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def hold(sandbox, sub: str, **state) -> dict:
    """Make the sandbox hold `state` for a subscription (as if someone changed it since)."""
    body = sandbox.store.get("subscriptions", CUSTOMER, sub, 0)
    body.pop("scheduledNextTermInstructions", None)  # none unless a test places them
    body.update(state)
    sandbox.store.put_many("subscriptions", [(CUSTOMER, body)])
    return body


def test_a_sheet_that_expects_other_seats_than_partner_center_holds_is_a_conflict(cli, tmp_path):
    one, two = subs(2, "conflict")
    path = sheet(
        tmp_path,
        ["Customer ID", "Subscription ID", "Current seats", "Quantity"],
        [[CUSTOMER, one, "30", "31"], [CUSTOMER, two, "30", "31"]],
    )
    with server(path) as (url, sandbox):
        hold(sandbox, one, quantity=12)  # changed in Partner Center since the sheet was made
        first = cli("apply", path, "--target", url, "--out", tmp_path / "a", "--json", "--quiet")
        held = current(url, CUSTOMER, one)["quantity"]
        accepted = cli(
            "apply", path, "--target", url, "--out", tmp_path / "b", "--accept-differences"
        )
        after = current(url, CUSTOMER, one)["quantity"]
    summary = json.loads(first.stdout)
    assert first.returncode == 1
    assert summary["outcomes"]["conflict"] == 1 and summary["outcomes"]["ok"] == 1
    row = results(tmp_path / "a").filter(pl.col("Subscription ID") == one).row(0, named=True)
    assert row["outcome"] == "conflict"
    assert row["error_message"] == (
        "not sent: the sheet expects 30 seats but Partner Center holds 12: the sheet may be out "
        "of date"
    )
    assert held == 12  # nothing was sent for it
    assert accepted.returncode == 0 and after == 31


def test_a_seat_change_becomes_a_total_and_is_not_added_again_unless_asked(cli, tmp_path):
    one, two = subs(2, "delta")
    path = sheet(
        tmp_path,
        ["Customer ID", "Subscription ID", "Seat change"],
        [[CUSTOMER, one, "+2"], [CUSTOMER, two, "-1"]],
    )
    with server(path) as (url, sandbox):
        hold(sandbox, one, quantity=10)
        hold(sandbox, two, quantity=10, refundableQuantity={"totalQuantity": 0, "details": []})
        plan = plan_file(path, target=url, out=tmp_path / "plan", settings=FAST)
        first = cli("apply", path, "--target", url, "--quiet", "--json")
        again = cli("apply", path, "--target", url, "--quiet")
        copy = tmp_path / "elsewhere" / "copy.csv"  # re-saved with other line endings
        copy.parent.mkdir()
        copy.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
        from_copy = cli("apply", copy, "--target", url, "--out", tmp_path / "x", cwd=copy.parent)
        the_plan = cli("apply", "--plan", tmp_path / "plan", "--quiet")
        forced = cli("apply", path, "--target", url, "--quiet", "--add-again", "--json")
        seats = current(url, CUSTOMER, one)["quantity"]
    planned = {
        r["Subscription ID"]: r["changes"]
        for r in results(tmp_path / "plan", "plan.csv").to_dicts()
    }
    assert planned[one] == "Seats: 10 -> 12"  # the total, from the quantity read
    assert plan.counts()["would_fail"] == 1  # 10 -> 9 without refundable seats: not sent
    assert json.loads(first.stdout)["outcomes"]["ok"] == 1
    assert again.returncode == from_copy.returncode == the_plan.returncode == 2
    assert "its seat changes were already applied by the run in " in again.stderr
    assert "--add-again" in again.stderr and "already applied" in from_copy.stderr
    assert json.loads(forced.stdout)["outcomes"]["ok"] == 1 and seats == 14


def test_an_export_shaped_sheet_applied_twice_settles_with_no_patch(cli, quirk, tmp_path):
    path = quirk("export-shaped.csv")
    with server(path) as (url, _):
        first = cli("apply", path, "--target", url, "--out", tmp_path / "a", "--json", "--quiet")
        patches = stats(url)["calls"]["PATCH"]["subscription"]
        second = cli("apply", path, "--target", url, "--out", tmp_path / "b", "--json", "--quiet")
        after = stats(url)["calls"]["PATCH"]["subscription"]
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert first.returncode == 0 and one["outcomes"]["ok"] >= 1
    assert second.returncode == 0 and two["outcomes"]["no_change"] == 2
    assert after == patches  # the second run sent nothing


def renewal_sheet(tmp_path):
    one, two = subs(2, "renewal")
    path = sheet(
        tmp_path,
        ["Customer ID", "Subscription ID", "Quantity", "Friendly name"],
        [[CUSTOMER, one, "15", ""], [CUSTOMER, two, "", "Renamed"]],
    )
    scheduled = {"product": NEXT_TERM_PRODUCT, "quantity": 37, "customTermEndDate": None}
    return path, one, two, scheduled


def place_renewals(sandbox, one: str, two: str, scheduled: dict) -> None:
    for sub in (one, two):
        body = hold(
            sandbox,
            sub,
            quantity=10,
            autoRenewEnabled=True,
            commitmentEndDate="2027-03-01T00:00:00Z",
            scheduledNextTermInstructions=scheduled,
        )
        body["attributes"].pop("etag", None)
        body["productType"] = {"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE"}
        sandbox.store.put_many("subscriptions", [(CUSTOMER, body)])


def test_a_seat_change_that_removes_renewal_changes_is_named_before_and_after(tmp_path):
    path, one, two, scheduled = renewal_sheet(tmp_path)
    with server(path) as (url, sandbox):
        place_renewals(sandbox, one, two, scheduled)
        plan_file(path, target=url, out=tmp_path / "plan", settings=FAST)
        run = apply_file(path, target=url, out=tmp_path / "run", settings=FAST)
        after = current(url, CUSTOMER, one)
        renamed = current(url, CUSTOMER, two)
    warning = (
        "this seat change removes the renewal changes scheduled for 2027-03-01: 37 seats, "
        "billed monthly, a 1-year term at renewal"
    )
    plan = {r["Subscription ID"]: r for r in results(tmp_path / "plan", "plan.csv").to_dicts()}
    assert plan[one]["errors"] == warning and not plan[two]["errors"]
    done = {r["Subscription ID"]: r for r in results(tmp_path / "run").to_dicts()}
    assert done[one]["outcome"] == "ok" and done[one]["error_message"] == warning
    assert "scheduledNextTermInstructions" not in after  # Partner Center removed them
    assert renamed["scheduledNextTermInstructions"]["quantity"] == 37  # a rename keeps them
    undo = pl.read_csv(tmp_path / "run" / "undo.csv", infer_schema=False).row(0, named=True)
    assert undo["Subscription ID"] == one and undo["quantity"] == "10"
    assert undo["scheduledNextTermInstructions.quantity"] == "37"
    assert run.counts()["ok"] == 2


def test_keep_renewal_changes_schedules_them_again_with_their_own_request_id(tmp_path):
    path, one, two, scheduled = renewal_sheet(tmp_path)
    with server(path) as (url, sandbox):
        place_renewals(sandbox, one, two, scheduled)
        apply_file(
            path,
            target=url,
            out=tmp_path / "run",
            settings=FAST,
            keep_renewal_changes=True,
        )
        after = current(url, CUSTOMER, one)
    assert after["quantity"] == 15 and after["scheduledNextTermInstructions"]["quantity"] == 37
    row = results(tmp_path / "run").filter(pl.col("Subscription ID") == one).row(0, named=True)
    patches = [c for c in journal_calls(tmp_path / "run") if c["method"] == "PATCH"]
    mine = [c["request_id"] for c in patches if one in c["path"]]
    assert len(mine) == 2 and len(set(mine)) == 2  # the second PATCH has an id of its own
    assert row["error_message"] == (
        "the renewal changes for 2027-03-01 were removed and scheduled again as they were "
        f"(37 seats, billed monthly, a 1-year term at renewal; MS-RequestId {mine[1]})"
    )


def test_the_preview_of_a_live_run_counts_removed_renewal_changes(tmp_path):
    path, one, two, scheduled = renewal_sheet(tmp_path)
    with server(path) as (url, sandbox):
        place_renewals(sandbox, one, two, scheduled)
        shown = preview(prepare(path, target=url, out=tmp_path / "p"), FAST)
    assert shown.lines()[-1].startswith("Renewal changes removed: 1 subscription (")
    assert shown.changes == 2


def test_a_product_column_that_names_another_offer_stops_the_row(cli, tmp_path):
    one, two = subs(2, "product")
    path = sheet(
        tmp_path,
        ["Customer ID", "Subscription ID", "Product", "Quantity"],
        [[CUSTOMER, one, "Power BI Pro", "20"], [CUSTOMER, two, "Microsoft 365 E3", "20"]],
    )
    with server(path) as (url, sandbox):  # seeded as the sheet says: Power BI Pro, 365 E3
        body = hold(sandbox, two, offerName="Microsoft 365 Business Basic")  # sorted apart
        result = cli("apply", path, "--target", url, "--out", tmp_path / "a", "--quiet")
        by_id = sheet(
            tmp_path,
            ["Customer ID", "Subscription ID", "Product", "Quantity"],
            [[CUSTOMER, two, body["offerId"].lower(), "20"]],
            name="by-id.csv",
        )
        second = cli("apply", by_id, "--target", url, "--out", tmp_path / "b", "--quiet")
    rows = {r["Subscription ID"]: r for r in results(tmp_path / "a").to_dicts()}
    assert result.returncode == 1 and rows[one]["outcome"] == "ok"
    assert rows[two]["outcome"] == "conflict"
    assert rows[two]["error_message"] == (
        "not sent: the sheet expects offer Microsoft 365 E3 but Partner Center holds Microsoft "
        "365 Business Basic: the sheet may be out of date"
    )
    assert second.returncode == 0  # the offer's id, in any case, names it too


def test_a_row_asking_nothing_is_still_held_to_what_it_expects(cli, tmp_path):
    one, two = subs(2, "expects")
    path = sheet(
        tmp_path,
        ["Customer ID", "Subscription ID", "Current seats", "Quantity"],
        [[CUSTOMER, one, "30", "30"], [CUSTOMER, two, "30", "30"]],
    )
    with server(path) as (url, sandbox):
        hold(sandbox, one, quantity=40)  # Partner Center holds 40, the sheet believes 30
        hold(sandbox, two, quantity=30)
        result = cli("apply", path, "--target", url, "--out", tmp_path / "a", "--json", "--quiet")
        patches = stats(url)["calls"].get("PATCH", {})
    outcomes = {r["Subscription ID"]: r["outcome"] for r in results(tmp_path / "a").to_dicts()}
    assert outcomes == {one: "conflict", two: "no_change"}
    assert result.returncode == 1 and patches == {}


def test_a_row_whose_target_already_holds_is_no_change_though_its_current_seats_are_old(
    cli, tmp_path
):
    one, two = subs(2, "done")
    path = sheet(
        tmp_path,
        ["Customer ID", "Subscription ID", "Current seats", "Quantity", "Current status"],
        [[CUSTOMER, one, "30", "31", "active"], [CUSTOMER, two, "30", "31", "suspended"]],
    )
    with server(path) as (url, sandbox):
        hold(sandbox, one, quantity=31)  # the sheet was applied before: 30 is out of date
        hold(sandbox, two, quantity=31, status="active")  # but not the status it expects
        result = cli("apply", path, "--target", url, "--out", tmp_path / "a", "--json", "--quiet")
        patches = stats(url)["calls"].get("PATCH", {})
    rows = {r["Subscription ID"]: r for r in results(tmp_path / "a").to_dicts()}
    assert rows[one]["outcome"] == "no_change" and patches == {}
    assert rows[two]["outcome"] == "conflict"
    assert rows[two]["error_message"].startswith("not sent: the sheet expects status suspended")
    assert result.returncode == 1


def test_an_order_line_that_does_not_exist_stops_the_order_instead_of_hiding_it(tmp_path):
    order_sheet = tmp_path / "orders.csv"
    with server(SAMPLES / "orders-billing-cycle.xlsx") as (url, sandbox):
        (customer, order), *_ = [
            (c, body) for c, body in _orders(sandbox) if len(body["lineItems"]) > 1
        ]
        order_sheet.write_text(
            "Customer ID,Order ID,Line item,Quantity\n"
            f"{customer},{order['id']},7,3\n{customer},{order['id']},1,5\n"
        )
        run = apply_file(order_sheet, target=url, out=tmp_path / "run", settings=FAST)
    rows = results(tmp_path / "run").to_dicts()
    assert {r["outcome"] for r in rows} == {"failed"} and run.counts()["no_change"] == 0
    assert rows[0]["error_message"] == (
        "not sent: Partner Center would refuse it (The order has no line item 7.)"
    )


def _orders(sandbox) -> list[tuple[str, dict]]:
    found = sandbox.store.db.execute("select customer_id, body from resources where kind='orders'")
    return [(c, json.loads(b)) for c, b in found]
