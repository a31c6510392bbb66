"""What an export read, read back: the three-way round trip (README, "`bulkpatch export`").

An exported workbook carries a very hidden sheet (`RECORD_SHEET`): the export's date, and per
row the keys and the value read of each settable field (under its `Current ...` header). An exported
CSV carries the same as visible columns: its `Current ...` columns and `Exported on`. Loading
either gives each row of the export its date (`Sheet.exported`), and in a workbook the record's
values replace the visible `Current ...` cells, matched by the row's keys: what was read is
what the export wrote, however the visible sheet was sorted or edited since. Plan then treats
an exported row three-way: a cell equal to what was read asks for nothing (and its field is not
compared), an edited cell whose field moved in Partner Center since is a conflict that names
the export's date. Only a sheet that carries a record pays for any of this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import polars as pl

from bulkpatch.catalog.fields import header_index, normalize_header
from bulkpatch.load.sheet import ROW, Sheet, clean

RECORD_SHEET = "bulkpatch-read"
EXPORTED_ON = "Exported on"
_READ = "__read__"  # prefix of the record's value columns while joined


def exported_column(sheet: Sheet) -> str | None:
    """The frame column holding each row's export date (a CSV export's `Exported on`)."""
    wanted = normalize_header(EXPORTED_ON)
    return next(
        (c.name for c in sheet.columns if c.field is None and normalize_header(c.header) == wanted),
        None,
    )


def use_csv_record(sheet: Sheet) -> None:
    """A CSV export: its `Exported on` column dates its rows; the `Current ...` columns are
    already what was read."""
    name = exported_column(sheet)
    if name is None:
        return
    days = sheet.frame.select(ROW, clean(name).alias("day")).drop_nulls("day")
    sheet.exported = dict(days.iter_rows())
    dated = "the export's date: with it, a cell left as exported asks for nothing; never sent"
    sheet.columns = [replace(c, remark=dated) if c.name == name else c for c in sheet.columns]
    _say(sheet, f"its {EXPORTED_ON} column")


@dataclass
class Record:
    """A workbook's record: the export's date, and per row the keys and the values read, under
    the visible sheet's headers."""

    day: str
    frame: pl.DataFrame


def parse(grid: pl.DataFrame) -> Record:
    """The record sheet as `export_book` writes it (text cells, no header row): `Exported on`
    and the date, a JSON list of headers, then a JSON list of values per row. Raises
    ValueError when the sheet is not that."""
    first = grid.get_column(grid.columns[0]) if grid.width >= 2 else pl.Series([], dtype=pl.String)
    if first.len() < 2 or first[0] != EXPORTED_ON:
        raise ValueError("it is not the record an export writes")
    headers = json.loads(first[1])
    rows = first.slice(2).drop_nulls().str.json_decode(pl.List(pl.String))
    frame = pl.DataFrame(
        [rows.list.get(i, null_on_oob=True).alias(h) for i, h in enumerate(headers)],
        schema={h: pl.String for h in headers},
    )
    return Record(str(grid.get_column(grid.columns[1])[0] or ""), frame)


def use_record(sheet: Sheet, record: Record) -> None:
    """An exported workbook: its record replaces the visible `Current ...` cells of the rows
    its keys name, and dates those rows."""
    index = header_index(sheet.kind)
    by_field = {c.field.name: c.name for c in sheet.columns if c.field}
    keys, values = {}, {}
    for header in record.frame.columns:
        f = index.get(normalize_header(header))
        if f is None:  # another kind's record (an orders export's under a Subscriptions sheet)
            return
        if f.name not in by_field:  # a column deleted from the visible sheet
            if f.shown_role == "key":
                return  # rows can no longer be matched: the visible columns stand alone
            continue
        if f.shown_role == "key":
            keys[header] = by_field[f.name]
        elif f.of:
            values[header] = by_field[f.name]
    if not keys or not record.day:
        return
    on = [_READ + "key" + n for n in keys.values()]
    read = record.frame.select(
        *(clean(h).alias(_READ + "key" + n) for h, n in keys.items()),
        *(pl.col(h).alias(_READ + n) for h, n in values.items()),
        pl.lit(True).alias(_READ + "hit"),
    ).unique(on, keep="first", maintain_order=True)
    joined = sheet.frame.with_columns(clean(n).alias(_READ + "key" + n) for n in keys.values())
    joined = joined.join(read, on=on, how="left", maintain_order="left")
    hit = pl.col(_READ + "hit").fill_null(False)
    sheet.frame = joined.select(
        pl.when(hit).then(pl.col(_READ + c)).otherwise(pl.col(c)).alias(c)
        if _READ + c in joined.columns
        else pl.col(c)
        for c in sheet.frame.columns
    )
    rows = joined.filter(hit).get_column(ROW)
    sheet.exported = dict.fromkeys(rows.to_list(), record.day)
    _say(sheet, f"the hidden sheet {RECORD_SHEET!r}")


def _say(sheet: Sheet, where: str) -> None:
    """Tell the user the sheet is read three-way, and from what."""
    if not sheet.exported:
        return
    days = sorted(set(sheet.exported.values()))
    sheet.notes.append(
        f"{len(sheet.exported)} rows come from the export of {', '.join(days)} ({where}): a "
        "cell left as exported asks for nothing; a changed cell whose value moved in Partner "
        "Center since is a conflict."
    )
