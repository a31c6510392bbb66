"""Which rows a match must complete: rows without ids that name their customer or subscription
another way (README, "Matching").

A subscription row may leave `Customer ID` empty when it names a company or a domain, and
`Subscription ID` empty when it names an offer; plan finds the ids (`bulkpatch.match`) and the
matched sheet is checked again as a sheet with ids. Offline, such a row is not missing an id:
check judges the rest of it and says it will be matched. Whole-column expressions only.
"""

from __future__ import annotations

import polars as pl

from bulkpatch.catalog.fields import MATCHED_WITH
from bulkpatch.load.codes import rule
from bulkpatch.load.sheet import ISSUE_SCHEMA, ROW, Sheet, cleaned

# A value the id rules accept, judged in place of an id a match will fill (never sent: the
# matched sheet carries the real id, or the row stops).
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def stand_ins(sheet: Sheet) -> dict[str, list[str]]:
    """Id field -> the sheet's columns that can stand in for it (empty for an orders sheet)."""
    if sheet.kind != "subscriptions":
        return {}
    found = {
        key: [c.name for n in names if (c := sheet.column_for(n))]
        for key, names in MATCHED_WITH.items()
    }
    return {k: v for k, v in found.items() if v}


def wanting(sheet: Sheet) -> dict[str, pl.Expr]:
    """Id field -> whether a row's id is to be found by matching (over cleaned cells): empty,
    with a cell that stands in for it."""
    wanted = {}
    for key, names in stand_ins(sheet).items():
        column = sheet.column_for(key)
        empty = pl.col(column.name).is_null() if column else pl.lit(True)
        wanted[key] = empty & pl.any_horizontal(pl.col(n).is_not_null() for n in names)
    return wanted


def to_match(sheet: Sheet) -> pl.DataFrame:
    """ROW and, per id field, whether matching must find it; only the rows that need one."""
    wanted = wanting(sheet)
    if not wanted:
        return pl.DataFrame(schema={ROW: pl.Int64})
    names = [n for ns in stand_ins(sheet).values() for n in ns]
    names += [c.name for k in wanted if (c := sheet.column_for(k))]
    text = cleaned(sheet, list(dict.fromkeys(names)))
    frame = text.select(ROW, *(e.alias(k) for k, e in wanted.items()))
    return frame.filter(pl.any_horizontal(pl.col(k) for k in wanted))


def judged(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame:
    """`text` with the ids a match will fill judged as present (the placeholder)."""
    fills = []
    for key, wanted in wanting(sheet).items():
        column = sheet.column_for(key)
        if column is not None:
            fills.append(pl.when(wanted).then(pl.lit(PLACEHOLDER)).otherwise(pl.col(column.name)))
            fills[-1] = fills[-1].alias(column.name)
    return text.with_columns(fills) if fills else text


def unnamed(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame:
    """A sheet without an id column: its rows that name the customer or subscription no other
    way either (`value.missing`, said on the first column that could have)."""
    found = []
    for key, names in stand_ins(sheet).items():
        if sheet.column_for(key) is not None:
            continue  # the id column's own rule says an empty cell
        headers = [c.header for n in names for c in sheet.columns if c.name == n]
        words = "customer's company name or domain" if key == "customer_id" else "offer"
        empty = ~pl.any_horizontal(pl.col(n).is_not_null() for n in names)
        found.append(
            text.filter(empty).select(
                pl.col(ROW).alias("row"),
                pl.lit(headers[0]).alias("column"),
                pl.lit("").alias("value"),
                pl.lit("value.missing").alias("code"),
                pl.lit(rule("value.missing")).alias("rule"),
                pl.lit(
                    f"{' and '.join(headers)}: all empty; write the {words}, or add the "
                    f"{'Customer ID' if key == 'customer_id' else 'Subscription ID'}"
                ).alias("message"),
            )
        )
    return pl.concat(found).cast(ISSUE_SCHEMA) if found else pl.DataFrame(schema=ISSUE_SCHEMA)
