"""CSV files into grids of text, as Excel and other tools save them: any encoding (BOMs, UTF-16,
Windows cp1252), any of three separators, old Mac line endings, a title block above the header,
rows longer than the header.
"""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

import polars as pl

from bulkpatch.errors import InputError, first_line
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
    short = _short_records(source, separator, read[0])
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
            raise InputError(f"{path}: cannot be read as CSV ({first_line(exc)}).") from exc
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


def _short_records(source: Path | bytes, separator: str, grid: pl.DataFrame) -> dict[int, int]:
    """Row -> its cells, for the rows (as a spreadsheet numbers them) with fewer cells than
    the grid is wide: Polars reads them as empty to the end. Only a grid with an empty cell in
    its last column can have one, so most files pay one null count. The lines are then split
    by Polars, counting separators outside quotes; a file with a line break inside quotes (an
    odd number of quotes on a line) is read again record by record, so row numbers stay a
    spreadsheet's."""
    if not grid.width or not grid.get_column(grid.columns[-1]).null_count():
        return {}
    data = _bytes(source)  # UTF-8 by now: transcoded, its old Mac line endings made \n
    lines = pl.read_csv(
        data, has_header=False, separator="\x00", quote_char=None, infer_schema=False
    ).to_series()
    text = lines.str.replace_all(r'"[^"]*"', "")
    if text.str.contains('"', literal=True).any():
        import csv

        found = csv.reader(io.StringIO(data.decode()), delimiter=separator)
        counts = [len(record) for record in found]
    else:
        counts = (text.str.count_matches(separator, literal=True) + 1).fill_null(0).to_list()
    return {i + 1: n for i, n in enumerate(counts) if 0 < n < grid.width}


def _long_records(data: bytes, separator: str, width: int) -> list[int]:
    """The rows (as a spreadsheet numbers them) with more cells than the header has; only read
    when Polars found some."""
    import csv

    reader = csv.reader(io.StringIO(data.decode()), delimiter=separator)
    return [i + 1 for i, record in enumerate(reader) if len(record) > width]
