"""The check rules that span rows: one target twice, an order's rows that disagree, renewal
instructions without auto-renew, a total and a seat change on one row, invisible characters in
ids. Polars window expressions over the cleaned text; each rule gives rows of the issues table.
"""

from __future__ import annotations

import functools
import operator

import polars as pl

from bulkpatch.catalog.fields import RESOURCE_ID
from bulkpatch.check.values import INVISIBLE, as_enum_key, as_integer, has_invisible
from bulkpatch.load.codes import IssueCode, rule
from bulkpatch.load.headers import is_reconciliation
from bulkpatch.load.sheet import ROW, Column, Sheet


def cross_row_issues(sheet: Sheet, text: pl.DataFrame) -> list[pl.DataFrame]:
    """The issues of every rule that spans rows, over the cleaned text of `sheet`."""
    parts = [
        _duplicate_targets(sheet, text),
        _renewal_without_auto_renew(sheet, text),
        _total_and_change(sheet, text),
        *_invisible_in_ids(sheet, text),
    ]
    if sheet.kind == "orders":
        parts.append(_order_disagreements(sheet, text))
    return [p for p in parts if p is not None]


def _issue(
    column: Column, code: IssueCode, message: pl.Expr, header: pl.Expr | None = None
) -> list[pl.Expr]:
    return [
        pl.col(ROW).alias("row"),
        (pl.lit(column.header) if header is None else header).alias("column"),
        pl.col(column.name).fill_null("").alias("value"),
        pl.lit(code).alias("code"),
        pl.lit(rule(code)).alias("rule"),
        message.alias("message"),
    ]


def _rows_list(over: list[pl.Expr]) -> pl.Expr:
    return pl.col(ROW).cast(pl.String).str.join(", ").over(over)


def _duplicate_targets(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame | None:
    """The same target twice: which row did the user mean? Both rows are in error."""
    target = sheet.column_for(RESOURCE_ID[sheet.kind])
    customer = sheet.column_for("customer_id")
    if not (target and customer):  # a sheet naming rows by name: its matched sheet is checked
        return None
    # Only rows that share a resource id can share a target, and on a subscriptions sheet there
    # are few or none. Rows without both ids are not targets (their own rule reports them).
    sharing = _sharing_an_id(text, target.name)
    if sharing is None:
        return None
    key = [pl.col(c.name).str.to_lowercase().str.strip_chars("{}") for c in (customer, target)]
    what = "subscription"
    if sheet.kind == "orders":
        number = sheet.column_for("lineItems.lineItemNumber")
        line_sub = sheet.column_for("lineItems.subscriptionId")
        line = [as_integer(pl.col(number.name)).cast(pl.String)] if number else []
        line += [pl.col(line_sub.name).str.to_lowercase().str.strip_chars("{}")] if line_sub else []
        key.append(pl.coalesce(line).fill_null("") if line else pl.lit(""))
        what = "order line item" if line else "order"
    # A 64-bit hash of the key finds candidates fast; the exact comparison then runs on the few
    # candidate rows only.
    hashed = functools.reduce(operator.xor, [k.hash(seed) for seed, k in enumerate(key)])
    candidates = text.filter(sharing).filter(
        hashed.is_duplicated() & key[0].is_not_null() & key[1].is_not_null()
    )
    found = candidates.filter(pl.struct(key).is_duplicated())
    said = '{}: "{}" is on rows {}; keep one row per {}'
    if is_reconciliation([c.header for c in sheet.columns]):
        # a reconciliation file has a charge line per charge: lines of one subscription that
        # ask the same (or nothing) are one change; only lines asking differently conflict
        asks = [c.name for c in sheet.columns if c.field and c.field.changes]
        differ = pl.struct(asks).n_unique().over(key) > 1 if asks else pl.lit(False)
        found = found.filter(differ)
        said = (
            '{}: "{}" is on rows {}, charge lines of one subscription that ask different '
            "changes; give each of them the same value, or keep one row per {}"
        )
    elif sheet.column_for("match:by") is not None:  # rows matched by name (`matched`)
        said = '{}: "{}" was found for rows {} by their names; keep one row per {}'
    message = pl.format(
        said, pl.lit(target.header), pl.col(target.name), _rows_list(key), pl.lit(what)
    )
    return found.select(_issue(target, "duplicate.target", message))


def _sharing_an_id(text: pl.DataFrame, name: str) -> pl.Series | None:
    """Which rows hold an id (ignoring case and braces) that another row holds too; None when
    no row does.

    Rows are compared by 64-bit hashes, sorted (a hash table of a million rows costs far more).
    Lower-casing every id costs less than a scan asking whether any needs it.
    """
    key = pl.col(name).str.to_lowercase().str.strip_chars("{}")
    hashes = text.select(key.hash()).to_series()
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    return hashes.is_in(repeated.implode()) if repeated.len() else None


def _order_disagreements(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame:
    """Rows of one order build one body: they must agree on every order-level value."""
    customer, order = sheet.column_for("customer_id"), sheet.column_for("order_id")
    assert customer and order
    group = [pl.col(customer.name).str.to_lowercase(), pl.col(order.name)]
    parts = []
    for c in sheet.columns:
        if not (c.field and c.field.level == "order" and c.field.role in ("settable", "meta")):
            continue
        value = as_enum_key(pl.col(c.name)) if c.field.type == "enum" else pl.col(c.name)
        stated = pl.col(c.name).is_not_null()
        rows = pl.when(stated).then(pl.col(ROW).cast(pl.String)).str.join(", ").over(group)
        found = text.filter(stated & (value.drop_nulls().n_unique().over(group) > 1))
        message = pl.format(
            '{}: "{}" differs from other rows of order {} (rows {}); an order has one {}',
            pl.lit(c.header),
            pl.col(c.name),
            pl.col(order.name),
            rows,
            pl.lit(c.header),
        )
        parts.append(found.select(_issue(c, "order.rows_disagree", message)))
    return pl.concat(parts, how="vertical") if parts else None


def _renewal_without_auto_renew(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame | None:
    """Next-term instructions only exist while auto-renew is on (Partner Center's rule)."""
    auto = sheet.column_for("autoRenewEnabled")
    plans = [
        c
        for c in sheet.columns
        if c.field and c.field.name.startswith("scheduledNextTermInstructions.")
    ]
    if sheet.kind != "subscriptions" or auto is None or not plans:
        return None
    off = pl.col(auto.name).str.to_lowercase().is_in(("false", "no", "0", "n"))
    first = pl.coalesce(
        [pl.when(pl.col(c.name).is_not_null()).then(pl.lit(c.header)) for c in plans]
    )
    found = text.filter(off & first.is_not_null())
    message = pl.format(
        '{}: renewal instructions need auto-renew on, but {} is "{}" on this row',
        first,
        pl.lit(auto.header),
        pl.col(auto.name),
    )
    return found.select(_issue(auto, "renewal.needs_auto_renew", message, header=first))


def _total_and_change(sheet: Sheet, text: pl.DataFrame) -> pl.DataFrame | None:
    """A new total and a seat change on one row: which did the user mean?"""
    change = next((c for c in sheet.columns if c.field and c.field.role == "delta"), None)
    total = sheet.column_for(change.field.of) if change and change.field else None
    if change is None or total is None:
        return None
    asks = (as_integer(pl.col(change.name)) != 0).fill_null(True)  # a change of 0 is no change
    found = text.filter(pl.col(change.name).is_not_null() & asks & pl.col(total.name).is_not_null())
    message = pl.format(
        '{}: "{}" and {} "{}" are both filled: write the new total in {} or the seats to add or '
        "remove in {}, not both",
        pl.lit(change.header),
        pl.col(change.name),
        pl.lit(total.header),
        pl.col(total.name),
        pl.lit(total.header),
        pl.lit(change.header),
    )
    return found.select(_issue(change, "seats.total_and_change", message))


def _invisible_in_ids(sheet: Sheet, text: pl.DataFrame) -> list[pl.DataFrame]:
    """An id holding a character nobody sees: shown as U+200B so the user can find it."""
    found = []
    for c in sheet.columns:
        if not (c.field and c.field.type in ("guid", "order_id")):
            continue
        rows = text.filter(has_invisible(pl.col(c.name)))
        if rows.is_empty():
            continue
        shown = pl.col(c.name)
        for char in INVISIBLE:
            shown = shown.str.replace_all(char, f"<U+{ord(char):04X}>", literal=True)
        message = pl.format(
            '{}: "{}" holds an invisible character ({}): delete it, or type the ID again',
            pl.lit(c.header),
            shown,
            shown.str.extract_all(r"U\+[0-9A-F]{4}")
            .list.unique(maintain_order=True)
            .list.join(", "),
        )
        found.append(rows.select(_issue(c, "id.invisible_character", message)))
    return found
