"""Stage 1, load: a CSV or Excel sheet, as the finance team keeps it, into a frame of text.

Every cell stays text (ids keep their leading zeros, nothing becomes a float); the row number the
user sees in Excel is kept beside it. Headers are matched to catalog fields here, once; columns we
do not know are kept and carried through to the reports. Anything that makes the file unusable
raises `InputError` with one line naming the file and what to do.

The file readers are `read_csv.py` and `read_excel.py`, header matching is `headers.py`; here a
grid becomes a `Sheet` (`sheet.py`): its header row, its rows numbered, empty and totals rows
skipped, and what the reader found wrong with a cell as row issues.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import polars as pl

from bulkpatch.catalog.fields import Kind, normalize_header
from bulkpatch.errors import InputError
from bulkpatch.load import limits, quoting
from bulkpatch.load.codes import IssueCode, rule
from bulkpatch.load.csv_file import csv_grid
from bulkpatch.load.excel_file import Book, Defects, Sample, excel_grids
from bulkpatch.load.formats import refuse_unreadable
from bulkpatch.load.headers import (
    RECONCILIATION_NOTE,
    cell_text,
    closest_header,
    detect_kind,
    header_row,
    is_reconciliation,
    kind_from_name,
    listing,
    match_columns,
    names_keys,
    refuse_unsettable,
)
from bulkpatch.load.record import EXPORTED_ON, use_csv_record, use_record
from bulkpatch.load.sheet import BLANKS, ISSUE_SCHEMA, ROW, Column, Sheet, Typed, clean, profile

EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
EXPORTED = normalize_header(EXPORTED_ON)


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
    excel = path.suffix.lower() in EXCEL_SUFFIXES
    refuse_unreadable(path, excel)
    declared = {normalize_header(n) for n in notes}
    if excel or _is_zip(path):
        book = excel_grids(path, sheet, kind)
        loaded = [
            _build(path, g.name, g.grid, kind, declared=declared, book=book, defects=g.defects)
            for g in book.grids
        ]
        for g, built in zip(book.grids, loaded, strict=True):
            built.typed = _typed(built, g.sample)
        loaded[0].notes[:0] = book.notes
        if book.record is not None:
            for built in loaded:
                use_record(built, book.record)
    else:
        if sheet is not None:
            raise InputError(
                f"{path}: --sheet only applies to Excel workbooks; this is a CSV file."
            )
        grid, ragged, short, first_row, titled, dialect = csv_grid(path)
        loaded = [_build(path, None, grid, kind, ragged, first_row, declared, titled=titled)]
        issues = pl.concat([loaded[0].issues, _short_rows(loaded[0], short)])
        loaded[0].issues = issues.sort("row", maintain_order=True)
        loaded[0].dialect = dialect
        use_csv_record(loaded[0])
    headers = {normalize_header(c.header) for s in loaded for c in s.columns}
    unknown = [n for n in notes if normalize_header(n) not in headers]
    if unknown:
        found = listing([c.header for s in loaded for c in s.columns])
        raise InputError(f"{path}: has no column {unknown[0]!r} to read as a note ({found}).")
    return loaded


def _typed(sheet: Sheet, sample: Sample) -> dict[str, Typed]:
    """Each column's type in the workbook: the most common among its first data cells (a cell
    of another type is written back as text when it does not convert)."""
    found = {}
    first = sheet.frame.get_column(ROW).min() if sheet.frame.height else None
    for position, column in zip(sheet.positions, sheet.columns, strict=True):
        cells = [t for row, t in sample.get(position, []) if first is not None and row >= first]
        kinds = [t.kind for t in cells[:_SAMPLED]]
        if kinds:
            kind = max(dict.fromkeys(kinds), key=kinds.count)
            found[column.name] = next(t for t in cells if t.kind == kind)
    return found


_SAMPLED = 20  # data cells per column that decide its type


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _build(
    path: Path,
    sheet_name: str | None,
    grid: pl.DataFrame,
    kind: Kind | None,
    ragged: list[int] | None = None,
    first_row: int = 1,
    declared: frozenset[str] | set[str] = frozenset(),
    book: Book | None = None,
    defects: Defects | None = None,
    titled: list[int] | None = None,
) -> Sheet:
    label = f"{path} [{sheet_name}]" if sheet_name else str(path)
    top, skipped = header_row(grid)
    skipped = titled or skipped
    if top is None:
        raise InputError(f"{label}: is empty; it needs a header row and at least one row.")
    headers = [cell_text(h) for h in grid.row(top)]
    limits.columns(label, grid.width)
    limits.rows(label, grid.height - top - 1)
    limits.cells(label, grid, first_row, headers)
    closest = (
        None if names_keys(headers) else closest_header(grid, kind or "subscriptions", first_row)
    )
    if closest and closest[0] != top:  # not the title above it: the row meant as the header
        raise InputError(f"{label}: {closest[1]} Rename those headers, then run it again.")
    body = grid.slice(top + 1)
    names = body.columns  # a new list at each call: asked once, not once per column
    written = body.select(pl.all().is_not_null().any()).row(0) if body.width else ()
    keep = [i for i, h in enumerate(headers) if h or written[i]]
    record = None
    if (own := quoting.record_at([headers[i] for i in keep])) is not None:  # bulkpatch's file
        at = keep.pop(own)
        record = body.get_column(names[at]).alias(headers[at])
    kind = kind or kind_from_name(sheet_name) or detect_kind([headers[i] for i in keep])
    others = book.names if book and not book.chosen_by_user and len(book.names) > 1 else []
    columns = match_columns(label, kind, [(i, headers[i]) for i in keep], declared, others)
    frame = body.select(
        [body.get_column(names[i]).alias(c.name) for i, c in zip(keep, columns, strict=True)]
    )
    if record is not None:
        frame, taken, unread = quoting.unquote(frame, [c.header for c in columns], record)
    exported = book is not None and book.record is not None
    if not exported and EXPORTED not in map(normalize_header, headers):
        refuse_unsettable(label, columns, frame)
    padded, formulas = profile(frame)
    frame = _numbered(frame, columns, padded, first_row + top + 1)
    sheet = Sheet(path, sheet_name, kind, columns, frame, padded, formulas, positions=keep)
    _refuse_mixed(label, sheet)
    asks = any(c.field and c.field.changes for c in columns)
    if is_reconciliation([c.header for c in columns]) and not asks:  # with Seats, it asks
        sheet.notes.append(RECONCILIATION_NOTE)
    problems = [_ragged_issues(ragged)] if ragged else []
    if record is not None:
        problems += _own_quotes(sheet, record, taken, unread, first_row + top + 1)
    if skipped:
        rows = f"row {skipped[0]}" if len(skipped) == 1 else f"rows {skipped[0]}-{skipped[-1]}"
        sheet.notes.append(
            f"Skipped {rows} above the header (a title or instructions): the header is row "
            f"{first_row + top}."
        )
    _skip_totals(sheet)
    if defects:
        problems += _defect_issues(sheet, defects, dict(zip(keep, columns, strict=True)), top)
        _note_hidden(sheet, defects.hidden)
    if problems:
        sheet.issues = pl.concat(problems, how="vertical")
    return sheet


# (the kind's own id, the other kind's id as this kind's sheet names it) per kind
_IDS: dict[Kind, tuple[str, str]] = {
    "subscriptions": ("subscription_id", "orderId"),
    "orders": ("order_id", "lineItems.subscriptionId"),
}


def _refuse_mixed(label: str, sheet: Sheet) -> None:
    """Subscription rows and order rows in one sheet stop the load, with which rows are which.

    A row with an Order ID is an order line; one with a Subscription ID and no Order ID is a
    subscription. They are not split and sent each as its kind: a blank Order ID may as well
    be one forgotten on an order line, and sent as a subscription's PATCH it would change
    another resource. Two sheets (as the month-end sample has) say which is which.
    """
    own, other = (sheet.column_for(n) for n in _IDS[sheet.kind])
    if own is None or other is None:
        return
    mine, theirs = (clean(c.name).is_not_null() for c in (own, other))
    found = sheet.frame.select(ROW, mine.alias("own"), (~mine & theirs).alias("other"))
    ours = found.filter("own").get_column(ROW).to_list()
    others = found.filter("other").get_column(ROW).to_list()
    if not ours or not others:
        return
    subs, orders = (ours, others) if sheet.kind == "subscriptions" else (others, ours)
    raise InputError(
        f"{label}: mixes subscriptions and order lines: {_rows(subs)} "
        f"{'has' if len(subs) == 1 else 'have'} a Subscription ID and no Order ID "
        f"(subscriptions), {_rows(orders)} {'has' if len(orders) == 1 else 'have'} an Order "
        "ID (order lines). Put them on two sheets of one workbook, Subscriptions and Orders "
        "(as the month-end sample does), or in two files, and check again."
    )


def _rows(rows: list[int]) -> str:
    """`row 4`, `rows 2, 3 and 5`, `rows 2, 3, ... and 40 more`."""
    if len(rows) == 1:
        return f"row {rows[0]}"
    return "rows " + listing([str(r) for r in rows]).replace("'", "")


def _numbered(
    frame: pl.DataFrame, columns: list[Column], padded: frozenset[str], first: int
) -> pl.DataFrame:
    """`frame` with ROW (the row number the user sees, from `first`) and without empty rows."""
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
    frame = frame.with_row_index(ROW, offset=first)
    frame = frame.with_columns(pl.col(ROW).cast(pl.Int64)).rechunk()
    if not filled.all():  # only copy the frame when there are empty rows to drop
        frame = frame.filter(filled)
    return frame


def _own_quotes(
    sheet: Sheet, record: pl.Series, taken: int, unread: pl.Series, first: int
) -> list[pl.DataFrame]:
    """A sheet bulkpatch wrote, read back as written (`quoting`): its record's kind (an undo
    sheet's cells are read exactly), a note when quotes came off, and the rows whose record
    cell is not one bulkpatch writes, as row issues (their quotes stay: sent, they would be
    part of the value)."""
    header = record.name
    sheet.exact = header == quoting.EXACT
    if taken:
        cells = "1 cell" if taken == 1 else f"{taken} cells"
        sheet.notes.append(
            f"Read {cells} without the ' that bulkpatch put before text a spreadsheet would "
            f"run (its column {header!r} says which): sent as they were read."
        )
    at = unread.arg_true()
    rows = (at + first).cast(pl.Int64)
    shown = rows.is_in(sheet.frame.get_column(ROW).implode())
    rows, values = rows.filter(shown).to_list(), record.gather(at).filter(shown).to_list()
    if not rows:
        return []
    message = (
        f"{header}: this cell is not what bulkpatch wrote (a list of headers, such as "
        '["Friendly name"]); put back what it held, or empty it to send the row\'s cells as '
        "they are, a leading ' included"
    )
    return [_issues(rows, [header] * len(rows), values, "record.edited", [message] * len(rows))]


def _short_rows(sheet: Sheet, short: dict[int, int]) -> pl.DataFrame:
    """The rows of `sheet` the file did not finish (row -> its cells, from `csv_grid`): a row
    whose missing cells include one that is sent or names the resource is flagged (a line cut
    short, or a line break in a cell without quotes, is not "leave the rest unchanged"); a row
    missing only trailing cells that are never sent (notes, cross-checks) is read with them
    empty, and the mapping says so on each such column."""
    rows = sheet.frame.get_column(ROW)
    present = set(rows.filter(rows.is_in(list(short))).to_list()) if short else set()
    found = {r: n for r, n in short.items() if r in present}
    width = max(sheet.positions, default=-1) + 1
    flagged: dict[int, int] = {}
    read_empty: dict[str, list[int]] = {}
    for row, cells in found.items():
        missing = [c for p, c in zip(sheet.positions, sheet.columns, strict=True) if p >= cells]
        if any(c.field and (c.field.changes or c.field.shown_role == "key") for c in missing):
            flagged[row] = cells
            continue
        for c in missing:
            read_empty.setdefault(c.name, []).append(row)
    sheet.columns = [
        replace(c, remark=_ends_before(read_empty[c.name], c)) if c.name in read_empty else c
        for c in sheet.columns
    ]
    return _issues(
        list(flagged),
        ["(whole row)"] * len(flagged),
        [""] * len(flagged),
        "row.short",
        [
            f"this row has {n} {'cell' if n == 1 else 'cells'} but the header has {width} "
            "columns (a line cut short, or a line break in a cell without quotes): complete "
            "the row, or put the cell that holds a line break in quotes"
            for n in flagged.values()
        ],
    )


def _ends_before(rows: list[int], c: Column) -> str:
    """A column's remark, with the rows that ended before it (read as empty)."""
    remark = c.remark or ("carried to the reports, never sent" if c.field is None else "")
    said = f"{_rows(rows)} {'ends' if len(rows) == 1 else 'end'} before this column: read as empty"
    return f"{remark}; {said}" if remark else said


def _ragged_issues(ragged: list[int]) -> pl.DataFrame:
    """The rows with more cells than the header, as row issues."""
    return _issues(
        ragged,
        ["(whole row)"] * len(ragged),
        [""] * len(ragged),
        "row.ragged",
        ["this row has more cells than the header has columns; the extra cells were not read"]
        * len(ragged),
    )


def _issues(
    rows: list[int], columns: list[str], values: list[str], code: IssueCode, messages: list[str]
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": rows,
            "column": columns,
            "value": values,
            "code": [code] * len(rows),
            "rule": [rule(code)] * len(rows),
            "message": messages,
        },
        schema=ISSUE_SCHEMA,
    )


_TOTAL = r"(?i)^(grand\s*|sub\s*)?(total|totals|sum)\b"


def _skip_totals(sheet: Sheet) -> None:
    """Drop rows whose first written cell says Total and whose key cells are empty (or say
    Total themselves, when the key column comes first): a spreadsheet's totals row is not a
    change (and not an error)."""
    keys = [c.name for c in sheet.columns if c.field and c.field.required]
    # A key column without padded or blank cells is empty only where null: no copy to clean it.
    cells = [clean(k) if k in sheet.padded else pl.col(k) for k in keys]
    # Only the first key column may hold the label; the others must be empty. Those few rows
    # are found with null checks alone, and only they meet a regex.
    others = pl.all_horizontal(c.is_null() for c in cells[1:]) if len(cells) > 1 else True
    unkeyed = sheet.frame.filter(others).filter(
        cells[0].is_null() | cells[0].str.contains(_TOTAL) if cells else True
    )
    if unkeyed.is_empty():  # most sheets: the first written cell of no row needs reading
        return
    text = pl.col([c.name for c in sheet.columns]).str.strip_chars(BLANKS)
    first = pl.coalesce(pl.when(text == "").then(None).otherwise(text)).alias("first")
    totals = unkeyed.filter(first.str.contains(_TOTAL))
    if totals.is_empty():
        return
    sheet.frame = sheet.frame.filter(~pl.col(ROW).is_in(totals.get_column(ROW).implode()))
    for row, text in totals.select(ROW, first).iter_rows():
        sheet.notes.append(f"Skipped row {row} ({text!r}): a totals row, not a change.")


def _note_hidden(sheet: Sheet, rows: list[int]) -> None:
    """Rows a filter (or a hand) hid in the workbook are still rows: say so, since a reader who
    filtered the sheet down may think only what shows is sent."""
    if not rows:
        return
    hidden = sheet.frame.filter(pl.col(ROW).is_in(rows)).get_column(ROW).to_list()
    if not hidden:
        return
    shown = ", ".join(map(str, hidden[:10])) + (
        f" and {len(hidden) - 10} more" if len(hidden) > 10 else ""
    )
    which = f"Row {shown} is" if len(hidden) == 1 else f"Rows {shown} are"
    sheet.notes.append(
        f"{which} hidden in the workbook (by a filter or by hand): read, checked and sent like "
        "every other row; delete a row to leave it out."
    )


def _defect_issues(
    sheet: Sheet, defects: Defects, at: dict[int, Column], top: int
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
                "cell.formula_without_value",
                [
                    f"{h}: the cell holds a formula ({f}) with no saved value; open the file in "
                    "Excel, save it, and try again"
                    for _, h, f in formulas
                ],
            )
        )
    rows = sorted(shown)  # a merge over a million empty rows costs the rows there are
    merged = [
        (row, at[col].header, ref, r1)
        for r1, c1, r2, c2, ref in defects.merges
        if r2 > header_row
        for col in sorted(c for c in at if c1 <= c <= c2)
        for row in rows[bisect_left(rows, max(r1, header_row + 1)) : bisect_right(rows, r2)]
    ]
    if merged:
        found.append(
            _issues(
                [r for r, _, _, _ in merged],
                [h for _, h, _, _ in merged],
                ["" for _ in merged],
                "cell.merged",
                [
                    f"{h}: cells {ref} are merged, so only row {first} holds the value; unmerge "
                    "them and write the value on every row"
                    for _, h, ref, first in merged
                ],
            )
        )
    return found
