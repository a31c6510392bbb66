"""Stage 2, check: every cell against the catalog's rules, then the rules that span rows.

Pandera (polars backend) runs the column rules lazily, so every failing cell of every column is
collected, not only the first. It validates the cleaned text, never coerced columns: a coerced
dirty column gives wrong answers (once one cell fails to convert the column stays text, blanks
are reported too and range checks never run). Cross-row rules are Polars window expressions.
Bad rows are data: the result is an issues table (row, column, value, code, rule, message; each
rule's stable code is in `load/codes.py`) and an outcome per row, `valid`, `invalid` or
`no_change`. Every bound the catalog gives a field (a quantity's minimum and maximum, its enum
values, what is read-only) is applied here, offline. There is no per-row Python on this path.

The column rules and the outcomes are here; what a value must look like (and what it is, typed)
is `values.py`, the rules that span rows are `crossrow.py`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import pandera.polars as pa
import polars as pl

from bulkpatch.catalog.fields import Field, enum_key
from bulkpatch.check import needs
from bulkpatch.check.crossrow import cross_row_issues
from bulkpatch.check.values import (
    BOOL_WORDS,
    DECIMAL_COMMA,
    GROUPED,
    PATTERNS,
    as_enum_key,
    as_integer,
    as_read,
    asks_change,
    date_part,
    has_invisible,
)
from bulkpatch.load.codes import IssueCode, rule
from bulkpatch.load.sheet import ISSUE_SCHEMA, ROW, Column, Sheet, cleaned
from bulkpatch.outcomes import CHECK_OUTCOMES

TOO_LARGE_WORDS = "is far too large: write a number such as 25"
GROUPED_WORDS = (
    "is not a whole number as written (is that a thousands separator or a decimal point?): "
    "write digits only, such as 1000 or 1"
)
DECIMAL_COMMA_WORDS = "has a decimal comma: write {}"  # the whole number, from the cell
# An expected-only date is never sent: the user may just drop the column rather than fix it.
CROSS_CHECK_WORDS = (
    "; this column is only a cross-check (never sent, compared with what Partner Center "
    "holds): write the date as 2026-12-31, or remove the column"
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
    outcomes: pl.DataFrame  # ROW, outcome, errors, codes
    # ROW and, per id field, whether plan must find it by name (`check.needs`): rows only
    matching: pl.DataFrame = dataclasses.field(default_factory=pl.DataFrame)
    # A matched sheet's: what this run's matching found per row (`match.sheet.FOUND`)
    found: pl.DataFrame | None = None

    def counts(self) -> dict[str, int]:
        """Rows per outcome, every outcome present (zero when none)."""
        return dict(self._counts)

    @functools.cached_property
    def _counts(self) -> dict[str, int]:  # counted once: summaries ask several times
        found = dict(self.outcomes.group_by("outcome").len().iter_rows())
        return {o: int(found.get(o, 0)) for o in CHECK_OUTCOMES}

    def rule_counts(self) -> dict[str, int]:
        """Problems per rule, most frequent first."""
        return self._counted("rule")

    def code_counts(self) -> dict[str, int]:
        """Problems per issue code, most frequent first."""
        return self._counted("code")

    def rule_codes(self) -> dict[str, list[str]]:
        """Each rule found -> its issue codes (`not a whole number` counts two)."""
        return dict(self.issues.group_by("rule").agg(pl.col("code").unique().sort()).iter_rows())

    def _counted(self, by: str) -> dict[str, int]:
        counted = self.issues.group_by(by).len().sort(["len", by], descending=[True, False])
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
    judged = needs.judged(sheet, judged)  # an id a match will find is not missing
    issues = pl.concat(
        [
            sheet.issues,
            _column_issues(judged, fields),
            needs.unnamed(sheet, text),
            *cross_row_issues(sheet, text),
        ],
        how="vertical",
    )
    order = {c.header: i for i, c in enumerate(sheet.columns)}
    issues = issues.sort(
        [pl.col("row"), pl.col("column").replace_strict(order, default=-1, return_dtype=pl.Int64)]
    )
    return Checked(sheet, issues, _outcomes(sheet, text, issues), needs.to_match(sheet))


# --- Column rules (Pandera) ----------------------------------------------------------------------


def _column_issues(text: pl.DataFrame, fields: list[Column]) -> pl.DataFrame:
    """Each cell that breaks a column rule, as Pandera finds it. Every rule of every column is
    first judged in one pass over the whole sheet (Polars runs the columns side by side), and
    Pandera, which runs its checks one after another, is given the rows that break one."""
    tests = {c.name: (_tests(c.field), c.field.required) for c in fields if c.field}
    if not tests:
        return pl.DataFrame(schema=ISSUE_SCHEMA)
    breaks = pl.any_horizontal(
        *(~t.holds(pl.col(n)) for n, (ts, _) in tests.items() for t in ts),
        *(pl.col(n).is_null() for n, (_, required) in tests.items() if required),
    )
    text = text.filter(breaks)
    schema = pa.DataFrameSchema(
        {
            n: pa.Column(pl.String, checks=[t.check() for t in ts], nullable=not required)
            for n, (ts, required) in tests.items()
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
            (c.name, name, r.code, rule(r.code, r.detail), c.header, r.words)
            for c in fields
            if c.field
            for name, r in _rules(c.field).items()
        ],
        schema=dict.fromkeys(("column", "check", "code", "rule", "header", "words"), pl.String),
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
        "code",
        "rule",
        pl.when(pl.col("check") == "not_nullable")
        .then(pl.format("{}: is empty; {}", "header", "words"))
        .when(pl.col("code") == "integer.decimal_comma")
        .then(
            pl.format(
                '{}: "{}" {}',
                "header",
                value,
                pl.col("words").str.replace("{}", value.str.replace(",.*$", ""), literal=True),
            )
        )
        .otherwise(pl.format('{}: "{}" {}', "header", _shortened(value), "words"))
        .alias("message"),
    )


def _shortened(value: pl.Expr, most: int = 60) -> pl.Expr:
    """A value as a message quotes it: a long one cut, so the message stays one line to read
    (the `value` column keeps it whole)."""
    cut = pl.concat_str(value.str.slice(0, most - 1), pl.lit("…"))
    return pl.when(value.str.len_chars() > most).then(cut).otherwise(value)


class _Rule(NamedTuple):
    """A column rule as the issues table says it: its code, the plain words that follow the
    value in a message, the bound or term its rule words name (`below 1`), and for a hint the
    words people type for it (as enum keys)."""

    code: IssueCode
    words: str
    detail: object = ""
    typed: tuple[str, ...] = ()

    @property
    def check(self) -> str:
        """Its Pandera check's name: the code, and a hint's term (a column may give one code
        more than one check); a required cell's is Pandera's own."""
        if self.code == "value.missing":
            return "not_nullable"
        return f"{self.code} {self.detail}" if self.typed and self.detail else self.code


class _Test(NamedTuple):
    """A whole-column rule: its check's name and the test a cell passes. An empty cell passes
    every test (it leaves the field as it is; a required column says so through
    `not_nullable`)."""

    name: str
    test: Callable[[pl.Expr], pl.Expr]

    def holds(self, c: pl.Expr) -> pl.Expr:
        return self.test(c) | c.is_null()

    def check(self) -> pa.Check:
        """The rule as a Pandera check on one column."""
        return pa.Check(
            lambda data: data.lazyframe.select(self.holds(pl.col(data.key))), name=self.name
        )


def _rules(f: Field) -> dict[str, _Rule]:
    """Check name -> its rule, for each check `_tests` gives `f`."""
    rules = [_Rule("value.missing", "every row needs one")]
    if f.role == "read_only":
        rules.append(
            _Rule("column.read_only", "is read-only: Partner Center computes it; clear the cell")
        )
    elif f.type in PATTERNS:
        _, code, text = PATTERNS[f.type]
        if f.type == "datetime" and f.role == "expected":
            text += CROSS_CHECK_WORDS
        rules.append(_Rule(code, text))
    elif f.type == "boolean":
        rules.append(_Rule("boolean.not_yes_or_no", "is not yes or no: write yes or no"))
    elif f.type == "enum":
        rules.append(_Rule("enum.unknown_value", "is not one of " + ", ".join(f.enum)))
    if f.type in ("integer", "number") and f.role != "read_only":
        rules.append(_Rule("number.too_large", TOO_LARGE_WORDS))
    if f.type == "integer" and f.role != "read_only":
        rules.append(_Rule("integer.grouped_digits", GROUPED_WORDS))
        rules.append(_Rule("integer.decimal_comma", DECIMAL_COMMA_WORDS))
        if f.role != "delta":  # only a subscription's quantity has a seat change column
            seats = SEAT_CHANGE_WORDS if f.name == "quantity" else ""
            rules.append(_Rule("integer.signed_total", SIGNED_WORDS + seats))
    if f.minimum is not None:
        least = f": write a total of at least {f.minimum}" if f.minimum else ""
        if f.name == "quantity":  # 0 seats is how people write "cancel it"
            least += "; to cancel, write deleted in Status"
        rules.append(_Rule("number.below_minimum", f"is below {f.minimum}{least}", f.minimum))
    if f.maximum is not None:
        most = f"is above {f.maximum}: write a total of at most {f.maximum}"
        rules.append(_Rule("number.above_maximum", most, f.maximum))
    return {r.check: r for r in [*rules, *_hints(f)]}


def _hints(f: Field) -> list[_Rule]:
    """Words people type for a value Partner Center spells otherwise, each with what to write
    instead. Such a word gets this one message."""
    if f.type == "duration":
        return [
            _Rule("duration.in_words", f"is not a term length: write {term}", term, words)
            for term, words in _TERMS.items()
        ]
    if f.type == "enum" and "deleted" in f.enum and "cancelled" not in f.enum:
        said = 'is refused: Partner Center calls a cancelled subscription "deleted": write deleted'
        return [
            _Rule("status.cancelled_is_deleted", said, typed=("cancelled", "canceled", "cancel"))
        ]
    if f.type == "enum" and "cancelled" in f.enum:
        said = 'is spelled "cancelled" in Partner Center: write cancelled'
        return [_Rule("status.spelled_canceled", said, typed=("canceled", "cancel"))]
    return []


def _tests(f: Field) -> list[_Test]:
    """The column rules for one field, each named as `_rules` names it. They are disjoint: a
    cell breaks at most the one rule that says best what to write instead."""
    if f.role == "read_only":
        return [_Test("column.read_only", lambda c: c.is_null())]
    hints = _hints(f)
    hinted = [key for hint in hints for key in hint.typed]
    checks: list[_Test] = []
    if f.type == "datetime":  # the pattern admits 2026-02-30; the calendar does not
        pattern, code, _ = PATTERNS[f.type]
        checks.append(_Test(code, lambda c: c.str.contains(pattern) & date_part(c).is_not_null()))
    elif f.type == "integer":
        pattern, code, _ = PATTERNS[f.type]
        checks.append(
            _Test(
                code,
                lambda c: (
                    c.str.contains(pattern)
                    | c.str.contains(GROUPED)
                    | c.str.contains(DECIMAL_COMMA)
                ),
            )
        )
        checks.append(_Test("integer.grouped_digits", lambda c: ~c.str.contains(GROUPED)))
        checks.append(
            _Test(
                "integer.decimal_comma",
                lambda c: ~c.str.contains(DECIMAL_COMMA) | c.str.contains(GROUPED),
            )
        )

        # digits beyond what a 64-bit whole number holds would be read as no value at all;
        # 18 characters always fit, so only longer cells are read as numbers
        def fits(c: pl.Expr) -> pl.Expr:
            long = c.str.len_bytes() > 18
            return (
                ~long | ~c.str.contains(pattern) | as_integer(pl.when(long).then(c)).is_not_null()
            )

        checks.append(_Test("number.too_large", fits))
        if f.role != "delta":
            checks.append(_Test("integer.signed_total", lambda c: ~c.str.starts_with("+")))
    elif f.type in ("guid", "order_id"):  # an invisible character gets its own message
        pattern, code, _ = PATTERNS[f.type]
        checks.append(_Test(code, lambda c: c.str.contains(pattern) | has_invisible(c)))
    elif f.type in PATTERNS:
        pattern, code, _ = PATTERNS[f.type]
        checks.append(_Test(code, lambda c: c.str.contains(pattern) | as_enum_key(c).is_in(hinted)))
        if f.type == "number":  # 400 digits are infinity as a float: not a number to send
            checks.append(_Test("number.too_large", _finite))
    elif f.type == "boolean":
        checks.append(
            _Test("boolean.not_yes_or_no", lambda c: c.str.to_lowercase().is_in(BOOL_WORDS))
        )
    elif f.type == "enum":
        keys = [enum_key(v) for v in f.enum] + hinted
        checks.append(_Test("enum.unknown_value", lambda c: as_enum_key(c).is_in(keys)))
    for hint in hints:
        checks.append(_Test(hint.check, lambda c, t=hint.typed: ~as_enum_key(c).is_in(t)))
    checks += _bounds(f)
    return checks


def _bounds(f: Field) -> list[_Test]:
    """The catalog's bounds of a number: a whole number below its minimum or above its maximum
    (the text that is not a whole number has its own rule)."""
    checks = []
    if f.minimum is not None:
        least = f.minimum
        checks.append(
            _Test("number.below_minimum", lambda c: (as_integer(c) >= least).fill_null(True))
        )
    if f.maximum is not None:
        most = f.maximum
        checks.append(
            _Test("number.above_maximum", lambda c: (as_integer(c) <= most).fill_null(True))
        )
    return checks


def _finite(c: pl.Expr) -> pl.Expr:
    return c.cast(pl.Float64, strict=False).is_finite().fill_null(True)


# --- Outcomes ------------------------------------------------------------------------------------


def _outcomes(sheet: Sheet, text: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """ROW, outcome, errors (the row's messages; null when it has none) and codes (their issue
    codes, in the same order)."""
    changes = list(asks_change(sheet).values())
    errors = issues.group_by("row", maintain_order=True).agg(
        pl.col("message").str.join("; "), pl.col("code").str.join("; ")
    )
    # A lookup, not a join: most rows have no error, and a join would copy every row twice.
    said = pl.col(ROW).replace_strict(
        errors.get_column("row"),
        errors.select(pl.struct("message", "code")).to_series(),
        default=None,
    )
    return (
        text.lazy()
        .with_columns(said.struct.field("message").alias("errors"))
        .select(
            ROW,
            pl.when(pl.col("errors").is_not_null())
            .then(pl.lit("invalid"))
            .when(pl.any_horizontal(changes or [pl.lit(False)]))
            .then(pl.lit("valid"))
            .otherwise(pl.lit("no_change"))
            .alias("outcome"),
            "errors",
            said.struct.field("code").alias("codes"),
        )
        .collect()
    )
