"""catalog: the field table covers both reference request bodies, field by field."""

from __future__ import annotations

import pytest
from conftest import REFERENCE_FIELDS

from bulkpatch.catalog.fields import FIELDS, header_index, normalize_header
from bulkpatch.catalog.model import JSON_TYPE

KIND = {"subscription": "subscriptions", "order": "orders"}


def reference() -> list[tuple[str, str, str, list[str]]]:
    lines = [line.split() for line in REFERENCE_FIELDS.read_text().splitlines()]
    return [(KIND[p[0]], p[1], p[2], p[3:]) for p in lines if p and not p[0].startswith("#")]


@pytest.mark.parametrize(("kind", "name", "ref_type", "enum"), reference())
def test_every_reference_field_is_in_the_catalog(kind, name, ref_type, enum):
    field = header_index(kind)[normalize_header(name)]  # `id` is the resource id in the path
    if name == "id":
        assert field.role == "path"
        return
    assert field.name == name
    if ref_type == "link":
        assert field.role == "read_only"
    else:
        assert JSON_TYPE[field.type] == ref_type
    assert sorted(field.enum) == sorted(set(enum))


def test_catalog_has_nothing_the_reference_lacks():
    listed = {(kind, name) for kind, name, _, _ in reference()}
    for kind, fields in FIELDS.items():
        extra = [f.name for f in fields if f.role != "path" and (kind, f.name) not in listed]
        assert extra == []


def test_read_only_fields_are_the_server_computed_ones():
    read_only = {f.name.split(".")[0] for f in FIELDS["subscriptions"] if f.role == "read_only"}
    assert read_only == {"links", "refundOptions", "refundableQuantity", "lineItems"}
    order_read_only = {f.name for f in FIELDS["orders"] if f.role == "read_only"}
    assert all(".links." in n or n.startswith("links.") for n in order_read_only)


@pytest.mark.parametrize(
    ("kind", "header", "field"),
    [
        ("subscriptions", "Subscription ID", "subscription_id"),
        ("subscriptions", "subscription_id", "subscription_id"),
        ("subscriptions", "subscriptionId", "subscription_id"),
        ("subscriptions", "Auto-Renew", "autoRenewEnabled"),
        ("subscriptions", "Next term SKU ID", "scheduledNextTermInstructions.product.skuId"),
        (
            "subscriptions",
            "scheduledNextTermInstructions.quantity",
            "scheduledNextTermInstructions.quantity",
        ),
        ("orders", "Quantity", "lineItems.quantity"),
        ("orders", "Line item", "lineItems.lineItemNumber"),
        ("orders", "transactionType", "transactionType"),
        ("orders", "lineItems.transactionType", "lineItems.transactionType"),
    ],
)
def test_headers_and_aliases(kind, header, field):
    assert header_index(kind)[normalize_header(header)].name == field


def test_only_the_fields_a_patch_documents_as_changeable_are_settable():
    settable = {k: {f.name for f in FIELDS[k] if f.role == "settable"} for k in FIELDS}
    instructions = {
        f"scheduledNextTermInstructions.{n}"
        for n in (
            "customTermEndDate",
            "product.availabilityId",
            "product.billingCycle",
            "product.productId",
            "product.skuId",
            "product.termDuration",
            "quantity",
        )
    }
    assert settable["subscriptions"] == {
        "quantity",
        "autoRenewEnabled",
        "status",
        "friendlyName",
        "billingCycle",
        "suspensionReasons",
        *instructions,
    }
    assert settable["orders"] == {"status", "billingCycle", "lineItems.quantity"}
    keys = {f.name for f in FIELDS["orders"] if f.role in ("path", "key")}
    assert keys == {
        "customer_id",
        "order_id",
        "lineItems.lineItemNumber",
        "lineItems.subscriptionId",
    }


@pytest.mark.parametrize(
    ("kind", "header", "field", "role"),
    [
        ("subscriptions", "Current seats", "current:quantity", "expected"),
        ("subscriptions", "Current status", "current:status", "expected"),
        ("subscriptions", "Current auto renew", "current:autoRenewEnabled", "expected"),
        ("subscriptions", "Offer name", "offerName", "expected"),
        ("subscriptions", "commitmentEndDate", "commitmentEndDate", "expected"),
        ("subscriptions", "Seat change", "delta:quantity", "delta"),
        ("subscriptions", "Add seats", "delta:quantity", "delta"),
        ("subscriptions", "attributes.etag", "attributes.etag", "meta"),
        ("orders", "Current quantity", "current:lineItems.quantity", "expected"),
    ],
)
def test_current_expected_and_delta_columns(kind, header, field, role):
    found = header_index(kind)[normalize_header(header)]
    assert (found.name, found.role) == (field, role)
