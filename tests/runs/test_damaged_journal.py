"""A damaged journal is named, never trusted: a line cut short by a crash, bytes changed in the
middle, text that is not UTF-8 or JSON that is not a record is reported by line number (in what
the resume prints, in --json, summary.json and the Summary sheet); every change Partner Center
shows applied stays in the results and in undo.csv, none is applied twice, and undo.csv never
has fewer rows than the one the resume replaces."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from conftest import FAST, current, ids, results, server, stats, true_up

from bulkpatch.commands.apply import apply_file


def lines(folder: Path) -> list[bytes]:
    """The journal's lines as bytes (its end of line taken off)."""
    return (folder / "journal.jsonl").read_bytes().split(b"\n")[:-1]


def records(folder: Path) -> list[tuple[int, dict]]:
    """Each line number (from 1) and its record, for a journal read whole."""
    return [(n, json.loads(raw)) for n, raw in enumerate(lines(folder), start=1)]


def line_of(folder: Path, event: str, sub: str) -> int:
    """The number of the line of `event` (intent, result) of the change of subscription `sub`."""
    return next(
        n for n, e in records(folder) if e["event"] == event and e["change"].endswith("/" + sub)
    )


def rewrite(folder: Path, damaged: dict[int, bytes | None], cut: int = 0) -> None:
    """The journal with some lines replaced (None: dropped) and its last `cut` bytes gone."""
    kept = [damaged.get(n, raw) for n, raw in enumerate(lines(folder), start=1)]
    data = b"".join(raw + b"\n" for raw in kept if raw is not None)
    (folder / "journal.jsonl").write_bytes(data[: len(data) - cut] if cut else data)


def undo_rows(folder: Path) -> dict[str, dict[str, str]]:
    """undo.csv by subscription: the values it puts back (its Notes left out)."""
    table = pl.read_csv(folder / "undo.csv", infer_schema=False).fill_null("")
    return {
        r["Subscription ID"]: {k: v for k, v in r.items() if k != "Notes" and v}
        for r in table.to_dicts()
    }


def ok_subscriptions(folder: Path) -> list[str]:
    table = results(folder).filter(pl.col("outcome") == "ok")
    return table.get_column("Subscription ID").to_list()


def assert_whole(folder: Path, served: dict, undo_before: dict[str, dict[str, str]]) -> None:
    """Every change the sandbox applied is `ok` in the results and in undo.csv, once; none was
    applied twice; undo.csv holds every row it held before the resume, as it was."""
    applied = served["applied_per_resource"]
    assert set(applied.values()) == {1}
    assert sorted(ok_subscriptions(folder)) == sorted(applied)
    after = undo_rows(folder)
    assert sorted(after) == sorted(applied)
    assert {s: after[s] for s in undo_before} == undo_before


def test_a_last_line_cut_short_is_named_and_the_resume_keeps_every_change(cli, tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    folder = tmp_path / "run"
    with server(path) as (url, _):
        first = cli("apply", path, "--target", url, "--out", folder, "--quiet")
        undo_before = undo_rows(folder)
        last = len(lines(folder))
        whole = lines(folder)[-1]
        rewrite(folder, {}, cut=len(whole) // 2 + 1)  # a crash mid-write: no end of line
        fragment = (folder / "journal.jsonl").read_bytes().split(b"\n")[-1]
        resumed = cli("apply", "--resume", folder, "--quiet")
        again = cli("apply", "--resume", folder, "--quiet", "--json")
        served = stats(url)
    assert first.returncode == 0, first.stderr
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        f"Note: journal.jsonl has 1 line that cannot be read (line {last}: cut short (no end "
        "of line: the run stopped while writing it))"
    ) in resumed.stdout
    assert "this resume's lines start on a new line" in resumed.stdout
    assert_whole(folder, served, undo_before)
    # The broken bytes stay, on their own line: nothing was glued onto them.
    after = lines(folder)
    assert after[last - 1] == fragment and fragment == whole[: len(fragment)]
    assert all(json.loads(raw) for raw in after[last:])
    # A second resume still names the line, and every figure says it.
    summary = json.loads(again.stdout)
    assert again.returncode == 0, again.stderr
    assert [d["line"] for d in summary["journal"]["damaged_lines"]] == [last]
    assert summary["journal"]["damaged_lines"][0]["problem"].startswith("not valid JSON")
    assert any(f"line {last}: not valid JSON" in n for n in summary["notes"])
    saved = json.loads((folder / "summary.json").read_text())
    assert saved["journal"] == summary["journal"]
    sheet = pl.read_excel(folder / "results.xlsx", sheet_name="Summary", has_header=False)
    cells = {str(v) for row in sheet.iter_rows() for v in row}
    assert {"Journal lines that cannot be read", "lines that cannot be read"} <= cells
    assert served["applied"] == 8


def test_lines_damaged_in_the_middle_are_named_and_every_applied_change_stays(tmp_path):
    path = true_up(tmp_path, customers=2, per=4)
    subs = [s for i in range(2) for s in ids(4, f"sub-{i}")]
    folder = tmp_path / "run"
    with server(path) as (url, _):
        apply_file(path, target=url, out=folder, settings=FAST)
        undo_before = undo_rows(folder)
        both = [line_of(folder, "intent", subs[0]), line_of(folder, "result", subs[0])]
        bytes_changed = line_of(folder, "intent", subs[1])
        not_utf8 = line_of(folder, "result", subs[2])
        dropped = line_of(folder, "result", subs[3])
        raw = lines(folder)
        rewrite(
            folder,
            {
                both[0]: raw[both[0] - 1][:30] + b"#####" + raw[both[0] - 1][90:],
                both[1]: b"\x00" * 40,
                bytes_changed: raw[bytes_changed - 1].replace(b'"before"', b'"bef\x01re"'),
                not_utf8: raw[not_utf8 - 1].replace(b'"ok"', b'"\xff\xfe"'),
                dropped: None,  # an answer's line lost: its intent tells what may have landed
            },
        )
        # the line numbers as the rewritten journal counts them (one line fewer after `dropped`)
        both, bytes_changed, not_utf8 = (
            [n - (n > dropped) for n in both],
            *(n - (n > dropped) for n in (bytes_changed, not_utf8)),
        )
        damaged = sorted([*both, bytes_changed, not_utf8])
        resumed = apply_file(resume_dir=folder, settings=FAST)
        served = stats(url)
    told = resumed.summary()["journal"]
    assert [d["line"] for d in told["damaged_lines"]] == damaged
    problems = {d["line"]: d["problem"] for d in told["damaged_lines"]}
    assert problems[both[1]].startswith("only NUL bytes")
    assert problems[not_utf8].startswith("not UTF-8 text")
    assert problems[bytes_changed].startswith("not valid JSON")
    assert told["kept_from_earlier_undo"] == 1  # the change whose two lines are both damaged
    note = next(n for n in resumed.notes if n.startswith("journal.jsonl has 4 lines that "))
    assert all(f"line {n}:" in note for n in damaged)
    assert resumed.counts()["ok"] == 8
    assert_whole(folder, served, undo_before)
    row = results(folder).filter(pl.col("Subscription ID") == subs[0]).row(0, named=True)
    assert (
        "cannot be read: its values before come from the earlier undo.csv" in (row["error_message"])
    )
    assert row["Quantity before"] == undo_before[subs[0]]["quantity"]


def test_json_that_is_not_a_record_is_named_and_nothing_crashes(cli, tmp_path):
    path = true_up(tmp_path, customers=1, per=4)
    subs = ids(4, "sub-0")
    folder = tmp_path / "run"
    with server(path) as (url, _):
        apply_file(path, target=url, out=folder, settings=FAST)
        undo_before = undo_rows(folder)
        intent, result = line_of(folder, "intent", subs[1]), line_of(folder, "result", subs[1])
        other = line_of(folder, "result", subs[2])
        raw = lines(folder)
        shaped = json.loads(raw[other - 1])
        rewrite(
            folder,
            {
                intent: json.dumps({**json.loads(raw[intent - 1]), "before": "6"}).encode(),
                result: b"[1, 2]",
                other: json.dumps({**shaped, "diffs": {"quantity": 5}}).encode(),
            },
        )
        resumed = cli("apply", "--resume", folder, "--quiet", "--json")
        served = stats(url)
    assert resumed.returncode == 0, resumed.stderr
    told = json.loads(resumed.stdout)["journal"]["damaged_lines"]
    assert [(d["line"], d["problem"]) for d in told] == sorted(
        [
            (intent, "JSON, but not a journal record (its before cannot be read)"),
            (result, "JSON, but not a journal record (a list, not an object)"),
            (other, "JSON, but not a journal record (its diffs cannot be read)"),
        ]
    )
    assert "Traceback" not in resumed.stderr
    assert_whole(folder, served, undo_before)


def test_a_seat_change_whose_record_is_lost_is_never_added_twice(tmp_path):
    customer, subs = ids(1, "customer")[0], ids(2, "sub-0")
    sheet = tmp_path / "seats.csv"
    sheet.write_text(
        "Customer ID,Subscription ID,Seat change\n" + "".join(f"{customer},{s},+2\n" for s in subs)
    )
    folder = tmp_path / "run"
    with server(sheet) as (url, _):
        seats = {s: current(url, customer, s)["quantity"] for s in subs}
        apply_file(sheet, target=url, out=folder, settings=FAST)
        damaged = [line_of(folder, e, subs[0]) for e in ("intent", "result")]
        rewrite(folder, dict.fromkeys(damaged, b'{"at": "2026-'))
        backup = (folder / "undo.csv").read_bytes()
        (folder / "undo.csv").unlink()  # as a run killed before writing it leaves the folder
        held = apply_file(resume_dir=folder, settings=FAST)
        held_row = results(folder).filter(pl.col("Subscription ID") == subs[0]).row(0, named=True)
        (folder / "undo.csv").write_bytes(backup)  # the same folder with undo.csv from a backup
        kept = apply_file(resume_dir=folder, settings=FAST)
        after = {s: current(url, customer, s)["quantity"] for s in subs}
        served = stats(url)
    # Not sent while nothing tells whether its seats were added; then its total comes from the
    # seats undo.csv read before it: it is there already, and nothing is added twice.
    assert held_row["outcome"] == "failed"
    assert held_row["error_message"].startswith(
        f"not sent: journal.jsonl lines {damaged[0]}, {damaged[1]} cannot be read and may have "
        "recorded this seat change, so whether its seats were already added is not known"
    )
    assert held.summary()["journal"]["seat_changes_not_sent"] == 1
    assert any(n.startswith("1 seat change not sent") for n in held.notes)
    assert after == {s: n + 2 for s, n in seats.items()}
    assert served["applied"] == 2 and set(served["applied_per_resource"].values()) == {1}
    assert kept.counts()["ok"] == 2 and kept.summary()["journal"]["kept_from_earlier_undo"] == 1
    undo = undo_rows(folder)  # the seats before the change: applying it takes the +2 off
    assert {s: r["quantity"] for s, r in undo.items()} == {s: str(n) for s, n in seats.items()}


def test_a_change_already_held_whose_record_is_lost_says_it_may_be_this_runs(tmp_path):
    path = true_up(tmp_path, customers=1, per=2)
    sub = ids(2, "sub-0")[0]
    folder = tmp_path / "run"
    with server(path) as (url, _):
        apply_file(path, target=url, out=folder, settings=FAST)
        damaged = [line_of(folder, e, sub) for e in ("intent", "result")]
        rewrite(folder, dict.fromkeys(damaged, b"\xff garbled"))
        (folder / "undo.csv").write_bytes(b"\x00\x01\x02 not a sheet")
        resumed = apply_file(resume_dir=folder, settings=FAST)
    row = results(folder).filter(pl.col("Subscription ID") == sub).row(0, named=True)
    assert row["outcome"] == "no_change"
    assert row["error_message"] == (
        f"Partner Center already holds it, but journal.jsonl lines {damaged[0]}, {damaged[1]} "
        "(which cannot be read) may have been its record: whether this run applied it is not "
        "known, and undo.csv has no row for it"
    )
    assert resumed.summary()["journal"]["not_known_if_applied"] == 1
    assert (folder / "undo-unread.csv").read_bytes() == b"\x00\x01\x02 not a sheet"
    assert any("The earlier undo.csv (" in n and "undo-unread.csv" in n for n in resumed.notes)


def test_an_undo_row_the_readable_journal_cannot_rebuild_is_kept(tmp_path):
    path = true_up(tmp_path, customers=1, per=2)
    sub = ids(2, "sub-0")[0]
    folder = tmp_path / "run"
    with server(path) as (url, _):
        apply_file(path, target=url, out=folder, settings=FAST)
        undo_before = undo_rows(folder)
        n = line_of(folder, "result", sub)
        said = {**json.loads(lines(folder)[n - 1]), "outcome": "failed", "before": {}}
        rewrite(folder, {n: json.dumps(said).encode()})  # a whole record, saying otherwise
        resumed = apply_file(resume_dir=folder, settings=FAST)
    assert undo_rows(folder) == undo_before
    row = results(folder).filter(pl.col("Subscription ID") == sub).row(0, named=True)
    assert row["error_message"].endswith(
        "an earlier attempt of this run applied it: undo.csv keeps its rows of it from then"
    )
    assert resumed.summary()["journal"]["kept_from_earlier_undo"] == 1
    assert any(
        n.startswith("The earlier undo sheet's rows of 1 change are kept") for n in resumed.notes
    )


def test_a_kept_undo_row_gives_back_formula_like_text_exactly(tmp_path):
    # sub-0's first subscription is renamed by the true-up (kind 2 is the rename: its third)
    path = true_up(tmp_path, customers=1, per=3)
    customer, sub = ids(1, "customer")[0], ids(3, "sub-0")[2]
    folder = tmp_path / "run"
    with server(path) as (url, sandbox):
        body = sandbox.store.get("subscriptions", customer, sub, 0)
        body.update(friendlyName="=SUM(A1)")  # Partner Center holds formula-like text
        sandbox.store.put_many("subscriptions", [(customer, body)])
        apply_file(path, target=url, out=folder, settings=FAST)
        n = line_of(folder, "result", sub)
        said = {**json.loads(lines(folder)[n - 1]), "outcome": "failed", "before": {}}
        rewrite(folder, {n: json.dumps(said).encode()})  # its record lost: the row is kept
        resumed = apply_file(resume_dir=folder, settings=FAST)
        undone = apply_file(folder / "undo.csv", target=url, out=tmp_path / "undo", settings=FAST)
        held = current(url, customer, sub)
        header = (folder / "undo.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert resumed.summary()["journal"]["kept_from_earlier_undo"] == 1
    assert header.count("Quoted by bulkpatch") == 1  # one record, the sheet's own columns
    assert undone.counts()["ok"] >= 1
    assert held["friendlyName"] == "=SUM(A1)"  # not "'=SUM(A1)": the quote is bulkpatch's
