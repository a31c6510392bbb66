"""Does a JSON body stay within the reference model? The sandbox's 800002 check, and the test
that every sandbox response conforms, both ask this one question of the field catalog."""

from __future__ import annotations

from typing import Any

from bulkpatch.catalog.fields import ARRAYS, FIELDS, Field, Kind
from bulkpatch.catalog.model import json_fits

LINK_KEYS = {"uri": str, "method": str, "headers": list, "body": str}


def _fields(kind: Kind) -> dict[str, Field]:
    found = {f.name: f for f in FIELDS[kind] if f.role != "path"}
    found["id"] = Field("id")  # the resource id is `id` in the body
    return found


def problems(kind: Kind, body: Any) -> list[str]:
    """Every way `body` strays from the reference model of `kind` (empty when it conforms)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    found: list[str] = []
    _walk(kind, _fields(kind), body, "", found)
    return found


def _walk(kind: Kind, fields: dict[str, Field], obj: dict, prefix: str, found: list[str]) -> None:
    for key, value in obj.items():
        name = prefix + key
        if value is None:
            continue
        if name.startswith("links.") or ".links." in name:
            _check_link(name, value, found)
        elif name in fields:
            _check_value(fields[name], value, found)
        elif any(f.startswith(name + ".") for f in fields):
            items = value if name in ARRAYS[kind] and isinstance(value, list) else [value]
            if name in ARRAYS[kind] and not isinstance(value, list):
                found.append(f"{name} must be an array")
            for item in items:
                if isinstance(item, dict):
                    _walk(kind, fields, item, name + ".", found)
                else:
                    found.append(f"{name} must hold objects")
        else:
            found.append(f"{name} is not a field of the {kind} resource")


def _check_value(f: Field, value: Any, found: list[str]) -> None:
    if f.type == "enum":
        if value not in f.enum:
            found.append(f"{f.name}: {value!r} is not one of {', '.join(f.enum)}")
    elif not json_fits(f.type, value):
        found.append(f"{f.name}: {value!r} has the wrong type (expected {f.type})")


def _check_link(name: str, value: Any, found: list[str]) -> None:
    links = value if isinstance(value, list) else [value]
    for link in links:
        if not isinstance(link, dict) or any(
            k not in LINK_KEYS or not isinstance(v, LINK_KEYS[k]) for k, v in link.items()
        ):
            found.append(f"{name} is not a link object")
