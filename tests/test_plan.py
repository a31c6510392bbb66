"""plan: rows become changes; a change merged into the resource as read is a full body."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import CUSTOMER, SUB1, SUB2

from bulkpatch.check import check
from bulkpatch.load import load
from bulkpatch.plan import Change, changes, merge
from bulkpatch.sandbox import resources

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
