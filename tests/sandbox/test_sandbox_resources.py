"""sandbox resources: realistic shapes, every field of Partner Center's reference models."""

from __future__ import annotations

import pytest
from conftest import REFERENCE_FIELDS

from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec
from bulkpatch.sandbox.schema import problems

pytestmark = pytest.mark.anyio


async def test_resources_carry_realistic_shapes(serve_sandbox):
    async with serve_sandbox(SandboxConfig(seed=SeedSpec(synthetic=(3, 20)))) as run:
        rows = run.sandbox.store.db.execute(
            "select customer_id, id from resources where kind='subscriptions'"
        ).fetchall()
        bodies = [
            (await run.client.get(f"/v1/customers/{c}/subscriptions/{s}")).json() for c, s in rows
        ]
    assert len(bodies) == 60
    legacy = [b for b in bodies if "etag" in b["attributes"]]
    modern = [b for b in bodies if "etag" not in b["attributes"]]
    assert legacy and modern
    assert all(
        len(b["offerId"].split(":")) == 3
        and b["refundableQuantity"]["details"]
        and b["refundableQuantity"]["details"][0]["allowedUntilDateTime"]
        for b in modern
    )
    assert all("refundableQuantity" not in b for b in legacy)
    assert {b["unitType"] for b in bodies} == {"Licenses"}
    assert {b["termDuration"] for b in bodies} <= {"P1M", "P1Y"}


def dotted_keys(value, prefix="") -> set[str]:
    """Every dotted field name in a JSON body; a link, a null or an empty value is one name."""
    parts = prefix.rstrip(".").split(".")
    if isinstance(value, list) and value:
        return set().union(*(dotted_keys(v, prefix) for v in value))
    if not isinstance(value, dict) or not value or (len(parts) > 1 and parts[-2] == "links"):
        return {prefix.rstrip(".")}
    return set().union(*(dotted_keys(v, f"{prefix}{k}.") for k, v in value.items()))


def test_resources_carry_every_field_of_the_reference_models():
    keys = {"subscription": set(), "order": set()}
    for seed in (SeedSpec(synthetic=(5, 20)), SeedSpec.samples()):
        store = Sandbox(SandboxConfig(seed=seed)).store
        # the seeded Customer resources (names for matching) are the customer list's, not these
        # request bodies': `test_matching` reads them through the list
        rows = store.db.execute(
            "select kind, customer_id, id from resources where kind != 'customers'"
        ).fetchall()
        for kind, customer, rid in rows:
            body = store.get(kind, customer, rid, 0)
            assert problems(kind, body) == []
            keys[kind.removesuffix("s")] |= dotted_keys(body)
    listed = {"subscription": set(), "order": set()}
    for line in REFERENCE_FIELDS.read_text().splitlines():
        if line and not line.startswith("#"):
            kind, name = line.split()[:2]
            listed[kind].add(name)
    for kind, names in keys.items():  # a null object stands for the fields beneath it
        assert all(any(n == k or n.startswith(k + ".") for n in listed[kind]) for k in names)
        assert all(any(n == k or n.startswith(k + ".") for k in names) for n in listed[kind])
