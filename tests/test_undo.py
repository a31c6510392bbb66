"""undo: the sheet written after a run puts back what was read before each change."""

from __future__ import annotations

from conftest import FAST, current, ids, server, true_up

from bulkpatch.commands import apply_file


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
