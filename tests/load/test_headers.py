"""headers: everyday words that name no field, and near misses of known headers."""

from __future__ import annotations

import pytest

from bulkpatch.catalog.fields import FIELDS, header_index, normalize_header
from bulkpatch.load.headers import near_miss


@pytest.mark.parametrize("word", ["Name", "Offer", "Product", "End date"])
def test_ambiguous_everyday_words_name_no_settable_field(word):
    for kind in FIELDS:
        found = header_index(kind).get(normalize_header(word))
        assert found is None or found.role == "expected"  # never a change request
        assert found is not None or near_miss(kind, word) is None  # nor a near miss of one
    offer = header_index("subscriptions").get(normalize_header(word))
    assert (offer.name if offer else None) == (
        "offer:any" if word in ("Offer", "Product") else None
    )


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
    # `Customer` and `Company` name a customer now (matching), so are not here
    "header",
    ["Notes", "Amount", "Date", "Total", "Ref"],
)
def test_other_words_are_not_near_misses(header):
    assert near_miss("subscriptions", header) is None
