"""What bulkpatch writes, it reads back as written: the `'` a CSV puts before formula-like text
comes off when bulkpatch reads its own file (named by the file's own record, so a copy in
Downloads or a file Excel saved again reads the same), never off a quote the user typed. Every
settable text field, with each character a spreadsheet runs (= + - @ tab CR), goes through
apply, undo and to-fix against the sandbox, in-process and as a real server, and the sandbox
holds exactly what each file meant."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from conftest import FAST, ids, server

from bulkpatch.catalog.fields import FIELDS
from bulkpatch.commands.api import check_file, plan_file
from bulkpatch.commands.apply import apply_file
from bulkpatch.export.read import export_file
from bulkpatch.load.quoting import EXACT, QUOTED
from bulkpatch.load.reader import load
from bulkpatch.load.sheet import BLANKS
from bulkpatch.network.target import sandbox_state
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec
from bulkpatch.ui.jobs import read_report

# Every settable text field of a subscription (friendly name, the next term's product ids).
# Every settable text field but the renewal product's ids (product, SKU, availability): a
# scheduled product must be one the subscription's transition eligibilities list ("Schedule
# changes for a new commerce subscription"; plan/rules.py and the sandbox each hold it), and
# those ids are Microsoft's catalog ids, none of which starts as a formula does.
TEXT = [
    f
    for f in FIELDS["subscriptions"]
    if f.role == "settable"
    and f.type == "string"
    and not f.name.startswith("scheduledNextTermInstructions.product.")
]
LEADS = ["=", "+", "-", "@", "\t", "\r"]  # how text a spreadsheet runs as a formula starts
TRIMMED = {"\t", "\r"}  # a sheet's cell loses blanks around it: only Partner Center keeps them
CUSTOMER = ids(1, "own-files-customer")[0]
SUBS = ids(len(LEADS), "own-files-subscription")
KEYS = ["Customer ID", "Subscription ID"]


def header(f) -> str:
    """The header a user writes for the field: `friendly name`, `next term product id`."""
    return f.aliases[0]


def value(body: dict[str, Any], name: str) -> Any:
    """A dotted field of a subscription body (None where a level is missing)."""
    for part in name.split("."):
        body = (body or {}).get(part)
    return body


def texts(body: dict[str, Any]) -> dict[str, Any]:
    return {f.name: value(body, f.name) for f in TEXT}


def asked(word: str) -> dict[str, dict[str, str]]:
    """Per subscription, the text each field's cell holds: `=before friendlyName`."""
    return {
        s: {f.name: f"{lead}{word} {f.name}" for f in TEXT}
        for s, lead in zip(SUBS, LEADS, strict=True)
    }


def meant(cells: dict[str, str]) -> dict[str, str]:
    """What a user's cells mean: blanks around a value are not part of it."""
    return {name: text.strip(BLANKS) for name, text in cells.items()}


def write_sheet(path: Path, head: list[str], rows: list[list[str]]) -> Path:
    """A user's CSV, as a spreadsheet saves it (a cell holding CR or tab is quoted)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([head, *rows])
    return path


def setting(path: Path, cells: dict[str, dict[str, str]], current: bool = False) -> Path:
    """A sheet setting each field of each subscription to `cells`; with `current`, the cells
    are also what the user believes Partner Center holds (`Current ...`, before each)."""
    head = [*KEYS]
    for f in TEXT:
        head += [f"Current {header(f)}", header(f)] if current else [header(f)]
    rows = []
    for sub, values in cells.items():
        row = [CUSTOMER, sub]
        for f in TEXT:
            row += [values[f.name], values[f.name]] if current else [values[f.name]]
        rows.append(row)
    return write_sheet(path, head, rows)


class Place:
    """A sandbox the runs send to (`target`), whose state the test reads and sets directly."""

    def __init__(self, target: str, sandbox: Sandbox) -> None:
        self.target, self.sandbox = target, sandbox

    def read(self, sub: str) -> dict[str, Any]:
        return self.sandbox.store.get("subscriptions", CUSTOMER, sub, 0)

    def state(self) -> dict[str, dict[str, Any]]:
        return {s: texts(self.read(s)) for s in SUBS}

    def hold(self, sub: str, cells: dict[str, str]) -> None:
        """Partner Center holds `cells` (set by another tool: a sheet cannot send a tab)."""
        body = self.read(sub)
        for name, text in cells.items():
            *path, last = name.split(".")
            level = body
            for part in path:
                if not isinstance(level.get(part), dict):
                    level[part] = {}
                level = level[part]
            level[last] = text
        self.sandbox.store.put_many("subscriptions", [(CUSTOMER, body)])


@pytest.fixture(params=["in-process", "uvicorn"])
def place(request, tmp_path) -> Callable[[], Iterator[Place]]:
    """The built-in sandbox (in-process, its state in this test's cache folder) or a real
    uvicorn sandbox on 127.0.0.1, holding the test's subscriptions."""
    seed = write_sheet(tmp_path / "seed.csv", KEYS, [[CUSTOMER, s] for s in SUBS])

    @contextmanager
    def start() -> Iterator[Place]:
        if request.param == "uvicorn":
            with server(seed) as (url, sandbox):
                yield Place(url, sandbox)
            return
        config = SandboxConfig(db=str(sandbox_state()), seed=SeedSpec(sheets=[seed]))
        sandbox_state().parent.mkdir(parents=True, exist_ok=True)
        yield Place("sandbox", Sandbox(config, reseed=False))

    return start


def downloaded(path: Path, tmp_path: Path) -> Path:
    """The file as a user who downloaded it has it: a copy, away from its run folder."""
    folder = tmp_path / "Downloads"
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(path, folder / path.name))


def test_undo_puts_back_every_text_field_exactly_as_read_each_formula_character(
    place, tmp_path, cli
):
    before, after = asked("before"), asked("after")
    with place() as at:
        # Partner Center holds formula-like text: set by a sheet (= + - @), or by another tool
        # (a leading tab or CR, which a sheet's cell cannot carry: it is trimmed)
        sheet = {s: c for s, c in before.items() if c["friendlyName"][0] not in TRIMMED}
        first = apply_file(
            setting(tmp_path / "before.csv", sheet),
            target=at.target,
            out=tmp_path / "first",
            settings=FAST,
        )
        for sub in set(before) - set(sheet):
            at.hold(sub, before[sub])
        held = at.state()
        second = apply_file(
            setting(tmp_path / "after.csv", after),
            target=at.target,
            out=tmp_path / "second",
            settings=FAST,
        )
        changed = at.state()
        undo = downloaded(tmp_path / "second" / "undo.csv", tmp_path)
        done = cli("apply", undo, "--target", at.target, "--out", tmp_path / "undo")
        restored = at.state()
    assert first.counts()["ok"] == len(sheet) and held == before  # exactly as asked or held
    assert second.counts()["ok"] == len(SUBS)
    assert changed == {s: meant(c) for s, c in after.items()}
    assert done.returncode == 0, done.stderr
    assert restored == held  # the value read before, `=` and tab and CR included
    raw = undo.read_text(encoding="utf-8-sig")
    assert "'=before friendlyName" in raw  # still neutralised for a spreadsheet
    assert raw.splitlines()[0].endswith(f",{EXACT}")


def test_to_fix_sends_what_the_users_cells_held(place, tmp_path):
    old, new = asked("old"), asked("new")
    head = [*KEYS]
    for f in TEXT:
        head += [f"Current {header(f)}", header(f)]
    rows = [
        [CUSTOMER, s, *[cell for f in TEXT for cell in (old[s][f.name], new[s][f.name])]]
        for s in SUBS
    ]
    sheet = write_sheet(tmp_path / "rename.csv", head, rows)
    with place() as at:
        first = apply_file(sheet, target=at.target, out=tmp_path / "first", settings=FAST)
        # Partner Center comes to hold what the sheet believed: the rows can go now
        apply_file(
            setting(tmp_path / "catch-up.csv", old),
            target=at.target,
            out=tmp_path / "catch-up",
            settings=FAST,
        )
        fix = downloaded(tmp_path / "first" / "to-fix.csv", tmp_path)
        again = apply_file(fix, target=at.target, out=tmp_path / "again", settings=FAST)
        sent = at.state()
    assert first.counts()["conflict"] == len(SUBS)  # nothing matched what the sheet believed
    assert again.counts()["ok"] == len(SUBS)  # its `Current ...` cells read as the user's
    assert sent == {s: meant(c) for s, c in new.items()}  # as the user's own sheet sends them


def test_results_plan_and_export_read_back_as_the_values_they_hold(place, tmp_path):
    cells = {s: c for s, c in asked("name").items() if c["friendlyName"][0] not in TRIMMED}
    with place() as at:
        plan = plan_file(
            setting(tmp_path / "names.csv", cells),
            target=at.target,
            out=tmp_path / "plan",
            settings=FAST,
        )
        run = apply_file(
            plan.folder / "plan.csv", target=at.target, out=tmp_path / "run", settings=FAST
        )
        held = at.state()
        results = apply_file(
            downloaded(tmp_path / "run" / "results.csv", tmp_path),
            target=at.target,
            out=tmp_path / "results",
            settings=FAST,
        )
        exports = {
            suffix: export_file(
                customers=[CUSTOMER],
                target=at.target,
                out=tmp_path / f"export{suffix}",
                settings=FAST,
            )
            for suffix in (".csv", ".xlsx")
        }
        unchanged = {
            suffix: apply_file(
                e.output, target=at.target, out=tmp_path / f"x{suffix}", settings=FAST
            )
            for suffix, e in exports.items()
        }
    assert run.counts()["ok"] == len(cells)  # plan.csv, applied as a sheet, sends its cells
    assert {s: held[s] for s in cells} == cells
    assert results.counts()["no_change"] == len(cells)  # results.csv holds what was sent
    for suffix, e in exports.items():
        sheet = load(e.output)[0]
        name = sheet.column_for("friendlyName").name
        shown = dict(sheet.frame.select(sheet.column_for("subscription_id").name, name).rows())
        assert {s: shown[s] for s in SUBS} == {s: held[s]["friendlyName"] for s in SUBS}
        outcomes = {k for k, n in unchanged[suffix].counts().items() if n}
        assert outcomes == {"no_change"}  # read as written: nothing to send
    ws = openpyxl.load_workbook(exports[".xlsx"].output)["Subscriptions"]
    column = next(c.column for c in ws[1] if c.value == "Friendly name")
    quoted = [ws.cell(r, column) for r in range(2, ws.max_row + 1)]
    formula = [c for c in quoted if c.value.startswith("=")]
    assert formula and all(c.data_type == "s" and c.quotePrefix for c in formula)


def test_a_workbooks_to_fix_sends_what_the_users_cells_held(place, tmp_path, write_xlsx):
    old, new = asked("old"), asked("new")
    head = [*KEYS, "Current friendly name", "Friendly name"]
    rows = [[CUSTOMER, s, old[s]["friendlyName"], new[s]["friendlyName"]] for s in SUBS]
    book = write_xlsx({"Subscriptions": [head, *rows]})
    catch_up = write_sheet(
        tmp_path / "catch-up.csv",
        [*KEYS, "Friendly name"],
        [[CUSTOMER, s, old[s]["friendlyName"]] for s in SUBS],
    )
    with place() as at:
        first = apply_file(book, target=at.target, out=tmp_path / "first", settings=FAST)
        apply_file(catch_up, target=at.target, out=tmp_path / "catch-up", settings=FAST)
        fix = tmp_path / "first" / "to-fix.xlsx"
        again = apply_file(fix, target=at.target, out=tmp_path / "again", settings=FAST)
        sent = at.state()
    assert first.counts()["conflict"] == len(SUBS)
    ws = openpyxl.load_workbook(fix)["Subscriptions"]
    assert ws.cell(2, 4).value == new[SUBS[0]]["friendlyName"] and ws.cell(2, 4).quotePrefix
    assert again.counts()["ok"] == len(SUBS)
    assert {s: sent[s]["friendlyName"] for s in SUBS} == {
        s: new[s]["friendlyName"].strip(BLANKS) for s in SUBS
    }


@pytest.mark.parametrize("excel", ["keeps the quote as text", "takes the quote as its prefix"])
def test_undo_reads_the_same_after_excel_saves_it_again(tmp_path, excel):
    """Excel (Windows, cp1252, CRLF) opens the CSV and saves it: either way the record says
    which quotes are bulkpatch's."""
    before = asked("before")
    seed = write_sheet(tmp_path / "seed.csv", KEYS, [[CUSTOMER, s] for s in SUBS])
    with server(seed) as (url, sandbox):
        at = Place(url, sandbox)
        for sub, cells in before.items():
            at.hold(sub, cells)
        apply_file(
            setting(tmp_path / "after.csv", asked("after")),
            target=url,
            out=tmp_path / "run",
            settings=FAST,
        )
    undo = tmp_path / "run" / "undo.csv"
    rows = list(csv.reader(undo.open(encoding="utf-8-sig", newline="")))
    if excel == "takes the quote as its prefix":  # and saves the bare text
        rows = [[c[1:] if c[:1] == "'" and c[1:2] in LEADS else c for c in r] for r in rows]
    saved = tmp_path / "Downloads" / "undo.csv"
    saved.parent.mkdir()
    with saved.open("w", newline="", encoding="cp1252") as out:
        csv.writer(out, lineterminator="\r\n").writerows(rows)
    sheet = load(saved)[0]
    names = {c.field.name: c.name for c in sheet.columns if c.field}
    read = {
        r[names["subscription_id"]]: {f.name: r[names[f.name]] for f in TEXT}
        for r in sheet.frame.to_dicts()
    }
    assert read == before and sheet.issues.is_empty()


def test_a_quote_the_user_typed_stays(place, tmp_path):
    typed = {s: {f.name: f"'={f.name}" for f in TEXT} for s in SUBS[:1]}
    with place() as at:
        run = apply_file(
            setting(tmp_path / "typed.csv", typed),
            target=at.target,
            out=tmp_path / "run",
            settings=FAST,
        )
        held = at.state()
        # the results hold the user's quote as typed, with no record: it stays again
        again = apply_file(
            tmp_path / "run" / "results.csv",
            target=at.target,
            out=tmp_path / "again",
            settings=FAST,
        )
    assert run.counts()["ok"] == 1 and held[SUBS[0]] == typed[SUBS[0]]
    assert again.counts()["no_change"] == 1
    assert QUOTED not in (tmp_path / "run" / "results.csv").read_text(encoding="utf-8-sig")


def test_a_users_row_in_a_file_with_a_record_keeps_its_quote(tmp_path):
    sheet = write_sheet(
        tmp_path / "to-fix.csv",
        [*KEYS, "Friendly name", QUOTED],
        [[CUSTOMER, SUBS[0], "'=ours", '["Friendly name"]'], [CUSTOMER, SUBS[1], "'=typed", ""]],
    )
    loaded = load(sheet)[0]
    name = loaded.column_for("friendlyName").name
    assert loaded.frame.get_column(name).to_list() == ["=ours", "'=typed"]
    assert [c.header for c in loaded.columns] == [*KEYS, "Friendly name"]  # the record is ours
    assert any("Read 1 cell without the '" in n for n in loaded.notes)


def test_an_edited_record_cell_is_named_and_its_row_not_sent(tmp_path):
    sheet = write_sheet(
        tmp_path / "to-fix.csv",
        [*KEYS, "Friendly name", QUOTED],
        [
            [CUSTOMER, SUBS[0], "'=ours", "Friendly name"],
            [CUSTOMER, SUBS[1], "'=x", '["Friendly name"]'],
        ],
    )
    run = check_file(sheet, out=tmp_path / "check")
    issues = run.parts[0].issues.to_dicts()
    assert [(i["row"], i["column"], i["value"]) for i in issues] == [(2, QUOTED, "Friendly name")]
    assert "is not what bulkpatch wrote" in issues[0]["message"]
    assert run.counts() == {"valid": 1, "invalid": 1, "no_change": 0}


def test_the_page_shows_the_cells_as_the_sheet_had_them_and_not_the_record(tmp_path):
    sheet = write_sheet(
        tmp_path / "s.csv", [*KEYS, "Notes"], [[CUSTOMER, SUBS[0], "=HYPERLINK(1)"]]
    )
    run = check_file(sheet, out=tmp_path / "check")
    shown = read_report(tmp_path / "check" / "check.csv", run.parts[0].sheet.dialect)
    assert QUOTED not in shown.columns and shown.get_column("Notes").to_list() == ["=HYPERLINK(1)"]
