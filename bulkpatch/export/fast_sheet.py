"""Rows streamed into a workbook xlsxwriter has written, their XML made by whole-column Polars
expressions.

xlsxwriter spends about 5 us of Python on every cell it writes: 2.5 million cells (an export of
100,000 rows) take it over 10 s. So xlsxwriter writes everything but the rows (styles,
validations, protection, panes, other sheets, defined names) into memory, and `write` copies
that package to the file, streaming the rows into the named sheets' `<sheetData>` in chunks
(memory stays flat) and widening their `<dimension>`. A cell takes its column's style, as a
cell xlsxwriter writes without a format does; text is escaped as xlsxwriter escapes it and
written as an inline string, as its constant-memory mode writes it.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import unescape

import polars as pl
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell

CHUNK = 2_048  # rows made and written at a time: memory grows with it, time per call falls
ROW = "__fast_sheet_row__"  # the sheet's row number, added to each chunk
MAX_CHARS = 32_767  # Excel's limit for a cell's text (xlsxwriter cuts there too)
BIG = 10_000_000  # cells whose XML may pass 2 GiB: the zip entry needs ZIP64
# As xlsxwriter's `_escape_control_characters` and `_escape_data`: a literal `_xHHHH_` keeps
# its underscore escaped, control characters (but tab and newline) and two non-characters
# become `_xHHHH_`, and &, <, > become entities.
_LITERAL_ESCAPE = r"_(x[0-9a-fA-F]{4}_)"
_CONTROLS = [chr(c) for c in (*range(0x09), *range(0x0B, 0x20))] + ["\ufffe", "\uffff"]
_FIND = ["&", "<", ">", *_CONTROLS]
_REPLACE = ["&amp;", "&lt;", "&gt;", *(f"_x{ord(c):04X}_" for c in _CONTROLS)]


def text(value: pl.Expr) -> pl.Expr:
    """A text cell's XML after its reference and style (null: no cell)."""
    escaped = (
        value.str.slice(0, MAX_CHARS)
        .str.replace_all(_LITERAL_ESCAPE, "_x005F_${1}")
        .str.replace_many(_FIND, _REPLACE)
    )
    # Leading or trailing whitespace is kept only if the text says so.
    space = pl.when(escaped.str.contains(r"^\s|\s$")).then(pl.lit(' xml:space="preserve"'))
    return pl.concat_str(
        pl.lit(' t="inlineStr"><is><t'),
        space.otherwise(pl.lit("")),
        pl.lit(">"),
        escaped,
        pl.lit("</t></is>"),
    )


def number(value: pl.Expr) -> pl.Expr:
    """A number cell's XML after its reference and style (`value` numeric; null: no cell)."""
    return pl.concat_str(pl.lit("><v>"), value.cast(pl.String), pl.lit("</v>"))


def boolean(value: pl.Expr) -> pl.Expr:
    """A boolean cell's XML after its reference and style (null: no cell)."""
    return (
        pl.when(value).then(pl.lit(' t="b"><v>1</v>')).when(~value).then(pl.lit(' t="b"><v>0</v>'))
    )


@dataclass(frozen=True)
class Rows:
    """The rows to add to a sheet: `cells` holds one expression per column from A (`text`,
    `number`, `boolean`, or a `pl.when` choosing between them), evaluated on `frame`; its
    first row goes to the sheet's row `first` (0-based, after any row xlsxwriter wrote)."""

    frame: pl.DataFrame
    cells: list[pl.Expr]
    first: int


def write(package: bytes, path: Path, sheets: dict[str, Rows]) -> None:
    """Write the workbook xlsxwriter made (`package`) to `path`, each sheet named in `sheets`
    with its rows added; every other part as it was."""
    with (
        zipfile.ZipFile(io.BytesIO(package)) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        parts = _sheet_parts(source)
        adding = {parts[name]: rows for name, rows in sheets.items() if rows.frame.height}
        for info in source.infolist():
            if info.filename not in adding:
                target.writestr(info, source.read(info))
                continue
            rows = adding[info.filename]
            entry = zipfile.ZipInfo(info.filename, info.date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            big = rows.frame.height * len(rows.cells) > BIG
            with target.open(entry, "w", force_zip64=big) as out:
                for piece in _sheet(source.read(info).decode(), rows):
                    out.write(piece)


def _sheet_parts(source: zipfile.ZipFile) -> dict[str, str]:
    """Each sheet's name -> its part in the package (xlsxwriter's targets are relative to
    `xl/`)."""
    book = source.read("xl/workbook.xml").decode()
    links = source.read("xl/_rels/workbook.xml.rels").decode()
    targets = {
        attrs["Id"]: attrs["Target"]
        for attrs in map(_attributes, re.findall(r"<Relationship [^>]*>", links))
    }
    return {
        unescape(attrs["name"], {"&quot;": '"', "&apos;": "'"}): "xl/" + targets[attrs["r:id"]]
        for attrs in map(_attributes, re.findall(r"<sheet [^>]*>", book))
    }


def _sheet(xml: str, rows: Rows) -> Iterator[bytes]:
    """The sheet's XML with the rows added before `</sheetData>`, in chunks."""
    if "</sheetData>" not in xml:
        raise ValueError("the sheet has no rows to add to: write its first row with xlsxwriter")
    head, tail = xml.split("</sheetData>", 1)
    head = _dimension(head, rows)
    yield head.encode()
    styles = _styles(head, len(rows.cells))
    cells = [
        pl.concat_str(
            pl.lit(f'<c r="{xl_col_to_name(col)}'),
            pl.col(ROW),
            pl.lit(f'"{style}'),
            body,
            pl.lit("</c>"),
        )
        for col, (body, style) in enumerate(zip(rows.cells, styles, strict=True))
    ]
    row = pl.concat_str(
        pl.lit('<row r="'), pl.col(ROW), pl.lit('">'), *cells, pl.lit("</row>"), ignore_nulls=True
    )
    for start in range(0, rows.frame.height, CHUNK):
        number = pl.int_range(pl.len(), dtype=pl.Int64) + (rows.first + start + 1)
        chunk = rows.frame.slice(start, CHUNK).with_columns(number.cast(pl.String).alias(ROW))
        yield chunk.select(row.str.join("")).item().encode()
    yield ("</sheetData>" + tail).encode()


def _dimension(head: str, rows: Rows) -> str:
    """The `<dimension ref>` widened to the added rows; refuses rows that overlap written ones."""
    found = re.search(r'<dimension ref="([A-Z]+[0-9]+)(?::([A-Z]+[0-9]+))?"/>', head)
    if not found:
        raise ValueError("the sheet has no <dimension>: not one xlsxwriter wrote")
    last_row, last_col = xl_cell_to_rowcol(found[2] or found[1])
    if last_row >= rows.first:
        raise ValueError(f"rows from row {rows.first + 1} would overlap the sheet's own rows")
    end = xl_rowcol_to_cell(rows.first + rows.frame.height - 1, max(last_col, len(rows.cells) - 1))
    return head[: found.start()] + f'<dimension ref="{found[1]}:{end}"/>' + head[found.end() :]


def _styles(head: str, width: int) -> list[str]:
    """Each column's ` s="N"` from the sheet's `<col>` elements ("" for none)."""
    found = [""] * width
    for attrs in map(_attributes, re.findall(r"<col [^>]*>", head)):
        if "style" in attrs:
            for col in range(int(attrs["min"]) - 1, min(int(attrs["max"]), width)):
                found[col] = f' s="{attrs["style"]}"'
    return found


def _attributes(tag: str) -> dict[str, str]:
    return dict(re.findall(r'([\w:]+)="([^"]*)"', tag))
