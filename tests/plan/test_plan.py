"""plan: rows become changes; a change merged into the resource as read is a full body."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import UTC, datetime

import pytest
from conftest import CUSTOMER, FAST, SUB1, SUB2, ids, journal_calls, results, server, stats, true_up

from bulkpatch.check.checker import check
from bulkpatch.commands.api import plan_file
from bulkpatch.commands.apply import apply_file
from bulkpatch.errors import InputError, StoppedError
from bulkpatch.load.reader import load
from bulkpatch.plan.changes import Change, changes, merge
from bulkpatch.sandbox import resources
from bulkpatch.settings import Settings

NOW = datetime.now(UTC)


def subscription(**state):
    body = resources.subscription(CUSTOMER, SUB1, NOW, **state)
    body.pop("scheduledNextTermInstructions", None)
    return body


def test_rows_become_changes_with_typed_targets_and_stable_request_ids(write_csv):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Auto renew", "Notes"],
            [CUSTOMER, SUB1, "12.0", "no", "x"],
            [CUSTOMER, SUB2, "", "", "nothing"],
            [CUSTOMER, "bad", "3", "", ""],
        ]
    )
    checked = check(load(path)[0])
    made, held = changes(checked, "run-1")
    assert held == {}
    assert [(c.resource_id, c.rows, c.values) for c in made] == [
        (SUB1, [2], {"quantity": 12, "autoRenewEnabled": False}),
    ]
    again, _ = changes(checked, "run-1")
    other, _ = changes(checked, "run-2")
    assert again[0].request_id == made[0].request_id != other[0].request_id


def test_merge_keeps_every_other_field_and_lists_what_changes():
    current = subscription(quantity=10, autoRenewEnabled=True, friendlyName="Old")
    change = Change("subscriptions", CUSTOMER, SUB1, [2], {"quantity": 12, "friendlyName": "Old"})
    merged = merge(change, current, NOW)
    assert merged.diffs == {"quantity": (10, 12)}
    assert merged.body == {**current, "quantity": 12}
    assert merged.describe() == "quantity: 10 -> 12"
    assert merged.refusal is None


def test_turning_auto_renew_off_ends_the_renewal_instructions():
    instructions = {
        "product": {
            "productId": "P",
            "skuId": "S",
            "availabilityId": "A",
            "billingCycle": "monthly",
            "termDuration": "P1Y",
        },
        "quantity": 4,
    }
    current = {**subscription(), "scheduledNextTermInstructions": instructions}
    merged = merge(
        Change("subscriptions", CUSTOMER, SUB1, [2], {"autoRenewEnabled": False}), current, NOW
    )
    assert "scheduledNextTermInstructions" not in merged.body
    assert merged.diffs["scheduledNextTermInstructions"] == (instructions, None)
    assert merged.refusal is None


def test_nested_values_create_their_objects():
    change = Change(
        "subscriptions", CUSTOMER, SUB1, [2], {"scheduledNextTermInstructions.quantity": 7}
    )
    merged = merge(change, subscription(), NOW)
    assert merged.body["scheduledNextTermInstructions"] == {"quantity": 7}
    assert merged.diffs == {"scheduledNextTermInstructions.quantity": (None, 7)}


def test_predicted_refusals_use_partner_center_codes():
    suspended = subscription(status="suspended")
    change = Change("subscriptions", CUSTOMER, SUB1, [2], {"quantity": 99})
    assert merge(change, suspended, NOW).refusal.code == 800091
    cycle = Change("subscriptions", CUSTOMER, SUB1, [2], {"billingCycle": "triennial"})
    # 2054 was invented (issue 11 point 6); "Partner Center REST error codes" has 800097
    # "Cannot update the billing cycle for this subscription": triennial billing on a 1-year term
    assert merge(cycle, subscription(termDuration="P1Y"), NOW).refusal.code == 800097


def test_order_rows_build_one_body_with_line_items(write_csv):
    path = write_csv(
        [
            ["Customer ID", "Order ID", "Line item", "Quantity", "Billing cycle"],
            [CUSTOMER, "ORD-1", "0", "4", "annual"],
            [CUSTOMER, "ORD-1", "1", "", "annual"],
            [CUSTOMER, "ORD-2", "0", "x", "annual"],
            [CUSTOMER, "ORD-2", "1", "", "annual"],
        ]
    )
    made, held = changes(check(load(path)[0]), "run")
    assert [(c.resource_id, c.rows, c.values, c.lines) for c in made] == [
        (
            "ORD-1",
            [2, 3],
            {"billingCycle": "annual"},
            [{"lineItemNumber": 0, "quantity": 4}, {"lineItemNumber": 1}],
        ),
    ]
    assert held == {5: "not sent: row 4 of the same order is invalid"}
    order = resources.order(CUSTOMER, "ORD-1", NOW, [{"quantity": 2}, {"quantity": 3}])
    merged = merge(made[0], order, NOW)
    assert merged.diffs == {"billingCycle": ("monthly", "annual"), "lineItems[0].quantity": (2, 4)}
    assert merged.body["lineItems"][1] == order["lineItems"][1]
    missing = Change("orders", CUSTOMER, "ORD-1", [2], {}, [{"lineItemNumber": 7, "quantity": 1}])
    assert "no line item 7" in merge(missing, order, NOW).refusal.description


def test_plan_then_apply_sends_exactly_the_plan_and_refuses_a_changed_sheet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run's own folder goes under ./reports: keep it in tmp
    path = true_up(tmp_path, customers=2, per=4)
    with server(path) as (url, _):
        planned = plan_file(path, target=url, out=tmp_path / "plan", settings=FAST)
        reads = stats(url)["calls"]
        entries = [
            json.loads(line) for line in (tmp_path / "plan" / "plan.jsonl").read_text().splitlines()
        ]
        run = apply_file(plan_dir=tmp_path / "plan", out=tmp_path / "run", settings=FAST)
        served = stats(url)
    assert reads == {"GET": {"subscriptions": 2}}  # one list call per customer, nothing sent
    to_send = {e["change"]["request_id"] for e in entries if e["outcome"] == "change"}
    assert planned.outcomes["change"] == len(to_send) == 8
    sent = {c["request_id"] for c in journal_calls(run.folder) if c["method"] == "PATCH"}
    assert run.folder != tmp_path / "plan"  # the plan stays the plan: the run has its own folder
    assert not (tmp_path / "plan" / "results.csv").exists()
    assert sent == to_send
    assert served["calls"]["PATCH"]["subscription"] == 8 and run.counts()["ok"] == 8
    assert entries[0]["body"]["id"] and entries[0]["diffs"]
    plan_csv = results(tmp_path / "plan", "plan.csv")
    assert set(plan_csv.get_column("outcome")) == {"change"}
    assert (tmp_path / "plan" / "plan.xlsx").exists()
    assert (tmp_path / "plan" / "plan-seats.csv").exists()
    path.write_text(path.read_text() + f"{ids(1, 'customer')[0]},{uuid.uuid4()},5,,,\n")
    with pytest.raises(InputError, match="has changed"):
        apply_file(plan_dir=tmp_path / "plan", settings=FAST)


def test_expected_cells_are_carried_apart_and_never_sent(quirk):
    made, _ = changes(check(load(quirk("export-shaped.csv"))[0]), "run")
    assert [(c.resource_id, c.values, c.expected) for c in made] == [
        (
            SUB1,
            {"quantity": 14, "autoRenewEnabled": True},
            {
                "offerId": "CFQ7TTC0LH18:0001:CFQ7TTC0K5DJ",
                "offerName": "Microsoft 365 Business Basic",
                "commitmentEndDate": "2027-01-31T00:00:00Z",
                "termDuration": "P1Y",
            },
        ),
        (  # asks nothing, but says what it expects: plan still compares it (never sent)
            SUB2,
            {},
            {
                "offerId": "CFQ7TTC0LH18:0001:CFQ7TTC0K5DJ",
                "offerName": "Microsoft 365 Business Basic",
                "commitmentEndDate": "2027-03-31T00:00:00Z",
                "termDuration": "P1M",
            },
        ),
    ]
    merged = merge(made[0], subscription(quantity=10, autoRenewEnabled=True), NOW)
    assert merged.diffs == {"quantity": (10, 14)}


def test_current_columns_are_expected_values_of_the_field_they_describe(quirk):
    made, _ = changes(check(load(quirk("current-equals-target.csv"))[0]), "run")
    # row 2 asks nothing (every target equals its current value), yet what it expects is
    # compared with what Partner Center holds; row 3 asks for 31 seats
    assert [(c.rows, c.values, c.expected) for c in made] == [
        ([2], {}, {"quantity": 30, "status": "active", "autoRenewEnabled": True}),
        (
            [3],
            {"quantity": 31},
            {"quantity": 30, "status": "active", "autoRenewEnabled": True},
        ),
    ]


def test_a_seat_change_is_a_delta_not_a_value(quirk):
    made, _ = changes(check(load(quirk("seat-change.csv"))[0]), "run")
    assert [(c.rows, c.values, c.delta) for c in made] == [([2], {}, 2), ([3], {}, -1)]


def test_ids_are_sent_lower_case_without_braces(write_csv):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity"],
            ["{" + CUSTOMER.upper() + "}", "{" + SUB1.upper() + "}", "3"],
        ]
    )
    (change,) = changes(check(load(path)[0]), "run")[0]
    assert change.path == f"/v1/customers/{CUSTOMER}/subscriptions/{SUB1}"


def test_order_line_expectations_name_their_line_and_are_not_sent(write_csv):
    path = write_csv(
        [
            ["Customer ID", "Order ID", "Line item", "Offer ID", "Quantity", "Current quantity"],
            [CUSTOMER, "ORD-1", "0", "OFFER-A", "4", "2"],
            [CUSTOMER, "ORD-1", "1", "OFFER-B", "3", "3"],
        ]
    )
    (change,) = changes(check(load(path)[0]), "run")[0]
    assert change.lines == [{"lineItemNumber": 0, "quantity": 4}, {"lineItemNumber": 1}]
    assert change.expected_lines == [
        {"lineItemNumber": 0, "offerId": "OFFER-A", "quantity": 2},
        {"lineItemNumber": 1, "offerId": "OFFER-B", "quantity": 3},
    ]


def test_the_etag_is_carried_not_a_value_and_a_change_survives_the_plan_file(write_csv):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "attributes.etag", "Seat change", "Offer ID"],
            [CUSTOMER, SUB1, "W/abc", "+2", "OFFER-A"],
        ]
    )
    (sheet,) = load(path)
    assert [m.role for m in sheet.mapping()] == ["key", "key", "carried", "delta", "expected"]
    (change,) = changes(check(sheet), "run")[0]
    assert (change.values, change.expected, change.delta) == ({}, {"offerId": "OFFER-A"}, 2)
    assert Change(**change.to_json()) == change  # how a plan file is read back


def test_plan_names_changes_in_the_sheets_words_with_before_and_after_columns(write_csv, tmp_path):
    path = write_csv(
        [
            ["Customer ID", "Subscription ID", "Licenses", "Auto renewal", "Notes"],
            [CUSTOMER, SUB1, "12", "no", "true-up"],
            [CUSTOMER, SUB2, "", "", "nothing asked"],
        ]
    )
    with server(path) as (url, sandbox):
        sandbox.store.put_many(
            "subscriptions", [(CUSTOMER, {**subscription(quantity=10, autoRenewEnabled=True)})]
        )
        plan_file(path, target=url, out=tmp_path / "plan", settings=FAST)
    rows = {r["Subscription ID"]: r for r in results(tmp_path / "plan", "plan.csv").to_dicts()}
    assert rows[SUB1]["changes"] == "Licenses: 10 -> 12; Auto renewal: TRUE -> FALSE"
    assert (rows[SUB1]["Licenses before"], rows[SUB1]["Licenses after"]) == ("10", "12")
    assert rows[SUB2]["Licenses before"] is None  # nothing changes on that row
    import openpyxl

    sheet = openpyxl.load_workbook(tmp_path / "plan" / "plan.xlsx")["Subscriptions"]
    header = [c.value for c in sheet[1]]
    at = header.index("changes")
    assert header[at + 1 : at + 5] == [
        "Licenses before",
        "Licenses after",
        "Auto renewal before",
        "Auto renewal after",
    ]
    first = [c.value for c in sheet[2]]
    assert first[at + 1 : at + 3] == [10, 12]  # numbers a finance user can sum


def test_plan_stops_with_exit_3_and_says_which_when_partner_center_cannot_be_read(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=2)
    with server(path, token="the-right-token") as (url, _):
        refused = cli("plan", path, "--target", url, "--out", tmp_path / "p", "--json")
    assert refused.returncode == 3  # stopped, not "2 would fail"
    error = json.loads(refused.stdout)["error"]
    assert error.startswith("could not read Partner Center: it refused the token (HTTP 401)")
    assert "Nothing was sent" in error and "would fail" not in refused.stdout
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(StoppedError, match=r"it could not be reached .*check the network"):
        plan_file(
            path,
            target=closed,
            out=tmp_path / "q",
            settings=Settings(rate=60_000, concurrency=1, backoff=0.001),
        )
