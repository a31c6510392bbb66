"""values: values compared as Partner Center stores them."""

from __future__ import annotations

import pytest
from conftest import SUB1, SUB2

from bulkpatch.check.values import same_value


@pytest.mark.parametrize(
    ("name", "sheet", "live", "same"),
    [
        ("status", "Active", "active", True),
        ("status", "suspended", "active", False),
        ("commitmentEndDate", "2027-01-31T00:00:00Z", "2027-01-31T17:45:12.123Z", True),
        ("commitmentEndDate", "2027-01-31", "2027-01-31T00:00:00+00:00", True),
        ("commitmentEndDate", "2027-01-31T00:00:00Z", "2027-02-01T00:00:00Z", False),
        (
            "scheduledNextTermInstructions.customTermEndDate",
            "2027-01-31T10:00:00Z",
            "2027-01-31T11:00:00Z",
            False,
        ),
        ("suspensionReasons", ["Fraud", "Other"], ["Other", "Fraud"], True),
        ("suspensionReasons", ["Fraud"], ["Fraud", "Other"], False),
        ("suspensionReasons", [], None, True),
        ("quantity", 12, 12, True),
        ("quantity", 12, 13, False),
        ("autoRenewEnabled", False, False, True),
        ("autoRenewEnabled", True, False, False),
        ("friendlyName", "Team A", "Team A", True),
        ("friendlyName", "Team A", "team a", False),
        ("friendlyName", None, "Team A", False),
        ("entitlementId", None, None, True),
    ],
)
def test_same_value_compares_as_partner_center_stores(name, sheet, live, same):
    from bulkpatch.catalog.fields import field

    assert same_value(field("subscriptions", name), sheet, live) is same
    assert same_value(field("subscriptions", name), live, sheet) is same


def test_same_value_compares_ids_without_case_or_braces():
    from bulkpatch.catalog.fields import field

    assert same_value(field("orders", "lineItems.subscriptionId"), "{" + SUB1.upper() + "}", SUB1)
    assert not same_value(field("orders", "lineItems.subscriptionId"), SUB1, SUB2)
