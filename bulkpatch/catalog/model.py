"""What a catalog field is: its type, its role in a sheet, and how it maps to the JSON body.

The catalog (`catalog.py`) is a table of these; every stage reads fields through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["subscriptions", "orders"]
KINDS: tuple[Kind, ...] = ("subscriptions", "orders")

FieldType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "datetime",
    "enum",
    "duration",
    "currency",
    "string_list",
    "guid",
    "order_id",
    "object",
]
# What a cell of the column asks for (README, "What a sheet may hold"). path: part of the URL; key:
# identifies an order line item; settable: a target value these PATCHes document as changeable;
# expected: what the user believes Partner Center holds (never sent, compared at plan time);
# delta: a signed change of a settable number; meta: carried with the body but changes nothing
# (etag); read_only: computed by Partner Center, refused in a sheet; match: names the customer a
# row without ids is about (a company name, a domain), read to find its ids, never compared.
Role = Literal["path", "key", "settable", "expected", "delta", "meta", "read_only", "match"]
Level = Literal["resource", "order", "line"]

JSON_TYPE: dict[FieldType, str] = {
    "string": "string",
    "datetime": "string",
    "duration": "string",
    "currency": "string",
    "guid": "string",
    "order_id": "string",
    "enum": "enum",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "string_list": "string[]",
    "object": "object",
}
# Whether a JSON value has a field type's JSON type (the types not named here are strings).
JSON_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string_list": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "object": lambda v: isinstance(v, dict),
}


def json_fits(type_: FieldType, value: Any) -> bool:
    """Whether `value` (not None) has the JSON type of a field of `type_`."""
    return JSON_CHECKS.get(type_, JSON_CHECKS["string"])(value)


@dataclass(frozen=True)
class Field:
    """One sheet column's meaning: where it goes in the body and what a cell may hold."""

    name: str
    type: FieldType = "string"
    role: Role = "expected"
    enum: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    minimum: int | None = None  # the bounds of a number, applied offline by check
    maximum: int | None = None
    level: Level = "resource"
    label: str = ""
    of: str = ""  # current and delta columns: the settable field they describe

    @property
    def title(self) -> str:
        """How messages name the field when the sheet has no column for it."""
        return self.label or self.name

    @property
    def required(self) -> bool:
        """Path parameters must be on every row: without them there is no URL."""
        return self.role == "path"

    @property
    def changes(self) -> bool:
        """True when a value in this column asks Partner Center for a change."""
        return self.role in ("settable", "delta")

    @property
    def shown_role(self) -> str:
        """The role as the mapping shows it to the user."""
        return SHOWN_ROLE[self.role]


# API names as a finance user says them, where a message has no sheet header to use.
PLAIN = {
    "quantity": "seats",
    "autoRenewEnabled": "auto renew",
    "friendlyName": "friendly name",
    "billingCycle": "billing cycle",
    "termDuration": "term",
    "offerName": "offer",
    "offerId": "offer id",
    "commitmentEndDate": "commitment end date",
    "scheduledNextTermInstructions": "renewal changes",
}


def plain(name: str) -> str:
    """`autoRenewEnabled` -> `auto renew`; an unknown name split into words."""
    last = name.split(".")[-1]
    return PLAIN.get(name) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", last).lower()


SHOWN_ROLE: dict[Role, str] = {
    "path": "key",
    "key": "key",
    "settable": "set",
    "expected": "expected",
    "delta": "delta",
    "meta": "carried",
    "read_only": "read-only",
    "match": "match",
}
