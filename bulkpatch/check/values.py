"""What a cell's value is: the patterns a cell must match, the cleaned text as typed values (what
plan sends), whether a cell asks for a change, and whether two values are the same as Partner
Center stores them. Whole-column Polars expressions, except `same_value` (one value plan read).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from bulkpatch.catalog.fields import Field, enum_key
from bulkpatch.load.codes import IssueCode
from bulkpatch.load.sheet import ROW, Sheet, cleaned
from bulkpatch.safe import NUMBER

# Yes and no as a cell may say them. Excel writes a boolean cell into a CSV as TRUE or FALSE in
# the language it runs in, so a sheet saved in Berlin says WAHR: these are Excel's own words for
# TRUE and FALSE (its TRUE() and FALSE() functions as each language names them), language ->
# (true, false). README ("What a sheet may hold") lists them all.
EXCEL_BOOLEANS: dict[str, tuple[str, str]] = {
    "English": ("TRUE", "FALSE"),
    "German": ("WAHR", "FALSCH"),
    "French": ("VRAI", "FAUX"),
    "Spanish": ("VERDADERO", "FALSO"),
    "Italian": ("VERO", "FALSO"),
    "Portuguese": ("VERDADEIRO", "FALSO"),
    "Dutch": ("WAAR", "ONWAAR"),
    "Swedish": ("SANT", "FALSKT"),
    "Danish": ("SAND", "FALSK"),
    "Norwegian": ("SANN", "USANN"),
    "Finnish": ("TOSI", "EPÄTOSI"),
    "Polish": ("PRAWDA", "FAŁSZ"),
    "Czech": ("PRAVDA", "NEPRAVDA"),
    "Hungarian": ("IGAZ", "HAMIS"),
    "Turkish": ("DOĞRU", "YANLIŞ"),
    "Russian": ("ИСТИНА", "ЛОЖЬ"),
}
TRUE_WORDS = ("yes", "y", "1", *dict.fromkeys(t.lower() for t, _ in EXCEL_BOOLEANS.values()))
FALSE_WORDS = ("no", "n", "0", *dict.fromkeys(f.lower() for _, f in EXCEL_BOOLEANS.values()))
BOOL_WORDS = (*TRUE_WORDS, *FALSE_WORDS)
INTEGER = r"^[+-]?\d+(\.0*)?$"
# 3,0: a whole number with a decimal comma (never 3,000, which is GROUPED): write 3.
DECIMAL_COMMA = r"^\d+,0+$"
# 1,000 / 1.000 / 1 000: a thousands separator, or a decimal point? Never guess.
GROUPED = r"^[+-]?\d{1,3}([.,'\u00a0\u202f ]\d{3})+$"
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
GUID = f"^({_GUID}|\\{{{_GUID}\\}})$"  # `{...}` as some tools copy it; sent without braces
# Characters nobody sees that break an id copied from a web page or an e-mail.
INVISIBLE = (
    "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069"
    "\ufeff"
)
ANY_INVISIBLE = f"[{INVISIBLE}]"  # a regex: any one of them
DATE = (
    r"^\d{4}-\d{2}-\d{2}([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)
DURATION = r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$"
# type -> (regex the cleaned text must match, its issue code, the words after the value in a
# message)
PATTERNS: dict[str, tuple[str, IssueCode, str]] = {
    "integer": (INTEGER, "integer.not_whole", "is not a whole number"),
    "number": (
        NUMBER,
        "number.not_a_number",
        "is not a number (use digits and a dot, no thousands separators)",
    ),
    "guid": (GUID, "id.not_a_guid", "is not an ID in the form 8-4-4-4-12 (a GUID)"),
    "order_id": (
        r"^[A-Za-z0-9_-]+$",
        "id.not_an_order_id",
        "is not an order ID (only letters, digits, - and _)",
    ),
    "datetime": (DATE, "date.not_a_date", "is not a date (use 2026-12-31 or 2026-12-31T00:00:00Z)"),
    "duration": (DURATION, "duration.not_a_term", "is not a term length such as P1M, P1Y or P3Y"),
    "currency": (
        r"^[A-Za-z]{3}$",
        "currency.not_a_code",
        "is not a three-letter currency code such as USD",
    ),
    "object": (
        r"(?s)^\{.*\}$",
        "object.not_json",
        'is not a JSON object such as {"key": "value"}',
    ),
}


def has_invisible(c: pl.Expr) -> pl.Expr:
    """Whether a cell holds one of the INVISIBLE characters. They are all outside ASCII, and
    most cells are ASCII: counting bytes and characters finds those (cheap), and only they meet
    the regex (nulls skip it), so an id column costs a tenth of a scan of every cell."""
    beyond_ascii = c.str.len_bytes() != c.str.len_chars()
    return pl.when(beyond_ascii).then(c).str.contains(ANY_INVISIBLE).fill_null(False)


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
        return as_integer(c)
    if f.type == "number":
        number = c.cast(pl.Float64, strict=False)
        return pl.when(number.is_finite()).then(number)
    if f.type == "boolean":
        low = c.str.to_lowercase()
        return pl.when(low.is_in(BOOL_WORDS)).then(low.is_in(TRUE_WORDS))
    if f.type == "enum":
        return as_enum_key(c).replace_strict({enum_key(v): v for v in f.enum}, default=None)
    if f.type == "datetime":
        moment = c.str.replace(" ", "T").str.replace("Z$", "").str.replace(r"[+-]\d{2}:?\d{2}$", "")
        moment = (
            moment.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
            .fill_null(moment.str.to_datetime("%Y-%m-%dT%H:%M", strict=False))
            .fill_null(date_part(c).cast(pl.Datetime("us")))
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


def as_enum_key(c: pl.Expr) -> pl.Expr:
    return c.str.replace_all(r"[\s_.\-\u00a0]+", "").str.to_lowercase()


def as_integer(c: pl.Expr) -> pl.Expr:
    """A whole number's text as an integer (`+5`, `5.0` and `5.` are 5), else null. Only a cell
    with a dot meets the regex (nulls skip it): most cells are plain digits."""
    dotted = pl.when(c.str.contains(".", literal=True)).then(c).str.replace(r"\.0*$", "")
    return pl.coalesce(dotted, c).str.strip_prefix("+").cast(pl.Int64, strict=False)


def date_part(c: pl.Expr) -> pl.Expr:
    return c.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


def asks_change(sheet: Sheet) -> dict[str, pl.Expr]:
    """Column name -> whether its cell asks for a change, over the cleaned text, for every
    settable and delta column. A settable cell equal to the row's own current value for the
    field (`Current seats 30`, `Quantity 30`) asks nothing; nor does a seat change of 0."""
    same = as_read(sheet)
    asking = {}
    for c in sheet.columns:
        f = c.field
        if f is None or not f.changes:
            continue
        cell = pl.col(c.name)
        if f.role == "delta":
            asking[c.name] = cell.is_not_null() & (as_integer(cell) != 0).fill_null(True)
        else:
            asking[c.name] = cell.is_not_null() & ~same.get(c.name, pl.lit(False))
    return asking


def as_read(sheet: Sheet) -> dict[str, pl.Expr]:
    """Column name -> whether its cell holds the row's own current value for the field (what
    an export read, or what the sheet says is there now), over the cleaned text, for each
    settable column that has a `Current ...` column. Such a cell asks for nothing, so check
    does not judge it either: a cancelled line item exported with 0 seats is not "below 1"."""
    same = {}
    for c in sheet.columns:
        f = c.field
        if f is None or not f.changes or f.role == "delta":
            continue
        current = sheet.column_for(f"current:{f.name}")
        if current:
            same[c.name] = _same(f, pl.col(c.name), pl.col(current.name)).fill_null(False)
    return same


def _same(f: Field, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Two cleaned text cells of field `f` hold the same value as Partner Center stores it
    (see `same_value`): whole-column."""
    if f.type == "datetime":
        by_day = (a.str.len_chars() <= 10) | (b.str.len_chars() <= 10)
        return (
            pl.when(by_day)
            .then(date_part(a) == date_part(b))
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
    asking = asks_change(sheet)
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
    lists as sets without case, numbers by value. Empty (None, "", []) equals empty."""
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
        return {str(i).casefold() for i in sheet} == {str(i).casefold() for i in live}
    if f.type == "boolean":
        return isinstance(sheet, bool) and isinstance(live, bool) and sheet is live
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
