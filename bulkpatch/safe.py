"""The rules for every file bulkpatch writes: each appears whole or not at all (written beside,
then renamed into place), and text a spreadsheet would run as a formula is neutralised.

A spreadsheet runs text starting with `=`, `+`, `-`, `@`, tab or CR; a number stays a number
(`-5` is not a formula). Every sheet bulkpatch writes follows this (Excel's quote prefix in a
workbook, a leading `'` in a CSV, whose record `load.quoting` keeps so bulkpatch reads its own
file back as written). Here is the rule; the stages that write apply it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

FORMULA_START = r"^[=+\-@\t\r]"  # how text a spreadsheet would run as a formula starts
NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"  # a plain number: never a formula


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if writing succeeded."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def neutralise(column: pl.Series) -> pl.Series:
    """Prefix `'` to text a spreadsheet would run (`=`, `+`, `-`, `@`, tab, CR); numbers stay."""
    return quoted_cells(column)[0]


def neutralise_text(text: str) -> str:
    """The same rule for one string (headers, labels)."""
    if re.match(FORMULA_START, text) and not re.match(NUMBER, text):
        return "'" + text
    return text


def quoted_cells(column: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The column with formula-like text quoted, and the positions of the cells quoted. Only
    those cells are rewritten (few are): a whole-column expression would copy every cell."""
    starts = column.str.contains(FORMULA_START).arg_true()
    cells = column.gather(starts)
    risky = ~cells.str.contains(NUMBER)
    at = starts.filter(risky)
    if at.is_empty():
        return column, at
    return column.clone().scatter(at, "'" + cells.filter(risky)), at
