"""The wording the CLI, the page and the reports share: a field as the sheet names it, a value as
a finance user reads it in a cell, counts in words, and what to do with the rows that did not go.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from bulkpatch.catalog.fields import field as catalog_field
from bulkpatch.catalog.model import PLAIN, plain
from bulkpatch.load.sheet import Sheet
from bulkpatch.outcomes import FIX
from bulkpatch.plan.assess import scheduled_words

LINE = re.compile(r"^lineItems\[(\d+)\]\.(.+)$")


def spelled(sheet: Sheet) -> Callable[[str], str]:
    """How `sheet` names a changed field: its own header for the field, else plain words
    (`lineItems[2].quantity` is the line's `Quantity`: each line item has its own row)."""
    headers = {c.field.name: c.header for c in sheet.columns if c.field and c.field.changes}

    def name(key: str) -> str:
        line = LINE.match(key)
        base = f"lineItems.{line.group(2)}" if line else key
        own = PLAIN.get(base.removeprefix("lineItems."))
        return headers.get(base) or (_capital(own) if own else _words(sheet, base))

    return name


def _words(sheet: Sheet, name: str) -> str:
    """A catalog field in the words its first spelling gives (`next term quantity`), or its
    API name in plain words."""
    try:
        aliases = catalog_field(sheet.kind, name).aliases
    except KeyError:
        aliases = ()
    return _capital(aliases[0] if aliases else plain(name))


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def shown(value: Any) -> str:
    """A value as a finance user reads it in a cell: TRUE/FALSE, renewal changes in words."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dict):
        return scheduled_words(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def in_words(diffs: dict[str, Any], name: Callable[[str], str]) -> str:
    """`Seats: 10 -> 12; Auto renew: TRUE -> FALSE`, named as the sheet names them."""
    return "; ".join(f"{name(k)}: {shown(b)} -> {shown(a)}" for k, (b, a) in diffs.items())


def plural(n: int, word: str) -> str:
    """`1 row`, `2 rows`: counts in words people write."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fix_note(stem: str, outcomes: pl.DataFrame, path: Path) -> str:
    """What to do with the rows in the to-fix file `path`, by why they did not go (`outcomes`:
    the run's `outcome` column): each kind of row has its own next step."""
    bad = outcomes.filter(pl.col("outcome").is_in(FIX))
    counts: dict[str, int] = dict(bad.group_by("outcome").len().iter_rows())
    rows = plural(sum(counts.values()), "row")
    if stem == "check":
        they = "it is" if sum(counts.values()) == 1 else "they are"
        them = "it" if sum(counts.values()) == 1 else "them"
        return f"{rows} to fix: {they} in {path}, each with its reason; fix {them} and check again."
    advice = []
    if counts.keys() & {"invalid", "failed", "would_fail"}:
        advice.append("fix the invalid or refused ones there and apply that file as it is")
    if "conflict" in counts:
        advice.append(
            "rows in conflict expect values Partner Center no longer holds: export again (or "
            "update their expected columns) before sending them"
        )
    if "not_sent" in counts:
        advice.append("rows not sent go with a resume of this run, not with that file")
    said = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    went = "would not go" if stem == "plan" else "did not go"  # a plan sends nothing
    return f"{rows} {went} ({said}): they are in {path}; " + "; ".join(advice) + "."


def identity_words(identity: dict[str, Any] | None) -> str:
    """Who ran a command (`network.auth.identity_of`, or a check's computer account), in the
    words of the reports' `Run by` line, the audit log and `bulkpatch approve`."""
    if not identity:
        return "not known"
    name, kind = identity.get("name"), identity.get("kind")
    if kind == "local":
        return f"{name} (this computer's account; a check signs in to nothing)"
    if kind == "sandbox":
        return f"{name} (sandbox sign-in)" if name else "anonymous (not signed in to the sandbox)"
    if kind == "unknown":
        return "unknown (the sign-in does not say who it is)"
    ids = [f"object id {identity['object_id']}"] if identity.get("object_id") else []
    ids += [f"tenant {identity['tenant']}"] if identity.get("tenant") else []
    return f"{name} ({', '.join(ids)})" if ids else str(name)
