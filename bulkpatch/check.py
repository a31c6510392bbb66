"""Stage 2, check: every cell against the catalog's rules, then the rules that span rows.

Pandera (polars backend) runs the column rules lazily, so every failing cell of every column is
collected, not only the first. It validates the cleaned text, never coerced columns: a coerced
dirty column gives wrong answers (see NOTES.md). Cross-row rules are Polars window expressions.
Bad rows are data: the result is an issues table (row, column, value, rule, message) and an
outcome per row, `valid`, `invalid` or `no_change`. There is no per-row Python on this path.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandera.polars as pa
import polars as pl

from bulkpatch.catalog import RESOURCE_ID, Field, enum_key
from bulkpatch.sheet import ISSUE_SCHEMA, ROW, Column, Sheet, cleaned

OUTCOMES = ("valid", "invalid", "no_change")
TRUE_WORDS = ("true", "yes", "1", "y")
BOOL_WORDS = (*TRUE_WORDS, "false", "no", "0", "n")
INTEGER = r"^[+-]?\d+(\.0*)?$"
# 1,000 / 1.000 / 1 000: a thousands separator, or a decimal point? Never guess.
GROUPED = r"^[+-]?\d{1,3}([.,'\u00a0\u202f ]\d{3})+$"
NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
GUID = f"^({_GUID}|\\{{{_GUID}\\}})$"  # `{...}` as some tools copy it; sent without braces
# Characters nobody sees that break an id copied from a web page or an e-mail.
INVISIBLE = (
    "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069"
    "\ufeff"
)
_INVISIBLE = f"[{INVISIBLE}]"
DATE = (
    r"^\d{4}-\d{2}-\d{2}([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)
DURATION = r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$"
# type -> (regex the cleaned text must match, rule id, the words after the value in a message)
PATTERNS: dict[str, tuple[str, str, str]] = {
    "integer": (INTEGER, "not a whole number", "is not a whole number"),
    "number": (
        NUMBER,
        "not a number",
        "is not a number (use digits and a dot, no thousands separators)",
    ),
    "guid": (GUID, "not a GUID", "is not an ID in the form 8-4-4-4-12 (a GUID)"),
    "order_id": (
        r"^[A-Za-z0-9_-]+$",
        "not an order ID",
        "is not an order ID (only letters, digits, - and _)",
    ),
    "datetime": (DATE, "not a date", "is not a date (use 2026-12-31 or 2026-12-31T00:00:00Z)"),
    "duration": (DURATION, "not a term length", "is not a term length such as P1M, P1Y or P3Y"),
    "currency": (
        r"^[A-Za-z]{3}$",
        "not a currency code",
        "is not a three-letter currency code such as USD",
    ),
    "object": (
        r"(?s)^\{.*\}$",
        "not a JSON object",
        'is not a JSON object such as {"key": "value"}',
    ),
}
MISSING, READ_ONLY, BOOLEAN, ENUM = (
    "missing value",
    "read-only column",
    "not yes or no",
    "not an allowed value",
)
GROUPED_RULE, SIGNED_RULE = "number with a separator", "sign in a total"
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
        return {o: int(found.get(o, 0)) for o in OUTCOMES}

    def rule_counts(self) -> dict[str, int]:
        """Problems per rule, most frequent first."""
        counted = self.issues.group_by("rule").len().sort(["len", "rule"], descending=[True, False])
        return dict(counted.iter_rows())


def check(sheet: Sheet) -> Checked:
    """Check every cell and every cross-row rule of `sheet`."""
    fields = [c for c in sheet.columns if c.field]
    text = cleaned(sheet, [c.name for c in fields])
    issues = pl.concat(
        [sheet.issues, _column_issues(text, fields), *_cross_row_issues(sheet, text)],
        how="vertical",
    )
    order = {c.header: i for i, c in enumerate(sheet.columns)}
    issues = issues.sort(
        [pl.col("row"), pl.col("column").replace_strict(order, default=-1, return_dtype=pl.Int64)]
    )
    return Checked(sheet, issues, _outcomes(sheet, text, issues))


def typed(sheet: Sheet) -> pl.DataFrame:
    """ROW plus every field column as its canonical value: ints, floats, bools, enum spellings
    of the reference, ISO date-times, lists; a cell that breaks its rule becomes null."""
    fields = [c for c in sheet.columns if c.field]
    text = cleaned(sheet, [c.name for c in fields])
    return text.select(
        ROW, *[_typed(c.field, pl.col(c.name)).alias(c.name) for c in fields if c.field]
    )


def _typed(f: Field, c: pl.Expr) -> pl.Expr:
    if f.type in PATTERNS:
        c = pl.when(c.str.contains(PATTERNS[f.type][0])).then(c)
    if f.type == "integer":
        return _integer(c)
    if f.type == "number":
        return c.cast(pl.Float64, strict=False)
    if f.type == "boolean":
        low = c.str.to_lowercase()
        return pl.when(low.is_in(BOOL_WORDS)).then(low.is_in(TRUE_WORDS))
    if f.type == "enum":
        return _enum_key(c).replace_strict({enum_key(v): v for v in f.enum}, default=None)
    if f.type == "datetime":
        moment = c.str.replace(" ", "T").str.replace("Z$", "").str.replace(r"[+-]\d{2}:?\d{2}$", "")
        moment = (
            moment.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
            .fill_null(moment.str.to_datetime("%Y-%m-%dT%H:%M", strict=False))
            .fill_null(_date_part(c).cast(pl.Datetime("us")))
        )
        offset = c.str.contains(r"[+-]\d{2}:?\d{2}$")  # an explicit offset is sent as given
        return (
            pl.when(offset)
            .then(c.str.replace(" ", "T"))
            .otherwise(moment.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        )
    if f.type == "string_list":
        return (
            c.str.split(";")
            .list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element() != ""))
        )
    if f.type == "guid":
        return c.str.strip_chars("{}").str.to_lowercase()
    return c


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
        .otherwise(pl.format('{}: "{}" {}', "header", value, "words"))
        .alias("message"),
    )


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
            _expr_check(rule, lambda c: c.str.contains(pattern) & _date_part(c).is_not_null())
        )
    elif f.type == "integer":
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(
            _expr_check(rule, lambda c: c.str.contains(pattern) | c.str.contains(GROUPED))
        )
        checks.append(_expr_check(GROUPED_RULE, lambda c: ~c.str.contains(GROUPED)))
        if f.role != "delta":
            checks.append(_expr_check(SIGNED_RULE, lambda c: ~c.str.starts_with("+")))
    elif f.type in ("guid", "order_id"):  # an invisible character gets its own message
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(
            _expr_check(rule, lambda c: c.str.contains(pattern) | c.str.contains(_INVISIBLE))
        )
    elif f.type in PATTERNS:
        pattern, rule, _ = PATTERNS[f.type]
        checks.append(
            _expr_check(rule, lambda c: c.str.contains(pattern) | _enum_key(c).is_in(hinted))
        )
    elif f.type == "boolean":
        checks.append(_expr_check(BOOLEAN, lambda c: c.str.to_lowercase().is_in(BOOL_WORDS)))
    elif f.type == "enum":
        keys = [enum_key(v) for v in f.enum] + hinted
        checks.append(_expr_check(ENUM, lambda c: _enum_key(c).is_in(keys)))
    for rule, (_, words) in hints.items():
        checks.append(_expr_check(rule, lambda c, words=words: ~_enum_key(c).is_in(words)))
    if f.minimum is not None:
        minimum = f.minimum
        checks.append(
            _expr_check(f"below {minimum}", lambda c: (_integer(c) >= minimum).fill_null(True))
        )
    return checks


def _expr_check(name: str, test: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A whole-column check; an empty cell passes every check (it leaves the field as it is;
    a required column says so through `not_nullable`)."""

    def run(data: pa.PolarsData) -> pl.LazyFrame:
        c = pl.col(data.key)
        return data.lazyframe.select(test(c) | c.is_null())

    return pa.Check(run, name=name)


def _enum_key(c: pl.Expr) -> pl.Expr:
    return c.str.replace_all(r"[\s_.\-\u00a0]+", "").str.to_lowercase()


def _integer(c: pl.Expr) -> pl.Expr:
    return c.str.replace(r"\.0*$", "").str.strip_prefix("+").cast(pl.Int64, strict=False)


def _date_part(c: pl.Expr) -> pl.Expr:
    return c.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


# --- Cross-row rules ---------------------------------------------------------------------------


def _cross_row_issues(sheet: Sheet, text: pl.DataFrame) -> list[pl.DataFrame]:
    parts = [
        _duplicate_targets(sheet, text),
        _renewal_without_auto_renew(sheet, text),
        _total_and_change(sheet, text),
        *_invisible_in_ids(sheet, text),
    ]
    if sheet.kind == "orders":
        parts.append(_order_disagreements(sheet, text))
    return [p for p in parts if p is not None]


def _issue(
    column: Column, rule: str, message: pl.Expr, header: pl.Expr | None = None
) -> list[pl.Expr]:
    return [
        pl.col(ROW).alias("row"),
        (pl.lit(column.header) if header is None else header).alias("column"),
        pl.col(column.name).fill_null("").alias("value"),
        pl.lit(rule).alias("rule"),
        message.alias("message"),
    ]


def _rows_list(over: list[pl.Expr]) -> pl.Expr:
    return pl.col(ROW).cast(pl.String).str.join(", ").over(over)


def _duplicate_targets(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame | None:
    """The same target twice: which row did the user mean? Both rows are in error."""
    target = sheet.column_for(RESOURCE_ID[sheet.kind])
    customer = sheet.column_for("customer_id")
    assert target and customer  # load guarantees both
    # Only rows that share a resource id can share a target, and on a subscriptions sheet there
    # are few or none. Rows without both ids are not targets (their own rule reports them).
    sharing = _sharing_an_id(text, target.name)
    if sharing is None:
        return None
    key = [pl.col(c.name).str.to_lowercase().str.strip_chars("{}") for c in (customer, target)]
    what = "subscription"
    if sheet.kind == "orders":
        number = sheet.column_for("lineItems.lineItemNumber")
        line_sub = sheet.column_for("lineItems.subscriptionId")
        line = [_integer(pl.col(number.name)).cast(pl.String)] if number else []
        line += [pl.col(line_sub.name).str.to_lowercase().str.strip_chars("{}")] if line_sub else []
        key.append(pl.coalesce(line).fill_null("") if line else pl.lit(""))
        what = "order line item" if line else "order"
    # A 64-bit hash of the key finds candidates fast; the exact comparison then runs on the few
    # candidate rows only.
    hashed = functools.reduce(operator.xor, [k.hash(seed) for seed, k in enumerate(key)])
    candidates = text.filter(sharing).filter(
        hashed.is_duplicated() & key[0].is_not_null() & key[1].is_not_null()
    )
    found = candidates.filter(pl.struct(key).is_duplicated())
    message = pl.format(
        '{}: "{}" is on rows {}; keep one row per {}',
        pl.lit(target.header),
        pl.col(target.name),
        _rows_list(key),
        pl.lit(what),
    )
    return found.select(_issue(target, "same target twice", message))


def _sharing_an_id(text: pl.DataFrame, name: str) -> pl.Series | None:
    """Which rows hold an id (ignoring case) that another row holds too; None when no row does.

    Rows are compared by 64-bit hashes, sorted (a hash table of a million rows costs far more).
    The column is lower-cased (a copy) only when it holds a character that lower-casing could
    change; ids are usually lower case already.
    """
    c = pl.col(name)
    cased = text.select(c.str.contains("[^a-z0-9_-]").any()).item()
    hashes = text.select(
        (c.str.to_lowercase().str.strip_chars("{}") if cased else c).hash()
    ).to_series()
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    return hashes.is_in(repeated.implode()) if repeated.len() else None


def _order_disagreements(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame:
    """Rows of one order build one body: they must agree on every order-level value."""
    customer, order = sheet.column_for("customer_id"), sheet.column_for("order_id")
    assert customer and order
    group = [pl.col(customer.name).str.to_lowercase(), pl.col(order.name)]
    parts = []
    for c in sheet.columns:
        if not (c.field and c.field.level == "order" and c.field.role in ("settable", "meta")):
            continue
        value = _enum_key(pl.col(c.name)) if c.field.type == "enum" else pl.col(c.name)
        stated = pl.col(c.name).is_not_null()
        rows = pl.when(stated).then(pl.col(ROW).cast(pl.String)).str.join(", ").over(group)
        found = text.filter(stated & (value.drop_nulls().n_unique().over(group) > 1))
        message = pl.format(
            '{}: "{}" differs from other rows of order {} (rows {}); an order has one {}',
            pl.lit(c.header),
            pl.col(c.name),
            pl.col(order.name),
            rows,
            pl.lit(c.header),
        )
        parts.append(found.select(_issue(c, "order rows disagree", message)))
    return pl.concat(parts, how="vertical") if parts else None


def _renewal_without_auto_renew(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame | None:
    """Next-term instructions only exist while auto-renew is on (Partner Center's rule)."""
    auto = sheet.column_for("autoRenewEnabled")
    plans = [
        c
        for c in sheet.columns
        if c.field and c.field.name.startswith("scheduledNextTermInstructions.")
    ]
    if sheet.kind != "subscriptions" or auto is None or not plans:
        return None
    off = pl.col(auto.name).str.to_lowercase().is_in(("false", "no", "0", "n"))
    first = pl.coalesce(
        [pl.when(pl.col(c.name).is_not_null()).then(pl.lit(c.header)) for c in plans]
    )
    found = text.filter(off & first.is_not_null())
    message = pl.format(
        '{}: renewal instructions need auto-renew on, but {} is "{}" on this row',
        first,
        pl.lit(auto.header),
        pl.col(auto.name),
    )
    return found.select(_issue(auto, "renewal needs auto-renew", message, header=first))


def _total_and_change(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame | None:
    """A new total and a seat change on one row: which did the user mean?"""
    change = next((c for c in sheet.columns if c.field and c.field.role == "delta"), None)
    total = sheet.column_for(change.field.of) if change and change.field else None
    if change is None or total is None:
        return None
    asks = (_integer(pl.col(change.name)) != 0).fill_null(True)  # a change of 0 is no change
    found = text.filter(pl.col(change.name).is_not_null() & asks & pl.col(total.name).is_not_null())
    message = pl.format(
        '{}: "{}" and {} "{}" are both filled: write the new total in {} or the seats to add or '
        "remove in {}, not both",
        pl.lit(change.header),
        pl.col(change.name),
        pl.lit(total.header),
        pl.col(total.name),
        pl.lit(total.header),
        pl.lit(change.header),
    )
    return found.select(_issue(change, "total and change", message))


def _invisible_in_ids(sheet: Sheet, text: pl.DataFrame) -> list[pl.DataFrame]:
    """An id holding a character nobody sees: shown as U+200B so the user can find it."""
    found = []
    for c in sheet.columns:
        if not (c.field and c.field.type in ("guid", "order_id")):
            continue
        rows = text.filter(pl.col(c.name).str.contains(_INVISIBLE))
        if rows.is_empty():
            continue
        shown = pl.col(c.name)
        for char in INVISIBLE:
            shown = shown.str.replace_all(char, f"<U+{ord(char):04X}>", literal=True)
        message = pl.format(
            '{}: "{}" holds an invisible character ({}): delete it, or type the ID again',
            pl.lit(c.header),
            shown,
            shown.str.extract_all(r"U\+[0-9A-F]{4}")
            .list.unique(maintain_order=True)
            .list.join(", "),
        )
        found.append(rows.select(_issue(c, "invisible character", message)))
    return found


# --- Outcomes ------------------------------------------------------------------------------------


def _outcomes(sheet: Sheet, text: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """ROW, outcome and errors (the row's messages; null when it has none)."""
    changes = list(_asking(sheet).values())
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


def _asking(sheet: Sheet) -> dict[str, pl.Expr]:
    """Column name -> whether its cell asks for a change, over the cleaned text, for every
    settable and delta column. A settable cell equal to the row's own current value for the
    field (`Current seats 30`, `Quantity 30`) asks nothing; nor does a seat change of 0."""
    asking = {}
    for c in sheet.columns:
        f = c.field
        if f is None or not f.changes:
            continue
        cell = pl.col(c.name)
        if f.role == "delta":
            asking[c.name] = cell.is_not_null() & (_integer(cell) != 0).fill_null(True)
            continue
        current = sheet.column_for(f"current:{f.name}")
        same = _same(f, cell, pl.col(current.name)) if current else pl.lit(False)
        asking[c.name] = cell.is_not_null() & ~same.fill_null(False)
    return asking


def _same(f: Field, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Two cleaned text cells of field `f` hold the same value as Partner Center stores it
    (see `same_value`): whole-column."""
    if f.type == "datetime":
        by_day = (a.str.len_chars() <= 10) | (b.str.len_chars() <= 10)
        return (
            pl.when(by_day)
            .then(_date_part(a) == _date_part(b))
            .otherwise(_typed(f, a) == _typed(f, b))
        )
    if f.type == "string_list":
        a, b = _typed(f, a), _typed(f, b)
        return a.list.unique().list.sort() == b.list.unique().list.sort()
    return _typed(f, a) == _typed(f, b)


def requests(sheet: Sheet) -> pl.DataFrame:
    """Like `typed`, with the settable and delta cells that ask for nothing made null (equal to
    the row's current value, or a seat change of 0): what plan turns into changes."""
    fields = [c for c in sheet.columns if c.field]
    text = cleaned(sheet, [c.name for c in fields])
    asking = _asking(sheet)
    return text.select(
        ROW,
        *[
            (
                pl.when(asking[c.name]).then(_typed(c.field, pl.col(c.name)))
                if c.name in asking
                else _typed(c.field, pl.col(c.name))
            ).alias(c.name)
            for c in fields
            if c.field
        ],
    )


def same_value(f: Field, sheet: Any, live: Any) -> bool:
    """True when a typed sheet value and a value Partner Center returned are the same, compared
    the way Partner Center stores them: enums without case, ids without case or braces, dates
    by day when either side is a day (`2026-12-31`, or midnight UTC as `typed` writes a day),
    lists as sets, numbers by value. Empty (None, "", []) equals empty."""
    if sheet in (None, "", []) or live in (None, "", []):
        return sheet in (None, "", []) and live in (None, "", [])
    if f.type == "enum":
        return enum_key(str(sheet)) == enum_key(str(live))
    if f.type == "guid":
        return str(sheet).strip("{}").lower() == str(live).strip("{}").lower()
    if f.type == "datetime":
        a, b = _moment(str(sheet)), _moment(str(live))
        if a is None or b is None:
            return str(sheet) == str(live)
        if _is_day(str(sheet)) or _is_day(str(live)):
            return a.date() == b.date()
        return a == b
    if f.type == "string_list":
        return set(sheet) == set(live)
    if f.type in ("integer", "number"):
        return not isinstance(sheet, bool) and not isinstance(live, bool) and sheet == live
    return bool(sheet == live)


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_day(text: str) -> bool:
    return len(text) <= 10 or text.endswith(("T00:00:00Z", "T00:00:00", "T00:00:00+00:00"))
