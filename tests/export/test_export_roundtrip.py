"""export, phase 2: a workbook made for editing (validations, protection, Instructions, the
hidden record of what was read), the three-way round trip (only edited cells are sent; an
edited field that moved in Partner Center since the export is a conflict naming the export's
date; unedited cells never revert a newer value), for a workbook and a CSV; and `template`."""

from __future__ import annotations

import contextlib
import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openpyxl
import pytest
from conftest import SAMPLES, stats, uvicorn_server

from bulkpatch import template_file
from bulkpatch.load.record import RECORD_SHEET
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec

AUTH = {"Authorization": "Bearer t"}
SETTABLE = (
    "quantity",
    "autoRenewEnabled",
    "status",
    "billingCycle",
    "friendlyName",
    "scheduledNextTermInstructions",
)


@contextlib.contextmanager
def samples():
    """A real uvicorn sandbox seeded from the sample sheets."""
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec.samples()))
    with uvicorn_server(sandbox.app) as url:
        yield url, sandbox


def validations(ws) -> dict[str, tuple]:
    """Header -> (type, operator, formula1, ranges) of the validation on its data cells, and
    header -> input message of the one on its header cell."""
    head = {c.column_letter: c.value for c in ws[1]}
    found = {}
    for dv in ws.data_validations.dataValidation:
        ref = str(dv.sqref)
        header = head[ref.split(":")[0].rstrip("0123456789")]
        key = header if ref.endswith(":" + ref.split(":")[0][:-1] + "1001") else f"{header}@1"
        found[key] = (dv.type, dv.operator, dv.formula1, ref, dv.prompt)
    return found


def whole_or_as_read(column: str, current: str, least: int = 1) -> tuple:
    """The check of a seats column: a whole number of at least `least`, or the value its
    `Current ...` column holds (it asks for nothing)."""
    q, c = f"{column}2", f"{current}2"
    return (
        "custom",
        None,
        f'OR(AND(ISNUMBER({q}),{q}=INT({q}),{q}>={least}),AND({c}<>"",{q}={c}))',
    )


def test_the_workbook_is_made_for_editing(tmp_path, cli):
    with samples() as (url, _):
        done = cli("export", "--all", "--target", url, "--out", "e.xlsx")
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(tmp_path / "e.xlsx")
    assert book.sheetnames == ["Subscriptions", "Instructions", RECORD_SHEET]
    assert book[RECORD_SHEET].sheet_state == "veryHidden"
    ws = book["Subscriptions"]
    head = {c.value: c.column_letter for c in ws[1]}
    found = validations(ws)
    assert found["Status"][:3] == (
        "list",
        None,
        '"none,active,suspended,deleted,expired,pending,disabled"',
    )
    assert found["Auto renew"][:3] == ("list", None, '"TRUE,FALSE"')
    assert found["Quantity"][:3] == whole_or_as_read(head["Quantity"], head["Current seats"])
    assert found["Quantity"][3] == f"{head['Quantity']}2:{head['Quantity']}1001"
    assert found["Billing cycle"][2] == '"unknown,monthly,annual,none,one_time,triennial"'
    assert found["Next term end date"][:3] == ("date", "greaterThan", "1")  # after 1900-01-01
    assert "number of seats" in found["Quantity@1"][4]
    assert "Current seats" not in found and "Customer ID" not in found
    assert ws.protection.sheet and ws.protection.password is None
    assert not ws.protection.autoFilter and not ws.protection.sort  # still allowed
    row = {c: ws[f"{letter}2"] for c, letter in head.items()}
    assert not row["Quantity"].protection.locked and not row["Friendly name"].protection.locked
    assert row["Customer ID"].protection.locked and row["Current seats"].protection.locked
    assert ws.freeze_panes == "D2"
    words = " ".join(str(c.value) for c in book["Instructions"]["A"] if c.value)
    assert "bulkpatch check FILE" in words and "bulkpatch apply FILE" in words
    assert "conflict" in words and "no password" in words
    record = [r[:2] for r in book[RECORD_SHEET].values]
    today = datetime.now(UTC).date().isoformat()
    assert record[0] == ("Exported on", today)
    kept = json.loads(record[1][0])
    assert kept[:4] == ["Customer ID", "Subscription ID", "Current status", "Current seats"]
    assert len(record) - 2 == ws.max_row - 1  # a row of values read per exported row
    first = dict(zip(kept, json.loads(record[2][0]), strict=True))
    assert first["Current seats"] == str(ws[f"{head['Current seats']}2"].value)
    assert first["Subscription ID"] == ws[f"{head['Subscription ID']}2"].value


def _active(rows: list[dict]) -> list[int]:
    return [i for i, r in enumerate(rows) if str(r["Current status"]) == "active"]


def _portal(url: str, row: dict, **change) -> dict:
    """Someone changes the subscription in the portal after the export: a direct PATCH."""
    path = f"{url}/v1/customers/{row['Customer ID']}/subscriptions/{row['Subscription ID']}"
    body = httpx.get(path, headers=AUTH).json()
    body.update(change)
    assert httpx.patch(path, json=body, headers=AUTH).status_code in (200, 202)
    return httpx.get(path, headers=AUTH).json()


def _held(url: str, row: dict) -> dict:
    path = f"{url}/v1/customers/{row['Customer ID']}/subscriptions/{row['Subscription ID']}"
    return httpx.get(path, headers=AUTH).json()


def _edit_xlsx(path: Path, edits: dict[int, dict]) -> list[dict]:
    """Edit cells with openpyxl as a user would in Excel (by row index and header); the rows
    as exported."""
    book = openpyxl.load_workbook(path)
    ws = book["Subscriptions"]
    head = {c.value: c.column for c in ws[1]}
    rows = [dict(zip(head, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    for i, cells in edits.items():
        for header, value in cells.items():
            ws.cell(i + 2, head[header]).value = value
    book.save(path)
    return rows


def _edit_csv(path: Path, edits: dict[int, dict]) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    exported = [dict(r) for r in rows]
    for i, cells in edits.items():
        rows[i].update({h: str(v) for h, v in cells.items()})
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return exported


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_round_trip_sends_the_edited_cells_only_and_a_moved_edit_is_a_conflict(
    tmp_path, cli, suffix
):
    out = tmp_path / f"e.{suffix}"
    edit = _edit_xlsx if suffix == "xlsx" else _edit_csv
    with samples() as (url, _):
        assert cli("export", "--all", "--target", url, "--out", out).returncode == 0
        rows = edit(out, {})
        a, b, moved, left = (rows[i] for i in _active(rows)[:4])
        seats = int(a["Current seats"]) + 1
        asks = int(moved["Current seats"]) + 3
        edit(
            out,
            {
                rows.index(a): {"Quantity": seats},
                rows.index(b): {"Friendly name": "Renamed in the sheet"},
                rows.index(moved): {"Quantity": asks},
            },
        )
        before = {k: _held(url, r) for k, r in (("a", a), ("b", b))}
        now = _portal(url, moved, quantity=int(moved["Current seats"]) + 5)["quantity"]
        newer = _portal(url, left, friendlyName="Renamed in the portal")  # not edited in the sheet
        patches = stats(url)["calls"].get("PATCH", {}).get("subscription", 0)
        applied = cli("apply", out, "--target", url, "--json")
        served = stats(url)
        after = {k: _held(url, r) for k, r in (("a", a), ("b", b), ("left", left))}
    summary = json.loads(applied.stdout)
    assert summary["outcomes"]["ok"] == 2 and summary["outcomes"]["conflict"] == 1, applied.stdout
    assert served["calls"]["PATCH"]["subscription"] == patches + 2  # the two edits, nothing else
    changed = {k: {f for f in SETTABLE if after[k].get(f) != before[k].get(f)} for k in ("a", "b")}
    assert changed == {"a": {"quantity"}, "b": {"friendlyName"}}
    assert after["a"]["quantity"] == seats and after["b"]["friendlyName"] == "Renamed in the sheet"
    assert after["left"]["friendlyName"] == newer["friendlyName"]  # never reverted
    results = (tmp_path / summary["run_folder"] / "results.csv").read_text(encoding="utf-8-sig")
    today = datetime.now(UTC).date().isoformat()
    was = int(moved["Current seats"])
    assert (
        f"seats changed in Partner Center since the export on {today}: was {was}, now {now}; "
        f"the sheet asks {asks}"
    ) in results


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_an_unchanged_export_sends_nothing_even_when_partner_center_moved(tmp_path, cli, suffix):
    out = tmp_path / f"e.{suffix}"
    with samples() as (url, _):
        assert cli("export", "--all", "--target", url, "--out", out).returncode == 0
        rows = (_edit_xlsx if suffix == "xlsx" else _edit_csv)(out, {})
        one = rows[_active(rows)[0]]
        newer = _portal(url, one, quantity=int(one["Current seats"]) + 7)
        patches = stats(url)["calls"]["PATCH"]["subscription"]
        applied = cli("apply", out, "--target", url, "--json")
        served = stats(url)
        held = _held(url, one)
    where = f"the hidden sheet '{RECORD_SHEET}'" if suffix == "xlsx" else "its Exported on column"
    today = datetime.now(UTC).date().isoformat()
    assert f"rows come from the export of {today} ({where})" in cli("check", out).stderr
    summary = json.loads(applied.stdout)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert summary["outcomes"].get("conflict", 0) == 0 and summary["outcomes"].get("ok", 0) == 0
    assert served["calls"]["PATCH"]["subscription"] == patches
    assert held["quantity"] == newer["quantity"]


def test_the_record_wins_over_an_edited_current_cell(tmp_path, cli):
    """Someone unprotects the sheet and types over `Current seats`: the hidden record still
    says what was read, so the edit is still measured against it."""
    out = tmp_path / "e.xlsx"
    with samples() as (url, _):
        assert cli("export", "--all", "--target", url, "--out", out).returncode == 0
        rows = _edit_xlsx(out, {})
        one = rows[_active(rows)[0]]
        _edit_xlsx(out, {rows.index(one): {"Current seats": 999}})
        applied = cli("apply", out, "--target", url, "--json")
        served = stats(url)
    assert json.loads(applied.stdout)["outcomes"].get("conflict", 0) == 0, applied.stdout
    assert "PATCH" not in served["calls"]


@pytest.mark.parametrize("kind", ["subscriptions", "orders"])
def test_a_template_is_the_workbook_without_rows_and_checks_clean_once_filled(tmp_path, cli, kind):
    done = cli("template", kind, "--out", "t.xlsx")
    assert done.returncode == 0, done.stderr
    assert f"Wrote an empty {kind} workbook to t.xlsx" in done.stdout
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    assert book.sheetnames == [kind.title(), "Instructions"]
    ws = book[kind.title()]
    assert ws.max_row == 1 and ws.protection.sheet
    found = validations(ws)
    letter = {c.value: c.column_letter for c in ws[1]}
    assert found["Quantity"][:3] == whole_or_as_read(letter["Quantity"], letter["Current seats"])
    assert found["Status"][0] == "list" and found["Billing cycle"][0] == "list"
    head = {c.value: c.column for c in ws[1]}
    # ids come from elsewhere: a template's columns are unlocked below the header
    letter = ws.cell(1, head["Customer ID"]).column_letter
    assert not ws.column_dimensions[letter].protection.locked and ws["B1"].protection.locked
    example = [r for r in book["Instructions"].values if r[0] == "Customer ID"]
    assert example, "the Instructions sheet shows an example row"
    cells = dict(
        zip(
            example[0],
            next(r for r in book["Instructions"].values if r[0] and str(r[0]).startswith("3f2a")),
            strict=False,
        )
    )
    for header, value in cells.items():
        if header:
            ws.cell(2, head[header]).value = value
    book.save(tmp_path / "t.xlsx")
    checked = cli("check", "t.xlsx", "--json")
    summary = json.loads(checked.stdout)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert summary["invalid"] == 0 and summary["valid"] == 1


def test_template_file_returns_the_export_result_shape(tmp_path):
    run = template_file("orders", out=tmp_path / "o.xlsx")
    assert run.template and run.rows == 0 and run.output == tmp_path / "o.xlsx"
    assert run.summary()["kind"] == "orders" and run.reports == [tmp_path / "o.xlsx"]


def test_an_orders_export_sends_the_edited_order_only(tmp_path, cli):
    out = tmp_path / "o.xlsx"
    with samples() as (url, _):
        done = cli("export", "--all", "--kind", "orders", "--target", url, "--out", out)
        assert done.returncode == 0, done.stderr
        book = openpyxl.load_workbook(out)
        ws = book["Orders"]
        head = {c.value: c.column for c in ws[1]}
        rows = list(ws.iter_rows(min_row=2, values_only=True))
        monthly = [r for r in rows if r[head["Current billing cycle"] - 1] == "monthly"]
        order = monthly[0][head["Order ID"] - 1]
        lines = sum(r[head["Order ID"] - 1] == order for r in rows)
        for i, r in enumerate(rows, start=2):
            if r[head["Order ID"] - 1] == order:
                ws.cell(i, head["Billing cycle"]).value = "annual"
        book.save(out)
        applied = cli("apply", out, "--target", url, "--json")
        served = stats(url)
    outcomes = json.loads(applied.stdout)["outcomes"]
    assert outcomes["ok"] + outcomes["accepted"] == lines, applied.stdout  # a row per line
    assert outcomes["no_change"] == len(rows) - lines and outcomes["conflict"] == 0
    assert served["calls"]["PATCH"] == {"order": 1}


def test_a_broken_record_is_named_with_what_to_do(tmp_path, cli):
    out = tmp_path / "e.xlsx"
    with samples() as (url, _):
        assert cli("export", "--all", "--target", url, "--out", out).returncode == 0
    book = openpyxl.load_workbook(out)
    book[RECORD_SHEET]["A2"] = "Customer ID, Subscription ID"  # someone typed over it
    book.save(out)
    checked = cli("check", out)
    assert checked.returncode == 2
    assert f"e.xlsx [{RECORD_SHEET}]: cannot be read as the export's record" in checked.stderr
    assert "delete that sheet" in checked.stderr


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_an_orders_export_with_cancelled_lines_checks_clean_until_a_cell_is_edited(
    tmp_path, cli, suffix
):
    """Cancelled orders' line items are read with 0 seats: left as exported, they ask for
    nothing, so neither `check` nor the workbook calls them wrong; 0 typed into an active line
    item is still below 1."""
    out = tmp_path / f"o.{suffix}"
    with samples() as (url, _):
        month_end = cli("apply", SAMPLES / "month-end.xlsx", "--target", url, "--yes")
        # exit 1: some of the sample's rows are refused on purpose; its cancellations go
        assert month_end.returncode == 1 and "Applied" in month_end.stdout, month_end.stderr
        done = cli("export", "--all", "--kind", "orders", "--target", url, "--out", out)
    assert done.returncode == 0, done.stderr
    if suffix == "csv":
        rows = list(csv.DictReader(out.open(encoding="utf-8-sig", newline="")))
    else:
        ws = openpyxl.load_workbook(out)["Orders"]
        head = [c.value for c in ws[1]]
        rows = [dict(zip(head, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    cancelled = [i for i, r in enumerate(rows) if str(r["Current seats"]) == "0"]
    assert cancelled and all(str(rows[i]["Quantity"]) == "0" for i in cancelled)
    checked = json.loads(cli("check", out, "--json").stdout)
    assert (checked["valid"], checked["invalid"], checked["no_change"]) == (0, 0, len(rows))
    if suffix == "xlsx":  # Excel accepts what the export wrote, as check does
        letter = {c.value: c.column_letter for c in ws[1]}
        q, current = letter["Quantity"], letter["Current seats"]
        assert validations(ws)["Quantity"][:3] == whole_or_as_read(q, current)
    active = next(i for i, r in enumerate(rows) if str(r["Current seats"]) != "0")
    if suffix == "csv":
        _edit_csv(out, {active: {"Quantity": 0}})
    else:
        book = openpyxl.load_workbook(out)
        book["Orders"].cell(active + 2, head.index("Quantity") + 1).value = 0
        book.save(out)
    edited = json.loads(cli("check", out, "--json").stdout)
    assert (edited["invalid"], edited["no_change"]) == (1, len(rows) - 1)
    assert 'Quantity: "0" is below 1' in cli("check", out).stdout


@pytest.mark.parametrize("kind", ["subscriptions", "orders"])
def test_a_csv_template_says_it_has_no_example_and_where_one_is(tmp_path, cli, kind):
    done = cli("template", kind, "--out", "t.csv")
    as_json = json.loads(cli("template", kind, "--out", "j.csv", "--json").stdout)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "t.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.reader(handle))) == 1  # the headers only
    assert "(the Instructions sheet shows one)" not in done.stdout  # a CSV has no such sheet
    assert f"Wrote an empty {kind} CSV (the headers only) to t.csv." in done.stdout
    where = f"a CSV has no example; `bulkpatch template {kind} --out FILE.xlsx` writes the workbook"
    assert where in " ".join(done.stdout.split())
    assert where in as_json["next"] and "bulkpatch check j.csv" in as_json["next"]
