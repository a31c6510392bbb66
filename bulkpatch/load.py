"""Stage 1, load: a CSV or Excel sheet, as the finance team keeps it, into a frame of text.

Every cell stays text (ids keep their leading zeros, nothing becomes a float); the row number the
user sees in Excel is kept beside it. Headers are matched to catalog fields here, once; columns we
do not know are kept and carried through to the reports. Anything that makes the file unusable
raises `InputError` with one line naming the file and what to do.
"""

from __future__ import annotations

import codecs
import difflib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import polars as pl

from bulkpatch.catalog import (
    FIELDS,
    KINDS,
    RESOURCE_ID,
    Field,
    Kind,
    header_index,
    normalize_header,
)
from bulkpatch.errors import InputError

ROW = "__row__"
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
# Excel and copy-paste leave non-breaking and other odd spaces around values.
BLANKS = " \t\r\n\u00a0\u2007\u202f\ufeff"
_BLANK_CHARS = " \\t\\r\\n\\u00a0\\u2007\\u202f\\ufeff"  # the BLANKS, spelled for a regex
_BLANK = f"[{_BLANK_CHARS}]"
FORMULA_START = r"^[=+\-@\t\r]"  # how text a spreadsheet would run as a formula starts
ISSUE_SCHEMA = {
    "row": pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "rule": pl.String,
    "message": pl.String,
}


@dataclass(frozen=True)
class Column:
    """One input column: its unique name in the frame, its header as given, its field if known."""

    name: str
    header: str
    field: Field | None


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

    @property
    def label(self) -> str:
        """How messages name this sheet: the file, and the sheet inside a workbook."""
        return f"{self.path.name} [{self.sheet_name}]" if self.sheet_name else self.path.name

    def column_for(self, name: str) -> Column | None:
        """The input column carrying catalog field `name`, if the sheet has one."""
        return next((c for c in self.columns if c.field and c.field.name == name), None)


def clean(name: str) -> pl.Expr:
    """A cell as the rules see it: surrounding (non-breaking) spaces gone, blank as null."""
    text = pl.col(name).str.strip_chars(BLANKS)
    return pl.when(text == "").then(None).otherwise(text).alias(name)


def cleaned(sheet: Sheet, names: list[str]) -> pl.DataFrame:
    """ROW and the `names` columns cleaned; a column load found no padded or blank cell in is
    passed through as it is (most are: no need to rewrite every cell)."""
    return sheet.frame.select(ROW, *[clean(n) if n in sheet.padded else pl.col(n) for n in names])


def _profile(frame: pl.DataFrame) -> tuple[frozenset[str], frozenset[str]]:
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


def load(path: str | Path, sheet: str | None = None, kind: Kind | None = None) -> list[Sheet]:
    """Read `path` into one Sheet, or two for a workbook with Subscriptions and Orders sheets."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a sheet.")
    if path.suffix.lower() in EXCEL_SUFFIXES or _is_zip(path):
        return [_build(path, name, grid, kind) for name, grid in _excel_grids(path, sheet, kind)]
    if sheet is not None:
        raise InputError(f"{path}: --sheet only applies to Excel workbooks; this is a CSV file.")
    grid, ragged, first_row = _csv_grid(path)
    return [_build(path, None, grid, kind, ragged, first_row)]


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


# --- Excel -------------------------------------------------------------------------------------


def _excel_grids(
    path: Path, sheet: str | None, kind: Kind | None
) -> list[tuple[str, pl.DataFrame]]:
    try:
        book = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types per file defect
        reason = _first_line(exc)
        raise InputError(f"{path}: cannot be opened as an Excel workbook ({reason}).") from None
    names = book.sheet_names
    by_lower = {n.lower(): n for n in names}
    if sheet is not None:
        if sheet.lower() not in by_lower:
            raise InputError(f"{path}: has no sheet {sheet!r}; its sheets are {_listing(names)}.")
        chosen = [by_lower[sheet.lower()]]
    else:
        chosen = [by_lower[k] for k in KINDS if k in by_lower and kind in (None, k)] or names[:1]
    grids = []
    for name in chosen:
        try:
            # skip_rows=0 keeps empty rows above the header, so row numbers are Excel's
            grid = book.load_sheet_by_name(
                name, header_row=None, skip_rows=0, dtypes="string"
            ).to_polars()
        except Exception as exc:
            raise InputError(f"{path} [{name}]: cannot be read ({_first_line(exc)}).") from None
        grids.append((name, grid))
    return grids


# --- CSV ---------------------------------------------------------------------------------------


def _csv_grid(path: Path) -> tuple[pl.DataFrame, list[int], int]:
    """The cells of a CSV file as text, the rows that had more cells than the header, and the
    row the grid starts on (blank lines above the header are skipped: Polars would take the
    first line's width for the whole file).

    Plain UTF-8 goes to Polars by path (no copy through Python); Polars validates it as it
    reads. BOMs, UTF-16 and Windows cp1252 are turned into UTF-8 bytes first.
    """
    with path.open("rb") as handle:
        head = handle.read(65_536)
    plain = (
        not head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        and 0 not in head
    )
    source: Path | bytes = path if plain else _unicode(path, path.read_bytes())
    start = head if isinstance(source, Path) else source[:65_536]  # look further only if blank
    if not start.strip() and not _bytes(source).strip():
        raise InputError(f"{path}: is empty; it needs a header row and at least one row.")
    lines = start.split(b"\n")
    blank = next(i for i, line in enumerate([*lines, b"x"]) if line.strip())
    separator = _sniff_separator(b"\n".join(lines[blank:]))
    read = _read(path, source, separator, blank)
    if read is None:  # not UTF-8: Windows cp1252 (or latin-1), as Excel saves "CSV"
        data = _bytes(source)
        try:
            data = data.decode("cp1252").encode()
        except UnicodeDecodeError:
            data = data.decode("latin-1").encode()
        read = _read(path, data, separator, blank)
    assert read is not None  # transcoded text is UTF-8
    return *read, blank + 1


def _bytes(source: Path | bytes) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else source


def _read(
    path: Path, source: Path | bytes, separator: str, blank: int
) -> tuple[pl.DataFrame, list[int]] | None:
    """Polars reads (and validates as UTF-8) in one pass; None when the bytes are not UTF-8."""
    options = {
        "skip_lines": blank,
        "has_header": False,
        "infer_schema": False,
        "separator": separator,
        "raise_if_empty": False,
        "null_values": [""],  # a quoted empty cell ("") is as blank as an empty one
    }
    try:
        return pl.read_csv(source, **options), []
    except pl.exceptions.ComputeError as exc:
        if "invalid utf-8" in str(exc):
            return None
        if "more fields" not in str(exc):
            raise InputError(f"{path}: cannot be read as CSV ({_first_line(exc)}).") from exc
    data = _bytes(source)
    grid = pl.read_csv(data, truncate_ragged_lines=True, **options)
    return grid, _long_records(data, separator, grid.width)


def _unicode(path: Path, data: bytes) -> bytes:
    """Strip a UTF-8 BOM and turn UTF-16 (with or without BOM) into UTF-8; refuse binary."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16").encode()
    head = data[:4096]
    if head.count(0) > len(head) // 4:  # UTF-16 saved without a BOM: every other byte is NUL
        codec = "utf-16-le" if head[1::2].count(0) > head[::2].count(0) else "utf-16-be"
        return data.decode(codec, errors="replace").encode()
    if 0 in head:
        raise InputError(f"{path}: is not a text or Excel sheet (it holds binary data).")
    return data


def _sniff_separator(data: bytes) -> str:
    """Comma, semicolon or tab: whichever the header line (outside quotes) has most of."""
    end = data.find(b"\n")
    header = re.sub(rb'"[^"]*"', b"", data[: end if end >= 0 else len(data)])
    counts = {sep: header.count(sep.encode()) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def _long_records(data: bytes, separator: str, width: int) -> list[int]:
    """The rows (as a spreadsheet numbers them) with more cells than the header has; only read
    when Polars found some."""
    import csv

    reader = csv.reader(io.StringIO(data.decode()), delimiter=separator)
    return [i + 1 for i, record in enumerate(reader) if len(record) > width]


# --- Shared: headers, kinds, rows ---------------------------------------------------------------


def _build(
    path: Path,
    sheet_name: str | None,
    grid: pl.DataFrame,
    kind: Kind | None,
    ragged: list[int] | None = None,
    first_row: int = 1,
) -> Sheet:
    label = f"{path} [{sheet_name}]" if sheet_name else str(path)
    # The header is the first row with something in it (a title block may leave rows empty).
    written = (i for i, row in enumerate(grid.iter_rows()) if any(_text(c) for c in row))
    top = next(written, None)
    if top is None:
        raise InputError(f"{label}: is empty; it needs a header row and at least one row.")
    headers = [_text(h) for h in grid.row(top)]
    body = grid.slice(top + 1)
    keep = [
        i
        for i, h in enumerate(headers)
        if h or body.get_column(body.columns[i]).is_not_null().any()
    ]
    kind = kind or _kind_from_name(sheet_name) or _detect_kind([headers[i] for i in keep])
    columns = _match_columns(label, kind, [(i, headers[i]) for i in keep])
    frame = body.select(
        [body.get_column(body.columns[i]).alias(c.name) for i, c in zip(keep, columns, strict=True)]
    )
    padded, formulas = _profile(frame)
    # A cell of an unpadded column is written when it is not null; only padded ones need a look.
    filled = frame.select(
        pl.any_horizontal(
            clean(c.name).is_not_null() if c.name in padded else pl.col(c.name).is_not_null()
            for c in columns
        )
    ).to_series()
    # ROW: the row number the user sees. One chunk per column, once: Polars would otherwise
    # re-chunk on later selects, and it panics on some window expressions over a frame read in
    # many chunks (polars 2.1).
    frame = frame.with_row_index(ROW, offset=first_row + top + 1)
    frame = frame.with_columns(pl.col(ROW).cast(pl.Int64)).rechunk()
    if not filled.all():  # only copy the frame when there are empty rows to drop
        frame = frame.filter(filled)
    sheet = Sheet(path, sheet_name, kind, columns, frame, padded, formulas)
    if ragged:
        sheet.issues = pl.DataFrame(
            {
                "row": ragged,
                "column": ["(whole row)"] * len(ragged),
                "value": [""] * len(ragged),
                "rule": ["ragged row"] * len(ragged),
                "message": [
                    "this row has more cells than the header has columns; the extra cells "
                    "were not read"
                ]
                * len(ragged),
            },
            schema=ISSUE_SCHEMA,
        )
    return sheet


def _text(cell: str | None) -> str:
    return (cell or "").strip(BLANKS)


def _kind_from_name(sheet_name: str | None) -> Kind | None:
    name = (sheet_name or "").lower()
    return next((k for k in KINDS if name == k), None)


def _detect_kind(headers: list[str]) -> Kind:
    """Orders when the headers name an order id and no subscription, or name line items."""
    norm = {normalize_header(h) for h in headers}
    subs, orders = header_index("subscriptions"), header_index("orders")
    has_order = any(orders.get(n) and orders[n].name == "order_id" for n in norm)
    has_sub = any(subs.get(n) and subs[n].name == "subscription_id" for n in norm)
    line_only = any(orders.get(n) and orders[n].level == "line" and n not in subs for n in norm)
    return "orders" if has_order and (not has_sub or line_only) else "subscriptions"


def _match_columns(label: str, kind: Kind, headers: list[tuple[int, str]]) -> list[Column]:
    index = header_index(kind)
    seen: dict[str, tuple[int, str]] = {}
    names: set[str] = {ROW}
    columns = []
    for position, header in headers:
        f = index.get(normalize_header(header))
        if f is not None and f.name in seen:
            first = seen[f.name]
            raise InputError(
                f"{label}: columns {_letter(first[0])} ({first[1]!r}) and {_letter(position)} "
                f"({header!r}) both mean {f.title}; keep one of them."
            )
        if f is not None:
            seen[f.name] = (position, header)
        name = f.name if f else _unique(header or f"column {_letter(position)}", names)
        names.add(name)
        columns.append(Column(name, header, f))
    _require(label, kind, columns)
    return columns


def _require(label: str, kind: Kind, columns: list[Column]) -> None:
    if not any(c.field for c in columns):
        found = _listing([c.header for c in columns if c.header])
        raise InputError(
            f"{label}: none of its headers ({found}) is a Partner Center field; "
            f"is this the right sheet? A {kind} sheet needs at least Customer ID and "
            f"{'Order ID' if kind == 'orders' else 'Subscription ID'} columns."
        )
    for f in FIELDS[kind]:
        if f.name not in ("customer_id", RESOURCE_ID[kind]):
            continue
        if any(c.field is f for c in columns):
            continue
        unknown = [c.header for c in columns if c.field is None and c.header]
        spellings = [normalize_header(s) for s in (f.name, f.label, *f.aliases)]
        close = [
            h
            for h in unknown
            if difflib.get_close_matches(normalize_header(h), spellings, n=1, cutoff=0.6)
        ]
        hint = (
            f"the closest header is {close[0]!r}"
            if close
            else f"the headers are {_listing([c.header for c in columns])}"
        )
        raise InputError(f"{label}: has no {f.title} column ({hint}); the {kind} sheet needs one.")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def _letter(position: int) -> str:
    """Spreadsheet column letter for a 0-based position (0 -> A, 27 -> AB)."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
