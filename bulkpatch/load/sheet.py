"""The loaded sheet every stage reads: its columns, its cells as text, and how a cell is cleaned.

Load builds a `Sheet`; check, plan and report read it. Cells stay text until check types them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from bulkpatch.catalog.fields import Field, Kind
from bulkpatch.safe import FORMULA_START

ROW = "__row__"
# Excel and copy-paste leave non-breaking and other odd spaces around values.
BLANKS = " \t\r\n\u00a0\u2007\u202f\ufeff"
_BLANK_CHARS = " \\t\\r\\n\\u00a0\\u2007\\u202f\\ufeff"  # the BLANKS, spelled for a regex
_BLANK = f"[{_BLANK_CHARS}]"
# The issues table: a problem per row, named by its stable code and its rule words (`codes.py`),
# and said in a message for the user.
ISSUE_SCHEMA = {
    "row": pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "code": pl.String,
    "rule": pl.String,
    "message": pl.String,
}


@dataclass(frozen=True)
class Column:
    """One input column: its unique name in the frame, its header as given, its field if known,
    and what the mapping should tell the user about how it was read."""

    name: str
    header: str
    field: Field | None
    remark: str = ""


@dataclass(frozen=True)
class Typed:
    """How a workbook stored an input column's cells, so reports write them back the same way:
    `kind` is number, date, datetime, boolean or text; `num_format` is the column's Excel number
    format (a format code, or the id of a built-in one such as 14; 0 is General)."""

    kind: str
    num_format: str | int = 0


@dataclass(frozen=True)
class Dialect:
    """How a CSV input was written: the reports a run writes from it use the same separator and
    encoding family (`utf-8`, `utf-8-sig`, `cp1252` or `utf-16`)."""

    separator: str = ","
    encoding: str = "utf-8"


@dataclass(frozen=True)
class Mapped:
    """How one header was read: the line the mapping shows before anything is sent."""

    header: str
    field: str | None
    role: str  # key, set, expected, delta, carried, read-only or note
    describes: str | None  # current and delta columns: the settable field they are about
    remark: str

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass
class Sheet:
    """One loaded sheet: raw text cells in input order, plus problems found while reading."""

    path: Path
    sheet_name: str | None
    kind: Kind
    columns: list[Column]
    frame: pl.DataFrame
    padded: frozenset[str]  # the columns with a cell that `clean` would change
    formulas: frozenset[str]  # the columns with a cell a spreadsheet would run (see report)
    issues: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ISSUE_SCHEMA))
    notes: list[str] = field(default_factory=list)  # what load skipped, for the user to see
    typed: dict[str, Typed] = field(default_factory=dict)  # workbook input: column -> its type
    dialect: Dialect = field(default_factory=Dialect)  # CSV input: separator and encoding
    positions: list[int] = field(default_factory=list)  # each column's place in the file's grid
    # An export's rows: ROW -> the export's date (`export_record`); empty for any other sheet.
    exported: dict[int, str] = field(default_factory=dict)
    exact: bool = False  # cells are Partner Center's values, blanks and all (an undo sheet)

    @property
    def label(self) -> str:
        """How messages name this sheet: the file, and the sheet inside a workbook."""
        return f"{self.path.name} [{self.sheet_name}]" if self.sheet_name else self.path.name

    def column_for(self, name: str) -> Column | None:
        """The input column carrying catalog field `name`, if the sheet has one."""
        return next((c for c in self.columns if c.field and c.field.name == name), None)

    @property
    def has_delta(self) -> bool:
        """True when a column holds seat changes (`+2`) rather than totals."""
        return any(c.field and c.field.role == "delta" for c in self.columns)

    def mapping(self) -> list[Mapped]:
        """Header -> field -> role for every column, in sheet order: what each cell asks for."""
        return [_mapped(c) for c in self.columns]


def _mapped(c: Column) -> Mapped:
    f = c.field
    if f is None:
        return Mapped(
            c.header, None, "note", None, c.remark or "carried to the reports, never sent"
        )
    remark = {
        "expected": "never sent; plan compares it with what Partner Center holds",
        "delta": "seats to add (+2) or remove (-1); plan turns it into a total",
        "read_only": "computed by Partner Center; a sheet cannot set it",
        "meta": "sent back as read, changes nothing",
        "match": "finds the customer of a row without ids; never sent",
    }.get(f.role, "")
    if f.role == "expected" and f.of:
        remark = f"the {f.of} you believe Partner Center holds now; never sent"
    if f.name == "match:by":  # matched.csv's own column
        remark = "how plan found the row's ids; never sent"
    if c.remark:  # what load found about this column (rows that ended before it)
        remark = f"{remark}; {c.remark}" if remark else c.remark
    if f.name == "offer:any":  # `Product`, `Offer`: a name or an id, compared with both
        return Mapped(c.header, f.name, f.shown_role, "offerName or offerId", remark)
    return Mapped(c.header, f.name, f.shown_role, f.of or None, remark)


def clean(name: str) -> pl.Expr:
    """A cell as the rules see it: surrounding (non-breaking) spaces gone, blank as null."""
    text = pl.col(name).str.strip_chars(BLANKS)
    return pl.when(text == "").then(None).otherwise(text).alias(name)


def cleaned(sheet: Sheet, names: list[str]) -> pl.DataFrame:
    """ROW and the `names` columns cleaned; a column load found no padded or blank cell in is
    passed through as it is (most are: no need to rewrite every cell). An exact sheet's cells
    keep the blanks around them (the value Partner Center held began with a tab): only an
    empty cell is blank."""
    if sheet.exact:
        tidy = [pl.when(pl.col(n) != "").then(pl.col(n)).alias(n) for n in names]
        return sheet.frame.select(ROW, *tidy)
    return sheet.frame.select(ROW, *[clean(n) if n in sheet.padded else pl.col(n) for n in names])


def profile(frame: pl.DataFrame) -> tuple[frozenset[str], frozenset[str]]:
    """The padded columns (a cell that `clean` would change: empty, or blanks around it) and
    the formula columns. Few columns are either: one scan (regexes copy nothing) finds those
    that may be, and only they are looked at again. Two regexes run faster than one with `|`."""
    c = pl.col(frame.columns)
    ends = c.str.contains(f"{_BLANK}$") | (c == "")
    suspects = _hits(frame, c.str.contains(f"^[=+\\-@{_BLANK_CHARS}]") | ends)
    if not suspects:
        return frozenset(), frozenset()
    suspect = frame.select(n for n in frame.columns if n in suspects)
    c = pl.col(suspect.columns)
    padded = c.str.contains(f"^{_BLANK}") | c.str.contains(f"{_BLANK}$") | (c == "")
    return _hits(suspect, padded), _hits(suspect, c.str.contains(FORMULA_START))


def _hits(frame: pl.DataFrame, test: pl.Expr) -> frozenset[str]:
    """The columns of `frame` where `test` (one expression over all of them) holds somewhere."""
    found = frame.select(test.any()).row(0)
    return frozenset(n for n, hit in zip(frame.columns, found, strict=True) if hit)
