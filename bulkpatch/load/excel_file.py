"""Excel workbooks into grids of text: which sheets to read (hidden ones are skipped, and said
so), and what the cell values alone do not show (formulas never calculated, merged cells), read
from the sheet's XML.
"""

from __future__ import annotations

import html
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import fastexcel
import polars as pl

from bulkpatch.catalog.fields import KINDS, Kind
from bulkpatch.errors import InputError, first_line
from bulkpatch.load import limits
from bulkpatch.load.headers import HEADER_SEARCH, column_letter, listing
from bulkpatch.load.record import RECORD_SHEET, Record, parse
from bulkpatch.load.sheet import Typed


@dataclass
class Defects:
    """What the cell values alone do not show: formulas never calculated, merged cells.

    Cells are (Excel row, 0-based column of the grid); merges also keep their range as Excel
    writes it (`C3:C5`)."""

    formulas: list[tuple[int, int, str]] = field(default_factory=list)
    merges: list[tuple[int, int, int, int, str]] = field(default_factory=list)
    hidden: list[int] = field(default_factory=list)  # rows hidden by a filter or by hand


Sample = dict[int, list[tuple[int, Typed]]]  # grid column -> (Excel row, how it is stored)


@dataclass
class Grid:
    name: str
    grid: pl.DataFrame
    defects: Defects
    sample: Sample = field(default_factory=dict)  # the first rows' cells, typed


@dataclass
class Book:
    names: list[str]  # the visible sheets, in workbook order
    grids: list[Grid]
    notes: list[str]
    chosen_by_user: bool
    record: Record | None = None  # an export's hidden record of what it read


def excel_grids(path: Path, sheet: str | None, kind: Kind | None) -> Book:
    try:
        book = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types per file defect
        reason = first_line(exc)
        raise InputError(f"{path}: cannot be opened as an Excel workbook ({reason}).") from None
    names = book.sheet_names
    parts = _sheet_parts(path)
    hidden = [n for n in names if _hidden(book, n, parts)]
    visible = [n for n in names if n not in hidden]
    notes = []
    if sheet is not None:
        by_lower = {n.lower(): n for n in names}
        if sheet.lower() not in by_lower:
            raise InputError(f"{path}: has no sheet {sheet!r}; its sheets are {listing(names)}.")
        chosen = [by_lower[sheet.lower()]]
    else:
        by_lower = {n.lower(): n for n in visible}
        chosen = [by_lower[k] for k in KINDS if k in by_lower and kind in (None, k)]
        chosen = chosen or visible[:1]
        if not chosen:
            raise InputError(
                f"{path}: every sheet is hidden; name the one to read with --sheet "
                f"(its sheets are {listing(names)})."
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
        xml = _bounded(path, name, parts)
        try:
            # skip_rows=0 keeps empty rows above the header, so row numbers are Excel's
            grid = book.load_sheet_by_name(
                name, header_row=None, skip_rows=0, dtypes="string"
            ).to_polars()
        except Exception as exc:
            raise InputError(f"{path} [{name}]: cannot be read ({first_line(exc)}).") from None
        grids.append(Grid(name, grid, *_inspect(path, xml)))
    return Book(visible, grids, notes, sheet is not None, _record(book, names, path, parts))


def _record(
    book: fastexcel.ExcelReader, names: list[str], path: Path, parts: dict[str, tuple[str, bool]]
) -> Record | None:
    """An export's record (`export_record`), read by its exact name: hidden on purpose, and
    never mistaken for a sheet of changes."""
    if RECORD_SHEET not in names:
        return None
    _bounded(path, RECORD_SHEET, parts)
    try:
        grid = book.load_sheet_by_name(RECORD_SHEET, header_row=None, dtypes="string").to_polars()
        return parse(grid)
    except Exception as exc:  # fastexcel's and Polars' own error types, or a hand-made sheet
        raise InputError(
            f"{path} [{RECORD_SHEET}]: cannot be read as the export's record of what it read "
            f"({first_line(exc)}); delete that sheet to compare with the visible Current "
            "columns instead."
        ) from None


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
# a `<row>` element with hidden="1": its `r` attribute may come before or after `hidden`
_HIDDEN_ROW = re.compile(rb'<row (?=[^>]*\bhidden="(?:1|true)")[^>]*?\br="(\d+)"')
_MERGE = re.compile(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


def _xml(path: Path, part: str) -> bytes | None:
    """A sheet's XML, read once from the zip; None when the workbook names a part it does not
    hold (fastexcel then says what is wrong with it)."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(part)
    except (KeyError, zipfile.BadZipFile):
        return None


def _bounded(path: Path, name: str, parts: dict[str, tuple[str, bool]]) -> bytes | None:
    """Sheet `name`'s XML (None when the workbook is not an .xlsx/.xlsm), once its used range
    is known to be within `limits.MAX_USED_RANGE`: before fastexcel reads the sheet."""
    xml = _xml(path, parts[name][0]) if name in parts else None
    if xml is not None:
        limits.used_range(f"{path} [{name}]", *_used_range(xml))
    return xml


def _used_range(xml: bytes) -> tuple[int, int]:
    """The last row and column (1-based) a sheet's cells name: fastexcel holds every cell from
    the first to the last in memory, empty ones too, so one cell at XFD1048576 would ask it for
    550 GB. The rows from every reference (rows are not trusted to be in order); the columns
    from the references of three letters (or two): a sheet without any ends by Z."""
    rows = re.findall(rb' r="[A-Z]*(\d+)"', xml)
    if not rows:
        return 0, 0
    digits = len(max(rows, key=len))
    last = int(max(r for r in rows if len(r) == digits))
    for letters in (3, 2):
        found = re.findall(rb' r="([A-Z]{%d})\d' % letters, xml)
        if found:
            return last, _column_number(max(found).decode()) + 1
    return last, 26


def _inspect(path: Path, xml: bytes | None) -> tuple[Defects, Sample]:
    """What the sheet's XML shows and fastexcel's text does not: its defects, and how the first
    rows' cells are stored (typed and formatted)."""
    if xml is None:
        return Defects(), {}
    with zipfile.ZipFile(path) as z:
        formats = _number_formats(z)
    offset = _first_column(xml)
    return _defects(xml, offset), _sample(xml, offset, formats)


def _defects(xml: bytes, offset: int) -> Defects:
    """Formula cells with no saved value and merged ranges (the values fastexcel gives cannot
    tell a never-calculated formula from an empty cell)."""
    found = Defects()
    if b"hidden=" in xml:
        found.hidden = [int(r) for r in _HIDDEN_ROW.findall(xml) if r]
    if b"<f" not in xml and b"<mergeCell " not in xml:
        return found
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
        letters = column_letter(position).encode()
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


_CELL = re.compile(rb"<c ([^>]*?)(/?)>")
_SAMPLE_ROWS = HEADER_SEARCH + 50  # a header under a title block, then enough data rows
# Built-in number formats that show dates (and times): Excel's own, and the locale ones (50-58).
_BUILTIN_DATES = {*range(14, 18), *range(27, 32), *range(36, 37), *range(50, 59)}
_BUILTIN_TIMES = {*range(18, 23), *range(32, 36), *range(45, 48)}


def _sample(xml: bytes, offset: int, formats: list[str | int]) -> Sample:
    """How the cells of the first rows are stored: a regex over the start of the sheet XML
    (openpyxl would parse the whole workbook: too slow for the check)."""
    found: Sample = {}
    for cell in _CELL.finditer(xml):
        attributes = cell.group(1).decode()
        ref = re.search(r'\br="([A-Z]+)(\d+)"', attributes)
        if ref is None:
            continue
        row = int(ref.group(2))
        if row > _SAMPLE_ROWS:
            break
        if cell.group(2):  # <c .../>: a formatted blank
            continue
        kind = re.search(r'\bt="(\w+)"', attributes)
        style = re.search(r'\bs="(\d+)"', attributes)
        number_format = (
            formats[int(style.group(1))] if style and int(style.group(1)) < len(formats) else 0
        )
        typed = _typed(kind.group(1) if kind else "n", number_format)
        found.setdefault(_column_number(ref.group(1)) - offset, []).append((row, typed))
    return found


def _typed(cell_type: str, number_format: str | int) -> Typed:
    """A cell's stored type (`t`) and number format as the kind reports write it back as."""
    if cell_type == "b":
        return Typed("boolean")
    if cell_type not in ("n", "d"):
        return Typed("text")
    if isinstance(number_format, int):
        dated, timed = number_format in _BUILTIN_DATES, number_format in _BUILTIN_TIMES
    else:
        # quoted text, escaped characters and [$€-x] or [Red] say nothing; [h] is a duration
        code = re.sub(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]', "", number_format).lower()
        dated, timed = bool(re.search("[dy]", code)), bool(re.search("[hs]", code))
    if dated or timed or cell_type == "d":
        return Typed("datetime" if timed else "date", number_format or 14)
    return Typed("number", number_format)


def _number_formats(z: zipfile.ZipFile) -> list[str | int]:
    """Each cell style's number format (a cell's `s` is its index): the workbook's own code, or
    the id of a built-in format."""
    try:
        root = ElementTree.fromstring(z.read("xl/styles.xml"))
    except (KeyError, ElementTree.ParseError):
        return []
    codes = {
        int(f.get("numFmtId", 0)): f.get("formatCode", "") for f in root.iter(f"{{{_MAIN}}}numFmt")
    }
    styles = root.find(f"{{{_MAIN}}}cellXfs")
    ids = [int(x.get("numFmtId", 0)) for x in (styles if styles is not None else [])]
    return [codes.get(n, n) for n in ids]
