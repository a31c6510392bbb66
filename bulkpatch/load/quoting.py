"""The quote that neutralises formula-like text in a CSV bulkpatch writes, and the record that
lets bulkpatch take it off again when it reads its own file.

A spreadsheet runs text starting with `=`, `+`, `-`, `@`, tab or CR as a formula, so every
sheet bulkpatch writes neutralises it: Excel's quote prefix (a cell style) in a workbook, a
leading `'` in a CSV. In a CSV the `'` is text, and a reader cannot tell it from one the user
typed. So a CSV with a quoted cell carries its record in a last column (`QUOTED`): on each row,
the headers of the cells bulkpatch quoted, as a JSON list. `load` reads that column, takes the
`'` off exactly those cells and drops the column; a `'` the user typed stays. The record is in
the file, so it survives a copy (a download) and Excel's open-and-save, whether Excel keeps the
`'` as text (it comes off) or takes it as its quote prefix and saves the bare text (nothing is
left to take off). An undo sheet's record is `EXACT`: its cells are values Partner Center held,
read back exactly, blanks around them kept (a name that starts with a tab keeps its tab).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import polars as pl

from bulkpatch.load.sheet import BLANKS
from bulkpatch.safe import FORMULA_START, NUMBER, neutralise_text, quoted_cells

QUOTED = "Quoted by bulkpatch"
EXACT = "Quoted by bulkpatch (read exactly)"
RECORDS = (QUOTED, EXACT)
_LIST = r'^\[\s*("([^"\\]|\\.)*"\s*(,\s*"([^"\\]|\\.)*"\s*)*)?\]$'  # a JSON list of strings
_EDGE = f"^[{re.escape(BLANKS)}]|[{re.escape(BLANKS)}]$"


def formula_columns(frame: pl.DataFrame) -> set[str]:
    """The text columns of `frame` with a cell a spreadsheet would run (one scan finds those
    that may; only they are looked at again)."""
    texts = [n for n in frame.columns if frame.schema[n] == pl.String]
    if not texts:
        return set()
    starts = frame.select(pl.col(texts).str.contains(FORMULA_START).any()).row(0)
    maybe = [n for n, hit in zip(texts, starts, strict=True) if hit]
    return {n for n in maybe if not quoted_cells(frame.get_column(n))[1].is_empty()}


def quote(
    frame: pl.DataFrame,
    headers: Sequence[str],
    columns: Iterable[int] | None = None,
    exact: bool = False,
) -> tuple[pl.DataFrame, list[str]]:
    """The frame and headers as a CSV carries them: formula-like text in `columns` (positions;
    every text column when None) after a `'`, and the record of those cells as a last column
    when there is one. `exact`: the cells are Partner Center's values (an undo sheet): the
    record is `EXACT`, and it is written also when a cell (of any column) has blanks around
    it, which a reader would otherwise trim."""
    names = frame.columns
    chosen = range(frame.width) if columns is None else sorted(columns)
    texts = [i for i in chosen if frame.schema[names[i]] == pl.String]
    changed, hits = [], []
    for i in texts:
        column, at = quoted_cells(frame.get_column(names[i]))
        if not at.is_empty():
            changed.append(column)
            entry = json.dumps(neutralise_text(headers[i]), ensure_ascii=False)
            hits.append(pl.DataFrame({"at": at}).with_columns(entry=pl.lit(entry)))
    every = [n for n in names if frame.schema[n] == pl.String]
    edged = (
        exact and bool(every) and any(frame.select(pl.col(every).str.contains(_EDGE).any()).row(0))
    )
    if not hits and not edged:
        return frame, list(headers)
    record = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    if hits:
        rows = (
            pl.concat(hits).group_by("at", maintain_order=True).agg(pl.col("entry").str.join(","))
        )
        record = record.scatter(rows.get_column("at"), "[" + rows.get_column("entry") + "]")
    header = EXACT if exact else QUOTED
    out = frame.with_columns(changed).with_columns(record.alias(_unused(header, names)))
    return out, [*headers, header]


def _unused(name: str, taken: list[str]) -> str:
    """A column name for the record that no column of the frame has."""
    while name in taken:
        name += "_"
    return name


def record_at(headers: Sequence[str]) -> int | None:
    """The position of a record column among `headers` (the last one, if several)."""
    found = [i for i, h in enumerate(headers) if h.strip(BLANKS) in RECORDS]
    return found[-1] if found else None


def unquote(
    frame: pl.DataFrame, headers: Sequence[str], record: pl.Series
) -> tuple[pl.DataFrame, int, pl.Series]:
    """`frame` (its columns under `headers`, in order) with the `'` taken off the cells
    `record` names on each row, where the rest is text bulkpatch quotes (if Excel took the
    `'` already, nothing is left to take off); the number of cells changed; and which rows'
    record is not one bulkpatch writes (edited by hand: their cells keep their quotes)."""
    text = record.str.strip_chars(BLANKS)
    readable = text.is_null() | (text == "") | text.str.contains(_LIST)
    named = pl.DataFrame({"text": text, "readable": readable}).select(
        pl.when(pl.col("readable") & (pl.col("text") != ""))
        .then(pl.col("text"))
        .str.json_decode(pl.List(pl.String))
        .list.eval(pl.element().str.strip_chars(BLANKS))
    )
    wanted = set(named.to_series().explode().drop_nulls().to_list())
    chosen = [(n, h.strip(BLANKS)) for n, h in zip(frame.columns, headers, strict=True)]
    chosen = [(n, h) for n, h in chosen if h in wanted]
    if not chosen:
        return frame, 0, ~readable
    listed = _unused("__named__", frame.columns)
    work = frame.with_columns(named.to_series().alias(listed))
    hits = {}
    for n, h in chosen:
        rest = pl.col(n).str.slice(1)
        ours = rest.str.contains(FORMULA_START) & ~rest.str.contains(NUMBER)
        hits[n] = pl.col(listed).list.contains(h) & pl.col(n).str.starts_with("'") & ours
    count = work.select(pl.sum_horizontal(hit.sum() for hit in hits.values())).item()
    taken = work.select(
        pl.when(hit).then(pl.col(n).str.slice(1)).otherwise(pl.col(n)).alias(n)
        for n, hit in hits.items()
    )
    return frame.with_columns(taken), count, ~readable
