"""undo: the sheet written after a run puts back what was read before each change."""

from __future__ import annotations

import polars as pl
from conftest import FAST, HEAD, current, ids, server, true_up

from bulkpatch.commands.apply import apply_file


def test_undo_sheet_applied_afterwards_restores_what_was_read(tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    pairs = [(c, s) for i, c in enumerate(ids(2, "customer")) for s in ids(4, f"sub-{i}")]
    fields = ("quantity", "autoRenewEnabled", "friendlyName", "status")
    with server(path) as (url, _):
        before = {s: {f: current(url, c, s)[f] for f in fields} for c, s in pairs}
        first = apply_file(path, target=url, out=tmp_path / "run", settings=FAST)
        changed = {s: {f: current(url, c, s)[f] for f in fields} for c, s in pairs}
        undo = apply_file(
            tmp_path / "run" / "undo.csv", target=url, out=tmp_path / "undo", settings=FAST
        )
        after = {s: {f: current(url, c, s)[f] for f in fields} for c, s in pairs}
    assert first.counts()["ok"] == 8 and changed != before
    assert undo.counts()["ok"] == 8
    assert after == before


def test_an_order_line_cancel_is_final_and_only_the_line_asked_is_cancelled(tmp_path):
    sheet = tmp_path / "orders.csv"
    sheet.write_text(
        "Customer ID,Order ID,Line item,Status\n"
        f"{ids(1, 'customer')[0]},ORD-1,0,\n{ids(1, 'customer')[0]},ORD-1,1,cancelled\n"
    )
    customer = ids(1, "customer")[0]
    with server(sheet) as (url, sandbox):
        before = sandbox.store.get("orders", customer, "ORD-1", 0)["lineItems"]
        run = apply_file(sheet, target=url, out=tmp_path / "run", settings=FAST)
        after = sandbox.store.get("orders", customer, "ORD-1", 0)["lineItems"]
    assert run.counts()["ok"] == 2
    assert [i["quantity"] for i in after] == [before[0]["quantity"], 0]  # line 0 untouched
    undo = (tmp_path / "run" / "undo-orders.csv").read_text(encoding="utf-8-sig").splitlines()
    assert undo == [
        "Customer ID,Order ID,Notes",
        f"{customer},ORD-1,line item 1 cannot be undone (a cancellation is final)",
    ]


def test_an_undo_sheet_keeps_a_column_first_seen_after_a_hundred_rows(tmp_path):
    customer, subs = ids(1, "customer")[0], ids(102, "sub-0")
    rows = [",".join(HEAD)] + [f"{customer},{s},20,,," for s in subs[:-1]]
    rows.append(f"{customer},{subs[-1]},,,Renamed last,")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n")
    with server(path) as (url, _):
        was = current(url, customer, subs[-1])["friendlyName"]
        run = apply_file(path, target=url, out=tmp_path / "run", settings=FAST)
        named = current(url, customer, subs[-1])["friendlyName"]
    undo = pl.read_csv(tmp_path / "run" / "undo.csv", infer_schema=False)
    assert run.counts()["ok"] == 102 and named == "Renamed last"
    assert undo.height == 102
    assert undo.filter(pl.col("Subscription ID") == subs[-1])["friendlyName"].to_list() == [was]
