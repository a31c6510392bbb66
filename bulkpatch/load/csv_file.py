"""CSV files into grids of text, as Excel and other tools save them: any encoding (BOMs, UTF-16,
Windows cp1252), any of three separators, any mix of line endings (CR LF, LF, old Mac CR), a
title block above the header, rows longer than the header, a quote inside a cell. A file that
still cannot be read is refused in one line naming the line of the file; one too wide is
refused before it is read (`limits`).
"""

from __future__ import annotations

import codecs
import csv
import io
import mmap
import re
from pathlib import Path

import polars as pl

from bulkpatch.errors import InputError
from bulkpatch.load import limits
from bulkpatch.load.headers import HEADER_SEARCH, names_keys
from bulkpatch.load.sheet import Dialect


def csv_grid(
    path: Path,
) -> tuple[pl.DataFrame, list[int], dict[int, int], int, list[int], Dialect]:
    """The cells of a CSV file as text, the rows that had more cells than the header, the rows
    that had fewer (row -> its cells; the lines above the header among them), the row the grid
    starts on, the written rows of a title block above the header (blank lines
    and a title above the header are skipped: Polars would take the first line's width for the
    whole file), and its separator and encoding (the reports write CSV the same way).

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
    if _lone_cr(source):  # old Mac line endings, alone or mixed with others
        source = _line_breaks(_bytes(source))
    start = head if isinstance(source, Path) else source[:65_536]  # look further only if blank
    if not start.strip() and not _bytes(source).strip():
        raise InputError(f"{path}: is empty; it needs a header row and at least one row.")
    lines = start.split(b"\n")
    blank = next(i for i, line in enumerate([*lines, b"x"]) if line.strip())
    header = _csv_header_line(lines, blank)
    titled = [i + 1 for i in range(blank, header) if lines[i].strip()]
    blank = header
    separator = _sniff_separator(b"\n".join(lines[blank:]))
    # Polars makes a column of every cell of the header: count them first
    at = sum(len(line) + 1 for line in lines[:blank])
    width, ended = _cells(start, at, separator)
    if not ended and len(start) == 65_536:  # a header longer than the first 64 KB
        width, _ = _cells(_bytes(source), at, separator)
    limits.columns(str(path), width)
    read = _read(path, source, separator, blank)
    encoding = _encoding(head)
    if read is None:  # not UTF-8: Windows cp1252 (or latin-1), as Excel saves "CSV"
        data = _bytes(source)
        try:
            data = data.decode("cp1252").encode()
        except UnicodeDecodeError:
            data = data.decode("latin-1").encode()
        read = _read(path, data, separator, blank)
        source, encoding = data, "cp1252"
    assert read is not None  # transcoded text is UTF-8
    short = _short_records(source, separator, read[0], blank)
    return *read, short, blank + 1, titled, Dialect(separator, encoding)


def _encoding(head: bytes) -> str:
    """The encoding family of a file that read as Unicode, from its first bytes."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or 0 in head:
        return "utf-16"
    return "utf-8"


def _csv_header_line(lines: list[bytes], first: int) -> int:
    """The line that names the key columns (see `header_row`), or `first` when none does."""
    for i in range(first, min(len(lines), first + HEADER_SEARCH)):
        text = lines[i].decode("utf-8", errors="replace")
        separator = _sniff_separator(lines[i])
        if names_keys(text.split(separator)):
            return i
    return first


def _bytes(source: Path | bytes) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else source


def _lone_cr(source: Path | bytes) -> bool:
    """Does a CR end a line alone somewhere (an old Mac file, or rows pasted in from one)?
    Polars ends lines at LF only: the rows around it would run together. A file is looked at
    in place (no copy); one without any CR at the speed of memory."""
    if isinstance(source, bytes):
        return re.search(rb"\r(?!\n)", source) is not None
    with source.open("rb") as handle:
        if not handle.read(1):
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return view.find(b"\r") >= 0 and re.search(rb"\r(?!\n)", view) is not None


def _line_breaks(data: bytes) -> bytes:
    """`data` with every line ending (CR LF, CR or LF) an LF, as a spreadsheet sees each of
    them end a row; inside quotes a line break belongs to its cell and stays as it is (the
    text between quotes is every other piece between `"`s: a doubled `""` is two of them)."""
    pieces = data.split(b'"')
    pieces[::2] = [p.replace(b"\r\n", b"\n").replace(b"\r", b"\n") for p in pieces[::2]]
    return b'"'.join(pieces)


def _read(
    path: Path, source: Path | bytes, separator: str, blank: int
) -> tuple[pl.DataFrame, list[int]] | None:
    """Polars reads (and validates as UTF-8) in one pass; None when the bytes are not UTF-8.
    A file Polars cannot parse (a quote inside a cell that is not quoted: `12" screen`) is
    read as Excel reads it, by Python's csv module."""
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
        ragged = "more fields" in str(exc)
    data = _bytes(source)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    if ragged:
        try:
            grid = pl.read_csv(data, truncate_ragged_lines=True, **options)
        except pl.exceptions.ComputeError:
            pass  # ragged and malformed too: read by Python's csv module
        else:
            long = [
                i + 1
                for i, r in enumerate(_records(path, text, separator, 1))
                if len(r) > grid.width
            ]
            return grid, long
    return _python_grid(path, text, separator, blank)


def _python_grid(
    path: Path, text: str, separator: str, blank: int
) -> tuple[pl.DataFrame, list[int]]:
    """The grid of a file Polars cannot parse, from Python's csv module, a row at a time (only
    such files come here), shaped as Polars gives it: as wide as the header, blank as null,
    and the rows with more cells than the header."""
    records = list(_records(path, text.split("\n", blank)[-1], separator, blank + 1))
    width = len(records[0]) if records else 0
    rows = [[c or None for c in r[:width]] + [None] * (width - len(r)) for r in records]
    names = [f"column_{i + 1}" for i in range(width)]
    grid = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
    return grid, [blank + 1 + i for i, r in enumerate(records) if len(r) > width]


def _records(path: Path, text: str, separator: str, first: int) -> list[list[str]]:
    """The records of `text` (whose first line is line `first` of the file) as Python's csv
    module reads them, strictly first; a quote inside or after a quoted cell (`"12" screen`)
    is then read as Excel reads it. What it still cannot read stops with one line naming the
    line of the file where that record began."""
    records, failed = _parsed(text, separator, strict=True)
    if failed and "unexpected end of data" not in failed[1]:
        records, failed = _parsed(text, separator, strict=False)
    if failed is None:
        return records
    line, why = first + failed[0], failed[1]
    if "unexpected end of data" in why:
        raise InputError(
            f'{path}: line {line}: a quote (") opens a cell there that never closes, so every '
            "line after it would be that one cell. Close the quote, or write a quote inside a "
            'cell as two ("").'
        )
    raise InputError(
        f"{path}: line {line}: cannot be read as CSV ({why}). Open the file in Excel, save it "
        "as CSV again, and try again."
    )


def _parsed(
    text: str, separator: str, strict: bool
) -> tuple[list[list[str]], tuple[int, str] | None]:
    """The records Python's csv module reads, and where it stopped and why (the lines before
    the record it could not read, counted from 0), or None when it read them all."""
    csv.field_size_limit(2**31 - 1)  # a cell's length is `limits`' to judge, with its reason
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=strict)
    records: list[list[str]] = []
    ended = 0  # the last line of the last record read
    try:
        for record in reader:
            records.append(record)
            ended = reader.line_num
    except csv.Error as exc:
        return records, (ended, str(exc))
    return records, None


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


def _cells(data: bytes, start: int, separator: str) -> tuple[int, bool]:
    """How many cells the record at `start` has (a separator or a line break inside quotes
    is text), counted up to one past `MAX_COLUMNS`, and whether its end was seen in `data`.
    A quote at a time, with `bytes.count` between quotes: a line of millions of separators is
    never split into cells."""
    count, at, sep = 1, start, separator.encode()
    while count <= limits.MAX_COLUMNS:
        quote, end = data.find(b'"', at), data.find(b"\n", at)
        if quote < 0 or 0 <= end < quote:
            stop = len(data) if end < 0 else end
            return count + data.count(sep, at, stop), end >= 0
        count += data.count(sep, at, quote)
        close = data.find(b'"', quote + 1)
        if close < 0:  # a quote left open: the rest of `data` is its cell
            return count, False
        at = close + 1
    return count, True


def _short_records(
    source: Path | bytes, separator: str, grid: pl.DataFrame, blank: int
) -> dict[int, int]:
    """Row -> its cells, for the rows (as a spreadsheet numbers them) with fewer cells than
    the grid is wide: Polars reads them as empty to the end. Only a grid with an empty cell in
    its last column can have one, so most files pay one null count. A row's cells are its
    line's separators plus one, less the separators inside its cells' text (every separator
    either parts two cells or is a cell's text): whole columns, no Python per row. A file with
    a line break inside quotes (more lines than rows) is read again record by record, so row
    numbers stay a spreadsheet's."""
    if not grid.width or not grid.get_column(grid.columns[-1]).null_count():
        return {}
    data = _bytes(source)  # UTF-8 by now: transcoded, its old Mac line endings made \n
    lines = pl.read_csv(
        data,
        has_header=False,
        separator="\x00",
        quote_char=None,
        infer_schema=False,
        skip_lines=blank,
        raise_if_empty=False,
    )
    if lines.height == grid.height:  # the line and the cells side by side, counted at once
        line = lines.to_series().alias("\x00line")
        written = pl.col(line.name).str.count_matches(separator, literal=True) + 1
        inside = pl.sum_horizontal(
            pl.col(c).str.count_matches(separator, literal=True) for c in grid.columns
        )
        counts = grid.with_columns(line).select(written - inside).to_series().fill_null(0)
        offset = blank + 1  # (a blank line has no cells)
    else:
        found = csv.reader(io.StringIO(data.decode()), delimiter=separator)
        counts = pl.Series([len(record) for record in found], dtype=pl.Int64)
        offset = 1
    short = (
        pl.DataFrame({"cells": counts})
        .with_row_index("row", offset=offset)
        .filter((pl.col("cells") > 0) & (pl.col("cells") < grid.width))
    )
    return dict(short.iter_rows())  # the rows found: no Python per row of the file
