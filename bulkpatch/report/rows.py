"""Each sheet row's verdict as a table, pure Polars: what a plan would do (`plan_rows`) or what
an apply did (`result_rows`) to the rows of a checked sheet, with the before and after columns
of what changed, joined to the user's own columns by `writers.table`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from bulkpatch.check.checker import Checked
from bulkpatch.load.sheet import ROW
from bulkpatch.report.words import LINE, in_words, shown, spelled

RESULT_SCHEMA = {
    "outcome": pl.String,
    "http_status": pl.Int64,
    "error_code": pl.Int64,
    "error_message": pl.String,
    "changes": pl.String,
    "request_id": pl.String,
    "correlation_id": pl.String,
    "attempts": pl.Int64,
    "elapsed_ms": pl.Int64,
}

PLAN_SCHEMA = {
    ROW: pl.Int64,
    "plan": pl.String,
    "changes": pl.String,
    "reason": pl.String,
    "request_id": pl.String,
}

Held = dict[tuple[str, int], str]  # (kind, row) -> why a valid row is kept back

SHOWN = ("change", "ok", "accepted")  # the rows whose before and after columns are filled


def _held(held: Held, kind: str) -> list[tuple[int, str]]:
    return [(row, why) for (k, row), why in held.items() if k == kind]


def plan_rows(part: Checked, entries: list[dict[str, Any]], held: Held) -> pl.DataFrame:
    """ROW, outcome (`change`, `no_change`, `conflict`, `would_fail`, or check's verdict),
    changes in the sheet's words, errors (or warnings), request_id, and the before and after
    columns, for every row of a checked sheet."""
    kind = part.sheet.kind
    name = spelled(part.sheet)
    mine = [e for e in entries if e["change"]["kind"] == kind]
    planned = pl.DataFrame(
        [
            {
                ROW: row,
                "plan": e["outcome"],
                "changes": in_words(e.get("diffs") or {}, name),
                "reason": e.get("error") or "; ".join(e.get("warnings") or []),
                "request_id": e["change"]["request_id"],
            }
            for e in mine
            for row in e["change"]["rows"]
        ],
        schema=PLAN_SCHEMA,
    )
    kept = pl.DataFrame(
        _held(held, kind), schema={ROW: pl.Int64, "reason": pl.String}, orient="row"
    )
    rows = (
        part.outcomes.join(planned, on=ROW, how="left")
        .join(kept, on=ROW, how="left", suffix="_held")
        .select(
            ROW,
            pl.coalesce(
                "plan",
                pl.when(pl.col("outcome") == "valid")
                .then(pl.lit("would_fail"))
                .otherwise("outcome"),
            ).alias("outcome"),
            pl.coalesce("errors", "reason", "reason_held", pl.lit("")).alias("errors"),
            pl.col("changes").fill_null(""),
            pl.col("request_id").fill_null(""),
        )
    )
    shown = [(e["change"], e["outcome"], e.get("diffs") or {}) for e in mine]
    return _beside(rows, before_after(shown, name), "changes")


def result_rows(
    part: Checked, results: list[tuple[dict[str, Any], dict[str, Any]]], held: Held
) -> pl.DataFrame:
    """ROW and the result columns: a change's result on each of its rows (`results`: the
    change's `rows` and `lines`, and the result's fields), check's verdict on the others; the
    changes in the sheet's words, and the before and after columns of what was applied."""
    kind = part.sheet.kind
    name = spelled(part.sheet)
    rows = [
        {
            ROW: row,
            **{k: v for k, v in result.items() if k in RESULT_SCHEMA},
            "changes": in_words(result.get("diffs") or {}, name),
        }
        for change, result in results
        for row in change["rows"]
    ]
    rows += [
        {ROW: row, "outcome": "invalid", "error_message": why} for row, why in _held(held, kind)
    ]
    sent = pl.DataFrame(rows, schema={ROW: pl.Int64, **RESULT_SCHEMA})
    table = part.outcomes.join(sent, on=ROW, how="left", suffix="_sent").select(
        ROW,
        pl.coalesce(
            "outcome_sent",
            pl.when(pl.col("outcome") == "valid").then(pl.lit("not_sent")).otherwise("outcome"),
        ).alias("outcome"),
        pl.coalesce("errors", "error_message", pl.lit("")).alias("error_message"),
        pl.col("changes").fill_null(""),
        # then what a support ticket needs (a printed report stops before these)
        "http_status",
        "error_code",
        *[
            pl.col(c).fill_null("") if RESULT_SCHEMA[c] == pl.String else pl.col(c)
            for c in ("request_id", "correlation_id", "attempts", "elapsed_ms")
        ],
    )
    shown = [(c, r["outcome"], r.get("diffs") or {}) for c, r in results]
    return _beside(table, before_after(shown, name), "changes")


def before_after(
    changes: list[tuple[dict[str, Any], str, dict[str, Any]]], name: Callable[[str], str]
) -> pl.DataFrame:
    """ROW, then `<field> before` and `<field> after` for each field a change that was (or
    would be) made sets: on the row of its line item for an order's lines, on every row of the
    change otherwise. Numbers stay numbers, so seat changes can be summed."""
    cells: dict[str, dict[int, Any]] = {}
    for change, outcome, diffs in changes:
        if outcome not in SHOWN:
            continue
        rows = change["rows"]
        by_line = {
            str(line.get("lineItemNumber")): row
            for row, line in zip(rows, change.get("lines") or [], strict=False)
        }
        for key, (before, after) in diffs.items():
            if isinstance(before, dict | list) or isinstance(after, dict | list):
                continue  # whole renewal instructions: told in `changes`
            line = LINE.match(key)
            at = [by_line[line.group(1)]] if line and line.group(1) in by_line else rows
            for row in at:
                cells.setdefault(f"{name(key)} before", {})[row] = before
                cells.setdefault(f"{name(key)} after", {})[row] = after
    every = sorted({row for values in cells.values() for row in values})
    return pl.DataFrame(
        [pl.Series(ROW, every, pl.Int64)]
        + [_typed(column, [values.get(row) for row in every]) for column, values in cells.items()]
    )


def _typed(column: str, values: list[Any]) -> pl.Series:
    """Integers, decimals and booleans as such; anything mixed as text."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool} or kinds <= {int} or kinds <= {int, float}:
        return pl.Series(column, values, strict=False)
    return pl.Series(column, [None if v is None else shown(v) for v in values], pl.String)


def _beside(table: pl.DataFrame, extra: pl.DataFrame, after: str) -> pl.DataFrame:
    """`table` with `extra`'s columns (keyed by ROW) placed right after its column `after`."""
    if extra.width <= 1:
        return table
    joined = table.join(extra, on=ROW, how="left", maintain_order="left")
    at = table.columns.index(after) + 1
    names = [*table.columns[:at], *extra.columns[1:], *table.columns[at:]]
    return joined.select(names)


def outcome_counts(frames: list[pl.DataFrame], outcomes: tuple[str, ...] = ()) -> dict[str, int]:
    """Rows per outcome over `frames` (each with an `outcome` column); `outcomes` always shown."""
    found = (
        pl.concat([f.select("outcome") for f in frames]).group_by("outcome").len()
        if frames
        else pl.DataFrame(schema={"outcome": pl.String, "len": pl.UInt32})
    )
    counted = dict(found.sort("outcome").iter_rows())
    return {**dict.fromkeys(outcomes, 0), **counted}
