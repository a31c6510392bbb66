"""Stage 2, check: every cell against the catalog's rules, then the rules that span rows.

Pandera (polars backend) runs the column rules lazily, so every failing cell of every column is
collected, not only the first. It validates the cleaned text, never coerced columns: a coerced
dirty column gives wrong answers (once one cell fails to convert the column stays text, blanks
are reported too and range checks never run). Cross-row rules are Polars window expressions.
Bad rows are data: the result is an issues table (row, column, value, rule, message) and an
outcome per row, `valid`, `invalid` or `no_change`. There is no per-row Python on this path.

The column rules and the outcomes are here; what a value must look like (and what it is, typed)
is `values.py`, the rules that span rows are `crossrow.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from bulkpatch.catalog.fields import Field, enum_key
from bulkpatch.check.crossrow import cross_row_issues
from bulkpatch.check.values import (
    BOOL_WORDS,
    GROUPED,
    PATTERNS,
    as_enum_key,
    as_integer,
    as_read,
    asks_change,
    date_part,
    has_invisible,
)
from bulkpatch.load.sheet import ISSUE_SCHEMA, ROW, Column, Sheet, cleaned
from bulkpatch.outcomes import CHECK_OUTCOMES

MISSING, READ_ONLY, BOOLEAN, ENUM = (
    "missing value",
    "read-only column",
    "not yes or no",
    "not an allowed value",
)
GROUPED_RULE, SIGNED_RULE = "number with a separator", "sign in a total"
TOO_LARGE, TOO_LARGE_WORDS = "number too large", "is far too large: write a number such as 25"
GROUPED_WORDS = (
    "is not a whole number as written (is that a thousands separator or a decimal point?): "
    "write digits only, such as 1000 or 1"
)
SIGNED_WORDS = "has a sign, but this column is the new total: write the total without a sign"
SEAT_CHANGE_WORDS = ' (such as 12), or write the seats to add or remove in a "Seat change" column'
_TERMS = {
    "P1M": ("monthly", "month", "1month", "onemonth", "1mo", "1m"),
    "P1Y": ("yearly", "annual", "annually", "year", "1year", "oneyear", "12months", "1yr", "1y"),
    "P3Y": ("triennial", "3years", "threeyears", "36months", "3year", "3yr", "3y"),
}


@dataclass
class Checked:
    """A sheet after checking: its issues table and one outcome per row."""

    sheet: Sheet
    issues: pl.DataFrame
    outcomes: pl.DataFrame  # ROW, outcome, errors

    def counts(self) -> dict[str, int]:
        """Rows per outcome, every outcome present (zero when none)."""
        return dict(self._counts)

    @functools.cached_property
    def _counts(self) -> dict[str, int]:  # counted once: summaries ask several times
        found = dict(self.outcomes.group_by("outcome").len().iter_rows())
        return {o: int(found.get(o, 0)) for o in CHECK_OUTCOMES}

    def rule_counts(self) -> dict[str, int]:
        """Problems per rule, most frequent first."""
        counted = self.issues.group_by("rule").len().sort(["len", "rule"], descending=[True, False])
        return dict(counted.iter_rows())


def check(sheet: Sheet) -> Checked:
    """Check every cell and every cross-row rule of `sheet`."""
    fields = [c for c in sheet.columns if c.field]
    text = cleaned(sheet, [c.name for c in fields])
    # A cell left as read asks for nothing (the three-way rule): the value rules judge only
    # what the user asks for, so an export checked as it is has nothing to fix.
    judged = text.with_columns(
        pl.when(same).then(None).otherwise(pl.col(name)).alias(name)
        for name, same in as_read(sheet).items()
    )
    issues = pl.concat(
        [sheet.issues, _column_issues(judged, fields), *cross_row_issues(sheet, text)],
        how="vertical",
    )
    order = {c.header: i for i, c in enumerate(sheet.columns)}
    issues = issues.sort(
        [pl.col("row"), pl.col("column").replace_strict(order, default=-1, return_dtype=pl.Int64)]
    )
    return Checked(sheet, issues, _outcomes(sheet, text, issues))


# --- Column rules (Pandera) ----------------------------------------------------------------------


def _column_issues(text: pl.DataFrame, fields: list[Column]) -> pl.DataFrame:
    schema = pa.DataFrameSchema(
        {
            c.name: pa.Column(pl.String, checks=_checks(c.field), nullable=not c.field.required)
            for c in fields
            if c.field
        },
        strict=False,
    )
    try:
        schema.validate(text, lazy=True)
        return pl.DataFrame(schema=ISSUE_SCHEMA)
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    explain = pl.DataFrame(
        [
            (c.name, rule, c.header, words)
            for c in fields
            if c.field
            for rule, words in _rule_words(c.field).items()
        ],
        schema={"column": pl.String, "check": pl.String, "header": pl.String, "words": pl.String},
        orient="row",
    )
    found = failures.filter(pl.col("index").is_not_null()).join(
        explain, on=["column", "check"], how="left"
    )
    found = found.with_columns(text.get_column(ROW).gather(found.get_column("index")).alias("row"))
    value = pl.col("failure_case")
    return found.select(
        "row",
        pl.col("header").alias("column"),
        pl.when(value.is_null() | (pl.col("check") == "not_nullable"))
        .then(pl.lit(""))
        .otherwise(value)
        .alias("value"),
        # A grouped number is counted with the other numbers that are not whole as written.
        pl.col("check")
        .replace({"not_nullable": MISSING, GROUPED_RULE: PATTERNS["integer"][1]})
        .alias("rule"),
        pl.when(pl.col("check") == "not_nullable")
        .then(pl.format("{}: is empty; {}", "header", "words"))
        .otherwise(pl.format('{}: "{}" {}', "header", _shortened(value), "words"))
        .alias("message"),
    )


def _shortened(value: pl.Expr, most: int = 60) -> pl.Expr:
    """A value as a message quotes it: a long one cut, so the message stays one line to read
    (the `value` column keeps it whole)."""
    cut = pl.concat_str(value.str.slice(0, most - 1), pl.lit("…"))
    return pl.when(value.str.len_chars() > most).then(cut).otherwise(value)


def _rule_words(f: Field) -> dict[str, str]:
    """Rule id -> the plain words that follow the value in a message."""
    words = {"not_nullable": "every row needs one"}
    if f.role == "read_only":
        words[READ_ONLY] = "is read-only: Partner Center computes it; clear the cell"
    elif f.type in PATTERNS:
        _, rule, text = PATTERNS[f.type]
        words[rule] = text
    elif f.type == "boolean":
        words[BOOLEAN] = "is not yes or no (use TRUE, FALSE, yes, no, 1 or 0)"
    elif f.type == "enum":
        words[ENUM] = "is not one of " + ", ".join(f.enum)
    if f.type in ("integer", "number") and f.role != "read_only":
        words[TOO_LARGE] = TOO_LARGE_WORDS
    if f.type == "integer" and f.role != "read_only":
        words[GROUPED_RULE] = GROUPED_WORDS
        if f.role != "delta":  # only a subscription's quantity has a seat change column
            words[SIGNED_RULE] = SIGNED_WORDS + (SEAT_CHANGE_WORDS if f.name == "quantity" else "")
    if f.minimum is not None:
        below = f"is below {f.minimum}"
        words[f"below {f.minimum}"] = below + (
            f": write a total of at least {f.minimum}" if f.minimum else ""
        )
    words.update({rule: text for rule, (text, _) in _hints(f).items()})
    return words


def _hints(f: Field) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Words people type for a value Partner Center spells otherwise: rule id -> (what to
    write instead, the words as enum keys). Such a word gets this one message."""
    if f.type == "duration":
        return {
            f"term in words ({term})": (f"is not a term length: write {term}", words)
            for term, words in _TERMS.items()
        }
    if f.type == "enum" and "deleted" in f.enum and "cancelled" not in f.enum:
        return {
            "cancelled is deleted": (
                'is refused: Partner Center calls a cancelled subscription "deleted": write '
                "deleted",
                ("cancelled", "canceled", "cancel"),
            )
        }
    if f.type == "enum" and "cancelled" in f.enum:
        return {
            "canceled is cancelled": (
                'is spelled "cancelled" in Partner Center: write cancelled',
                ("canceled", "cancel"),
            )
        }
    return {}


def _checks(f: Field) -> list[pa.Check]:
    """The Pandera checks for one field, each named by its rule id. They are disjoint: a cell
    breaks at most the one rule that says best what to write instead."""
    if f.role == "read_only":
        return [_expr_check(READ_ONLY, lambda c: c.is_null())]
    hints = _hints(f)
    hinted = [key for _, keys in hints.values() for key in keys]
    checks: list[pa.Check] = []
    if f.type == "datetime":  # the pattern admits 2026-02-30; the calendar does not
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(
            _expr_check(rule, lambda c: c.str.contains(pattern) & date_part(c).is_not_null())
        )
    elif f.type == "integer":
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(
            _expr_check(rule, lambda c: c.str.contains(pattern) | c.str.contains(GROUPED))
        )
        checks.append(_expr_check(GROUPED_RULE, lambda c: ~c.str.contains(GROUPED)))
        # digits beyond what a 64-bit whole number holds would be read as no value at all
        checks.append(
            _expr_check(TOO_LARGE, lambda c: ~c.str.contains(pattern) | as_integer(c).is_not_null())
        )
        if f.role != "delta":
            checks.append(_expr_check(SIGNED_RULE, lambda c: ~c.str.starts_with("+")))
    elif f.type in ("guid", "order_id"):  # an invisible character gets its own message
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(_expr_check(rule, lambda c: c.str.contains(pattern) | has_invisible(c)))
    elif f.type in PATTERNS:
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(
            _expr_check(rule, lambda c: c.str.contains(pattern) | as_enum_key(c).is_in(hinted))
        )
        if f.type == "number":  # 400 digits are infinity as a float: not a number to send
            checks.append(_expr_check(TOO_LARGE, _finite))
    elif f.type == "boolean":
        checks.append(_expr_check(BOOLEAN, lambda c: c.str.to_lowercase().is_in(BOOL_WORDS)))
    elif f.type == "enum":
        keys = [enum_key(v) for v in f.enum] + hinted
        checks.append(_expr_check(ENUM, lambda c: as_enum_key(c).is_in(keys)))
    for rule, (_, words) in hints.items():
        checks.append(_expr_check(rule, lambda c, words=words: ~as_enum_key(c).is_in(words)))
    if f.minimum is not None:
        minimum = f.minimum
        checks.append(
            _expr_check(f"below {minimum}", lambda c: (as_integer(c) >= minimum).fill_null(True))
        )
    return checks


def _finite(c: pl.Expr) -> pl.Expr:
    return c.cast(pl.Float64, strict=False).is_finite().fill_null(True)


def _expr_check(name: str, test: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A whole-column check; an empty cell passes every check (it leaves the field as it is;
    a required column says so through `not_nullable`)."""

    def run(data: pa.PolarsData) -> pl.LazyFrame:
        c = pl.col(data.key)
        return data.lazyframe.select(test(c) | c.is_null())

    return pa.Check(run, name=name)


# --- Outcomes ------------------------------------------------------------------------------------


def _outcomes(sheet: Sheet, text: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """ROW, outcome and errors (the row's messages; null when it has none)."""
    changes = list(asks_change(sheet).values())
    errors = issues.group_by("row", maintain_order=True).agg(pl.col("message").str.join("; "))
    # A lookup, not a join: most rows have no error, and a join would copy every row twice.
    message = pl.col(ROW).replace_strict(
        errors.get_column("row"), errors.get_column("message"), default=None, return_dtype=pl.String
    )
    return (
        text.lazy()
        .with_columns(message.alias("errors"))
        .select(
            ROW,
            pl.when(pl.col("errors").is_not_null())
            .then(pl.lit("invalid"))
            .when(pl.any_horizontal(changes or [pl.lit(False)]))
            .then(pl.lit("valid"))
            .otherwise(pl.lit("no_change"))
            .alias("outcome"),
            "errors",
        )
        .collect()
    )
