"""Stage 1, load: a CSV or Excel sheet, as the finance team keeps it, into a frame of text.

Every cell stays text (ids keep their leading zeros, nothing becomes a float); the row number the
user sees in Excel is kept beside it. Headers are matched to catalog fields here, once; columns we
do not know are kept and carried through to the reports. Anything that makes the file unusable
raises `InputError` with one line naming the file and what to do.
"""

from __future__ import annotations

import codecs
import difflib
import html
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import fastexcel
import polars as pl

from bulkpatch.catalog import (
    FIELDS,
    RESOURCE_ID,
    Field,
    Kind,
    header_index,
    normalize_header,
)
from bulkpatch.errors import InputError
from bulkpatch.field import KINDS
from bulkpatch.headers import AMBIGUOUS, near_miss

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
    """One input column: its unique name in the frame, its header as given, its field if known,
    and what the mapping should tell the user about how it was read."""

    name: str
    header: str
    field: Field | None
    remark: str = ""


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

    @property
    def label(self) -> str:
        """How messages name this sheet: the file, and the sheet inside a workbook."""
        return f"{self.path.name} [{self.sheet_name}]" if self.sheet_name else self.path.name

    def column_for(self, name: str) -> Column | None:
        """The input column carrying catalog field `name`, if the sheet has one."""
        return next((c for c in self.columns if c.field and c.field.name == name), None)

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
    }.get(f.role, "")
    if f.role == "expected" and f.of:
        remark = f"the {f.of} you believe Partner Center holds now; never sent"
    return Mapped(c.header, f.name, f.shown_role, f.of or None, remark)


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


def load(
    path: str | Path,
    sheet: str | None = None,
    kind: Kind | None = None,
    notes: Sequence[str] = (),
) -> list[Sheet]:
    """Read `path` into one Sheet, or two for a workbook with Subscriptions and Orders sheets.

    `notes` are headers the user declares notes (carried, never sent, never compared): the way
    to keep a column whose header is a near miss of a field bulkpatch knows.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a sheet.")
    declared = {normalize_header(n) for n in notes}
    if path.suffix.lower() in EXCEL_SUFFIXES or _is_zip(path):
        book = _excel_grids(path, sheet, kind)
        loaded = [
            _build(path, g.name, g.grid, kind, declared=declared, book=book, defects=g.defects)
            for g in book.grids
        ]
        loaded[0].notes[:0] = book.notes
    else:
        if sheet is not None:
            raise InputError(
                f"{path}: --sheet only applies to Excel workbooks; this is a CSV file."
            )
        grid, ragged, first_row, titled = _csv_grid(path)
        loaded = [_build(path, None, grid, kind, ragged, first_row, declared, titled=titled)]
    headers = {normalize_header(c.header) for s in loaded for c in s.columns}
    unknown = [n for n in notes if normalize_header(n) not in headers]
    if unknown:
        found = _listing([c.header for s in loaded for c in s.columns])
        raise InputError(f"{path}: has no column {unknown[0]!r} to read as a note ({found}).")
    return loaded


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


# --- Excel -------------------------------------------------------------------------------------


@dataclass
class _Defects:
    """What the cell values alone do not show: formulas never calculated, merged cells.

    Cells are (Excel row, 0-based column of the grid); merges also keep their range as Excel
    writes it (`C3:C5`)."""

    formulas: list[tuple[int, int, str]] = field(default_factory=list)
    merges: list[tuple[int, int, int, int, str]] = field(default_factory=list)


@dataclass
class _Grid:
    name: str
    grid: pl.DataFrame
    defects: _Defects


@dataclass
class _Book:
    names: list[str]  # the visible sheets, in workbook order
    grids: list[_Grid]
    notes: list[str]
    chosen_by_user: bool


def _excel_grids(path: Path, sheet: str | None, kind: Kind | None) -> _Book:
    try:
        book = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types per file defect
        reason = _first_line(exc)
        raise InputError(f"{path}: cannot be opened as an Excel workbook ({reason}).") from None
    names = book.sheet_names
    parts = _sheet_parts(path)
    hidden = [n for n in names if _hidden(book, n, parts)]
    visible = [n for n in names if n not in hidden]
    notes = []
    if sheet is not None:
        by_lower = {n.lower(): n for n in names}
        if sheet.lower() not in by_lower:
            raise InputError(f"{path}: has no sheet {sheet!r}; its sheets are {_listing(names)}.")
        chosen = [by_lower[sheet.lower()]]
    else:
        by_lower = {n.lower(): n for n in visible}
        chosen = [by_lower[k] for k in KINDS if k in by_lower and kind in (None, k)]
        chosen = chosen or visible[:1]
        if not chosen:
            raise InputError(
                f"{path}: every sheet is hidden; name the one to read with --sheet "
                f"(its sheets are {_listing(names)})."
            )
        # the sheets read before hidden ones were skipped: say which of those were not read
        before = [n for n in names if n.lower() in KINDS and kind in (None, n.lower())]
        notes = [
            f"Skipped the hidden sheet {n!r} (name it with --sheet to read it)."
            for n in before or names[:1]
            if n in hidden
        ]
    grids = []
    for name in chosen:
        try:
            # skip_rows=0 keeps empty rows above the header, so row numbers are Excel's
            grid = book.load_sheet_by_name(
                name, header_row=None, skip_rows=0, dtypes="string"
            ).to_polars()
        except Exception as exc:
            raise InputError(f"{path} [{name}]: cannot be read ({_first_line(exc)}).") from None
        grids.append(_Grid(name, grid, _defects(path, parts[name][0] if name in parts else None)))
    return _Book(visible, grids, notes, sheet is not None)


def _sheet_parts(path: Path) -> dict[str, tuple[str, bool]]:
    """Sheet name -> (its XML part in the zip, hidden?) for an .xlsx/.xlsm; empty otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            workbook = ElementTree.fromstring(z.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return {}
    targets = {r.get("Id"): r.get("Target", "") for r in rels}
    found = {}
    for s in workbook.iter(f"{{{_MAIN}}}sheet"):
        target = targets.get(s.get(f"{{{_RELS}}}id"), "")
        part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        found[s.get("name", "")] = (part, s.get("state", "visible") != "visible")
    return found


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _hidden(book: fastexcel.ExcelReader, name: str, parts: dict[str, tuple[str, bool]]) -> bool:
    if name in parts:
        return parts[name][1]
    return book.load_sheet_by_name(name, n_rows=0).visible != "visible"


_CELL_WITH_FORMULA = re.compile(
    rb"<c ([^>]*)>\s*<f([^>]*?)(?:/>|>([^<]*)</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>"
)
_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


def _defects(path: Path, part: str | None) -> _Defects:
    """Formula cells with no saved value and merged ranges, read from the sheet's XML (the
    values fastexcel gives cannot tell a never-calculated formula from an empty cell)."""
    found = _Defects()
    if part is None:
        return found
    with zipfile.ZipFile(path) as z:
        xml = z.read(part)
    if b"<f" not in xml and b"<mergeCell " not in xml:
        return found
    offset = _first_column(xml)
    for cell in _CELL_WITH_FORMULA.finditer(xml):
        attributes = cell.group(1).decode()
        ref = re.search(r'\br="([A-Z]+)(\d+)"', attributes)
        if ref is None or re.search(r'\bt="str"', attributes):  # text result "": a value
            continue
        formula = html.unescape((cell.group(3) or b"").decode())
        found.formulas.append(
            (int(ref.group(2)), _column_number(ref.group(1)) - offset, f"={formula}")
        )
    for m in _MERGE.finditer(xml):
        c1, r1, c2, r2 = m.group(1).decode(), int(m.group(2)), m.group(3).decode(), int(m.group(4))
        found.merges.append(
            (r1, _column_number(c1) - offset, r2, _column_number(c2) - offset, f"{c1}{r1}:{c2}{r2}")
        )
    return found


def _first_column(xml: bytes) -> int:
    """The column fastexcel's grid starts at: the first one holding a value (not the sheet's
    dimension, which counts formulas without a value and formatted blanks)."""
    for position in range(_COLUMN_SEARCH):
        letters = _letter(position).encode()
        if re.search(
            rb'<c r="' + letters + rb'\d+"[^>]*>(?:<f[^>]*/>|<f[^>]*>[^<]*</f>)?'
            rb"(?:<v>[^<]|<is>)",
            xml,
        ):
            return position
    return 0


_COLUMN_SEARCH = 52  # how far right the first value is looked for


def _column_number(letters: str) -> int:
    """0-based position of a spreadsheet column (A -> 0, AB -> 27)."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number - 1


# --- CSV ---------------------------------------------------------------------------------------


def _csv_grid(path: Path) -> tuple[pl.DataFrame, list[int], int, list[int]]:
    """The cells of a CSV file as text, the rows that had more cells than the header, the
    row the grid starts on and the written rows of a title block above the header (blank lines
    and a title above the header are skipped: Polars would take the first line's width for the
    whole file).

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
    if b"\r" in start and b"\n" not in start:  # old Mac line endings: CR alone ends a line
        source = _bytes(source).replace(b"\r", b"\n")
        start = source[:65_536]
    if not start.strip() and not _bytes(source).strip():
        raise InputError(f"{path}: is empty; it needs a header row and at least one row.")
    lines = start.split(b"\n")
    blank = next(i for i, line in enumerate([*lines, b"x"]) if line.strip())
    header = _csv_header_line(lines, blank)
    titled = [i + 1 for i in range(blank, header) if lines[i].strip()]
    blank = header
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
    return *read, blank + 1, titled


def _csv_header_line(lines: list[bytes], first: int) -> int:
    """The line that names the key columns (see `_header_row`), or `first` when none does."""
    for i in range(first, min(len(lines), first + _HEADER_SEARCH)):
        text = lines[i].decode("utf-8", errors="replace")
        separator = _sniff_separator(lines[i])
        if _names_keys(text.split(separator)):
            return i
    return first


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
    declared: frozenset[str] | set[str] = frozenset(),
    book: _Book | None = None,
    defects: _Defects | None = None,
    titled: list[int] | None = None,
) -> Sheet:
    label = f"{path} [{sheet_name}]" if sheet_name else str(path)
    top, skipped = _header_row(grid)
    skipped = titled or skipped
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
    others = book.names if book and not book.chosen_by_user and len(book.names) > 1 else []
    columns = _match_columns(label, kind, [(i, headers[i]) for i in keep], declared, others)
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
    if skipped:
        rows = f"row {skipped[0]}" if len(skipped) == 1 else f"rows {skipped[0]}-{skipped[-1]}"
        sheet.notes.append(
            f"Skipped {rows} above the header (a title or instructions): the header is row "
            f"{first_row + top}."
        )
    _skip_totals(sheet)
    problems = []
    if ragged:
        problems.append(
            _issues(
                ragged,
                ["(whole row)"] * len(ragged),
                [""] * len(ragged),
                "ragged row",
                [
                    "this row has more cells than the header has columns; the extra cells "
                    "were not read"
                ]
                * len(ragged),
            )
        )
    if defects:
        problems += _defect_issues(sheet, defects, dict(zip(keep, columns, strict=True)), top)
    if problems:
        sheet.issues = pl.concat(problems, how="vertical")
    return sheet


def _issues(
    rows: list[int], columns: list[str], values: list[str], rule: str, messages: list[str]
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": rows,
            "column": columns,
            "value": values,
            "rule": [rule] * len(rows),
            "message": messages,
        },
        schema=ISSUE_SCHEMA,
    )


def _header_row(grid: pl.DataFrame) -> tuple[int | None, list[int]]:
    """The header's position in `grid`, and the written rows above it (1-based in the grid).

    The header is the first row that names the key columns (a customer id and a subscription or
    order id), so a title or instruction block above it is skipped; a sheet with no such row
    (its keys misspelt, say) takes its first written row, and load then says what is missing.
    """
    written = []
    for i, row in enumerate(grid.head(_HEADER_SEARCH).iter_rows()):
        texts = [_text(c) for c in row]
        if not any(texts):
            continue
        if _names_keys(texts):
            return i, [w + 1 for w in written]
        written.append(i)
    if written:
        return written[0], []
    rest = (i for i, row in enumerate(grid.iter_rows()) if any(_text(c) for c in row))
    return next(rest, None), []


_HEADER_SEARCH = 50  # rows searched for a header under a title block
_KEYS = {
    name: f.name
    for k in KINDS
    for name, f in header_index(k).items()
    if f.name in ("customer_id", "subscription_id", "order_id")
}


def _names_keys(cells: list[str]) -> bool:
    """Does a row name a customer id and a subscription or order id column?"""
    named = {_KEYS.get(normalize_header(_text(c))) for c in cells}
    return "customer_id" in named and bool(named & {"subscription_id", "order_id"})


_TOTAL = r"(?i)^(grand\s*|sub\s*)?(total|totals|sum)\b"


def _skip_totals(sheet: Sheet) -> None:
    """Drop rows whose first written cell says Total and whose key cells are empty: a
    spreadsheet's totals row is not a change (and not an error)."""
    keys = [c.name for c in sheet.columns if c.field and c.field.required]
    no_keys = pl.all_horizontal(clean(k).is_null() for k in keys)
    first = pl.coalesce([clean(c.name) for c in sheet.columns])
    totals = sheet.frame.filter(no_keys).filter(first.str.contains(_TOTAL))
    if totals.is_empty():
        return
    sheet.frame = sheet.frame.filter(~pl.col(ROW).is_in(totals.get_column(ROW).implode()))
    for row, text in totals.select(ROW, first).iter_rows():
        sheet.notes.append(f"Skipped row {row} ({text!r}): a totals row, not a change.")


def _defect_issues(
    sheet: Sheet, defects: _Defects, at: dict[int, Column], top: int
) -> list[pl.DataFrame]:
    """Formula cells without a saved value, and merged cells over data rows, as row issues."""
    header_row = top + 1  # Excel numbers rows from 1 and the grid starts at row 1
    if not (defects.formulas or defects.merges):
        return []
    shown = set(sheet.frame.get_column(ROW).to_list())  # rows skipped or empty are not reported
    found = []
    formulas = [
        (row, at[col].header, formula)
        for row, col, formula in defects.formulas
        if row in shown and col in at
    ]
    if formulas:
        found.append(
            _issues(
                [r for r, _, _ in formulas],
                [h for _, h, _ in formulas],
                [f for _, _, f in formulas],
                "formula without a value",
                [
                    f"{h}: the cell holds a formula ({f}) with no saved value; open the file in "
                    "Excel, save it, and try again"
                    for _, h, f in formulas
                ],
            )
        )
    merged = [
        (row, at[col].header, ref, r1)
        for r1, c1, r2, c2, ref in defects.merges
        if r2 > header_row
        for col in range(c1, c2 + 1)
        if col in at
        for row in range(max(r1, header_row + 1), r2 + 1)
        if row in shown
    ]
    if merged:
        found.append(
            _issues(
                [r for r, _, _, _ in merged],
                [h for _, h, _, _ in merged],
                ["" for _ in merged],
                "merged cells",
                [
                    f"{h}: cells {ref} are merged, so only row {first} holds the value; unmerge "
                    "them and write the value on every row"
                    for _, h, ref, first in merged
                ],
            )
        )
    return found


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


def _match_columns(
    label: str,
    kind: Kind,
    headers: list[tuple[int, str]],
    declared: frozenset[str] | set[str] = frozenset(),
    sheets: list[str] | None = None,
) -> list[Column]:
    index = header_index(kind)
    seen: dict[str, tuple[int, str]] = {}
    names: set[str] = {ROW}
    columns = []
    for position, header in headers:
        key = normalize_header(header)
        f = None if key in declared else index.get(key)
        if f is not None and f.name in seen:
            first = seen[f.name]
            raise InputError(
                f"{label}: columns {_letter(first[0])} ({first[1]!r}) and {_letter(position)} "
                f"({header!r}) both mean {f.title}; keep one of them."
            )
        if f is not None:
            seen[f.name] = (position, header)
        remark = ""
        if key in declared:
            remark = "declared a note: carried to the reports, never sent"
        elif key in AMBIGUOUS:
            remark = f"read as a note: {AMBIGUOUS[key]}"
        name = f.name if f else _unique(header or f"column {_letter(position)}", names)
        names.add(name)
        columns.append(Column(name, header, f, remark))
    _require(label, kind, columns, sheets or [])
    for _, header in headers:
        key = normalize_header(header)
        meant = None if key in declared or key in index else near_miss(kind, header)
        if meant:
            raise InputError(
                f"{label}: Column {header!r} is not a field bulkpatch knows. Did you mean "
                f"{meant!r}? Rename the header, or declare it a note to keep it as it is."
            )
    return columns


def _require(label: str, kind: Kind, columns: list[Column], sheets: list[str]) -> None:
    if not any(c.field for c in columns):
        found = _listing([c.header for c in columns if c.header])
        pick = f" Pick the sheet to read with --sheet: {_listing(sheets)}." if sheets else ""
        raise InputError(
            f"{label}: none of its headers ({found}) is a Partner Center field; "
            f"is this the right sheet? A {kind} sheet needs at least Customer ID and "
            f"{'Order ID' if kind == 'orders' else 'Subscription ID'} columns.{pick}"
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
