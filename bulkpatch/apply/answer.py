"""What an answer must show to count: the resource asked for, as JSON, with the types read.

One place decides it for every answer the engine takes as a resource's state: a read (a GET, or
an item of the per-customer list call), the 200 of a PATCH and the answer to a 202's poll. An
answer that is not the asked resource proves nothing: a read of it fails its row (its body is
never merged and sent back under the row's path), a PATCH's answer is read again, a poll waits
for the next. Fields and enum values bulkpatch does not know are left alone (Partner Center
adds them); what it reads must have the type the field catalog gives.
"""

from __future__ import annotations

import functools
import reprlib
from dataclasses import dataclass, field
from typing import Any

from bulkpatch.apply.verify import line_item
from bulkpatch.catalog.fields import ARRAYS, FIELDS, Field, Kind
from bulkpatch.catalog.model import FieldType, json_fits
from bulkpatch.network.calls import Unreadable
from bulkpatch.plan.changes import Change
from bulkpatch.plan.rules import parse_time

NOUN: dict[Kind, str] = {"subscriptions": "subscription", "orders": "order"}
# What every resource of a kind carries and the rules read without a default (`rules`,
# `plan.merge`), and what every element of an array of them carries.
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "subscriptions": ("status", "quantity"),
    "orders": ("status", "billingCycle", "creationDate"),
}
REQUIRED_IN: dict[tuple[Kind, str], tuple[str, ...]] = {
    ("subscriptions", "refundableQuantity.details"): ("quantity", "allowedUntilDateTime"),
    ("orders", "lineItems"): ("lineItemNumber",),
}
# Read by the rules (a new-commerce cancellation window) but no column of a sheet.
EXTRA: dict[Kind, tuple[Field, ...]] = {
    "subscriptions": (Field("cancellationAllowedUntilDate", "datetime"),),
    "orders": (),
}
WHAT: dict[str, str] = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "string_list": "a list of text",
    "object": "an object",
    "datetime": "a date",
}
_BRIEF = reprlib.Repr()  # a value shown in a message: at most about 40 characters
_BRIEF.maxstring = _BRIEF.maxother = 40
_BRIEF.maxlist = _BRIEF.maxdict = 3
_BRIEF.maxlevel = 2


@dataclass
class _Node:
    """The fields of one JSON object of a resource; `array`: the body holds a list of them."""

    fields: dict[str, Field | _Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    array: bool = False


def unproven(change: Change, body: Any, lines: bool = False) -> str:
    """Why `body` is not the resource `change` names, as the words after "Partner Center
    answered" (`with subscription 1111... for 22a4...`); empty when it is. `lines`: an order
    must also show every line item the change names (an answer to its PATCH or poll; a read
    without one is the order as it is, which plan refuses to change)."""
    noun, asked = NOUN[change.kind], change.resource_id
    if not isinstance(body, dict):
        return f"{_unread(body)} for {noun} {asked}"
    got = body.get("id")
    if not isinstance(got, str) or not got.strip():
        return f"with a {noun} without an id for {asked}"
    if got.strip().strip("{}").casefold() != asked.strip("{}").casefold():
        return f"with {noun} {got.strip()[:60]} for {asked}"
    if stray := _stray(_tree(change.kind), body, ""):
        return f"with {noun} {asked} {stray}"
    if lines and change.kind == "orders":
        for line in change.lines:
            if line_item(body.get("lineItems") or [], line) is None:
                which = line.get("lineItemNumber", line.get("subscriptionId"))
                return f"with order {asked} lacking line item {which}"
    return ""


def collection(body: Any, noun: str) -> tuple[list[dict[str, Any]], str]:
    """The items of a list call's answer (a Collection of `noun`s), or why it is not one, as
    the words after "Partner Center answered"."""
    if not isinstance(body, dict):
        return [], _unread(body)
    items = body.get("items")
    if not isinstance(items, list):
        return [], f"with an object holding no list of {noun}s"
    stray = next((i for i in items if not isinstance(i, dict)), None)
    if stray is not None:
        return [], f"with a list holding {_brief(stray)}, not a {noun}"
    return items, ""


def _unread(body: Any) -> str:
    """An answer that is not a JSON object, in words."""
    if isinstance(body, Unreadable):
        return f"with {body.words}" + (f' ("{body.excerpt}")' if body.excerpt else "")
    if body is None:
        return "with JSON null"
    kind = {list: "a JSON array", str: "a JSON string", bool: "JSON true or false"}
    return f"with {kind.get(type(body), 'a JSON number')} {_brief(body)}"


def _stray(node: _Node, obj: dict[str, Any], prefix: str) -> str:
    """The first value of `obj` that bulkpatch reads and that lacks its type, in words."""
    for name in node.required:
        if obj.get(name) is None:
            return f"lacking {prefix}{name}"
    for key, value in obj.items():
        spec = node.fields.get(key)
        if spec is None or value is None:
            continue
        path = prefix + key
        if isinstance(spec, Field):
            if not _fits(spec.type, value):
                return f"holding {path} {_brief(value)}, not {WHAT.get(spec.type, 'text')}"
            continue
        if spec.array and not isinstance(value, list):
            return f"holding {path} {_brief(value)}, not a list"
        for item in value if spec.array else [value]:
            if not isinstance(item, dict):
                return f"holding {path} {_brief(item)}, not an object"
            if found := _stray(spec, item, path + "."):
                return found
    return ""


def _fits(type_: FieldType, value: Any) -> bool:
    if not json_fits(type_, value):
        return False
    if type_ != "datetime":
        return True
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


@functools.cache
def _tree(kind: Kind) -> _Node:
    """The catalog's fields of `kind` as nested objects (links, which bulkpatch never reads
    for a resource's state, left out)."""
    root = _Node(required=REQUIRED[kind])
    for f in (*FIELDS[kind], *EXTRA[kind]):
        if f.role == "path" or f.name.startswith("links.") or ".links." in f.name:
            continue
        *parents, leaf = f.name.split(".")
        node, path = root, ""
        for part in parents:
            path += part
            child = node.fields.get(part)
            if not isinstance(child, _Node):
                child = _Node(required=REQUIRED_IN.get((kind, path), ()))
                child.array = path in ARRAYS[kind]
                node.fields[part] = child
            node, path = child, path + "."
        node.fields.setdefault(leaf, f)
    return root


def _brief(value: Any) -> str:
    return _BRIEF.repr(value)
