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

from bulkpatch.catalog import KINDS, Kind
from bulkpatch.errors import InputError, first_line
from bulkpatch.headers import column_letter, listing


@dataclass
class Defects:
    """What the cell values alone do not show: formulas never calculated, merged cells.

    Cells are (Excel row, 0-based column of the grid); merges also keep their range as Excel
    writes it (`C3:C5`)."""

    formulas: list[tuple[int, int, str]] = field(default_factory=list)
    merges: list[tuple[int, int, int, int, str]] = field(default_factory=list)


@dataclass
class Grid:
    name: str
    grid: pl.DataFrame
    defects: Defects


@dataclass
class Book:
    names: list[str]  # the visible sheets, in workbook order
    grids: list[Grid]
    notes: list[str]
    chosen_by_user: bool


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
        try:
            # skip_rows=0 keeps empty rows above the header, so row numbers are Excel's
            grid = book.load_sheet_by_name(
                name, header_row=None, skip_rows=0, dtypes="string"
            ).to_polars()
        except Exception as exc:
            raise InputError(f"{path} [{name}]: cannot be read ({first_line(exc)}).") from None
        grids.append(Grid(name, grid, _defects(path, parts[name][0] if name in parts else None)))
    return Book(visible, grids, notes, sheet is not None)


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


def _defects(path: Path, part: str | None) -> Defects:
    """Formula cells with no saved value and merged ranges, read from the sheet's XML (the
    values fastexcel gives cannot tell a never-calculated formula from an empty cell)."""
    found = Defects()
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
