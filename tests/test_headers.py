"""headers: everyday words that name no field, and near misses of known headers."""

from __future__ import annotations

import pytest

from bulkpatch.catalog import FIELDS, header_index, normalize_header
from bulkpatch.headers import near_miss


@pytest.mark.parametrize("word", ["Name", "Offer", "Product", "End date"])
def test_ambiguous_everyday_words_name_no_field(word):
    for kind in FIELDS:
        assert normalize_header(word) not in header_index(kind)
        assert near_miss(kind, word) is None


@pytest.mark.parametrize(
    ("header", "meant"),
    [
        ("Quantitiy", "Quantity"),
        ("Auto renw", "Auto renew"),
        ("Auto/renew", "Auto renew"),
        ("Renew auto", "Auto renew"),
        ("Subscripton ID", "Subscription ID"),
        ("Current seat", "Current seats"),
        ("Frendly name", "Friendly name"),
    ],
)
def test_near_misses_of_known_headers(header, meant):
    assert near_miss("subscriptions", header) == meant


@pytest.mark.parametrize(
    "header", ["Customer", "Customers", "Notes", "Company", "Amount", "Date", "Total", "Ref"]
)
def test_other_words_are_not_near_misses(header):
    assert near_miss("subscriptions", header) is None
