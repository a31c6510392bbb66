"""export: what Partner Center holds, read with one call per customer page and one per
customer, written as a sheet that `load` reads back and that, applied unchanged, sends no
PATCH; filters, the customers of a sheet, orders, the clear stops, Ctrl-C, --json."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest
from conftest import OWN_GROUP, in_terminal, interrupt, stats, uvicorn_server

from bulkpatch import export_file
from bulkpatch.errors import InputError, StoppedError
from bulkpatch.export.rows import headers, window_days
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec
from bulkpatch.sandbox.customers import company_name
from bulkpatch.settings import Settings

FAST = Settings(rate=60_000, concurrency=8, backoff=0.01)
EXPORT = [sys.executable, "-m", "bulkpatch", "export"]


@contextlib.contextmanager
def synthetic(customers: int, per: int, **config):
    """A real uvicorn sandbox holding `customers` synthetic customers of `per` subscriptions."""
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec(synthetic=(customers, per)), **config))
    with uvicorn_server(sandbox.app) as url:
        yield url, sandbox


@contextlib.contextmanager
def samples(**config):
    """A real uvicorn sandbox seeded from the sample sheets (subscriptions and orders)."""
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec.samples(), **config))
    with uvicorn_server(sandbox.app) as url:
        yield url, sandbox


def sheet(path: Path) -> list[dict]:
    """The export's first sheet read back with openpyxl: a dict per row, typed cells."""
    rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].values)
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def subscriptions(sandbox: Sandbox) -> list[dict]:
    rows = sandbox.store.db.execute("select body from resources where kind='subscriptions'")
    return [json.loads(r[0]) for r in rows]


@pytest.mark.parametrize("size", [4, 10, 25])
def test_paging_costs_one_call_per_page_plus_one_per_customer(tmp_path, size):
    with synthetic(23, 3) as (url, _):
        run = export_file(
            all_customers=True, target=url, settings=FAST, page_size=size, out=tmp_path / "x.xlsx"
        )
        served = stats(url)
    pages = math.ceil(23 / size)
    assert run.calls == {"PAGE": pages, "LIST": 23}
    assert served["calls"]["GET"] == {"customers": pages, "subscriptions": 23}
    rows = sheet(tmp_path / "x.xlsx")
    assert len(rows) == run.rows == 69 and run.customers == 23
    assert list(rows[0]) == headers("subscriptions")
    assert len({r["Customer ID"] for r in rows}) == 23
    assert all(r["Customer"] == company_name(r["Customer ID"]) for r in rows)
    first = rows[0]
    assert isinstance(first["Quantity"], int) and first["Quantity"] == first["Current seats"]
    assert isinstance(first["Auto renew"], bool)
    assert len(first["Commitment end date"]) == 10  # the day, compared by day


def test_filters_status_offer_and_renewal_window(tmp_path):
    today = datetime.now(UTC).date()
    with synthetic(6, 8) as (url, sandbox):
        held = subscriptions(sandbox)
        name = held[0]["offerName"]

        def exported(**filters) -> set[str]:
            out = tmp_path / f"{len(list(tmp_path.iterdir()))}.csv"
            export_file(all_customers=True, target=url, settings=FAST, out=out, **filters)
            return {r["Subscription ID"] for r in read_csv(out)}

        by_offer = exported(offer=name.split()[-1].lower())
        by_id = exported(offer=held[0]["offerId"])
        soon = exported(renewing_within="6m")
        active = exported(statuses=["Active"], renewing_within="6m")
        suspended = exported(statuses=["suspended"])
    assert by_offer == {s["id"] for s in held if name.split()[-1].lower() in s["offerName"].lower()}
    assert by_id == {held[0]["id"]}
    in_six_months = today + timedelta(days=window_days("6m", today))
    expected = {
        s["id"]
        for s in held
        if today.isoformat() <= s["commitmentEndDate"][:10] <= in_six_months.isoformat()
    }
    assert soon == expected and 0 < len(soon) < len(held)
    assert active == soon and suspended == set()  # every synthetic subscription is active


def test_status_filter_keeps_any_of_the_statuses_given(tmp_path):
    run = export_file(
        all_customers=True,
        target="sandbox",
        statuses=["Expired", "disabled"],
        out=tmp_path / "s.csv",
    )
    rows = read_csv(tmp_path / "s.csv")
    assert run.rows == len(rows) == 2 * run.customers  # the sandbox gives each customer one of each
    assert {r["Current status"] for r in rows} == {"expired", "disabled"}
    assert all(r["Next term quantity"] is None for r in rows)  # auto-renew off: not offered


def read_csv(path: Path) -> list[dict]:
    import polars as pl

    return pl.read_csv(path, infer_schema=False).to_dicts()


def test_window_words_and_a_clear_refusal():
    today = datetime(2026, 1, 31, tzinfo=UTC).date()
    assert [window_days(w, today) for w in ("30d", "8w", "1m", "12")] == [30, 56, 28, 12]
    with pytest.raises(InputError, match="such as 30d, 8w or 3m"):
        window_days("next month", today)


def test_customers_from_a_sheet_keep_their_names(tmp_path, cli):
    with synthetic(5, 2) as (url, sandbox):
        chosen = sorted(
            {c for (c,) in sandbox.store.db.execute("select customer_id from resources")}
        )
        given = tmp_path / "customers.csv"
        given.write_text(
            "Company,Customer ID,Notes\n"
            f"Alpha Ltd,{{{chosen[0].upper()}}},x\nBeta Inc,{chosen[3]},\n,,\n"
        )
        done = cli("export", "--customers", given, "--target", url, "--out", "c.xlsx", "--quiet")
        served = stats(url)
    assert done.returncode == 0, done.stderr
    rows = sheet(tmp_path / "c.xlsx")
    assert {(r["Customer"], r["Customer ID"]) for r in rows} == {
        ("Alpha Ltd", chosen[0]),
        ("Beta Inc", chosen[3]),
    }
    assert served["calls"]["GET"] == {"subscriptions": 2}  # no customer page: they were named
    assert "Exported 4 subscriptions of 2 customers" in done.stdout


def test_orders_one_row_per_line_item_read_back_as_an_orders_sheet(tmp_path, cli):
    with samples() as (url, sandbox):
        done = cli("export", "--all", "--kind", "orders", "--target", url, "--out", "o.csv")
        checked = cli("check", "o.csv", "--json")
        served = stats(url)
    orders = [
        json.loads(r[0])
        for r in sandbox.store.db.execute("select body from resources where kind='orders'")
    ]
    assert done.returncode == 0, done.stderr
    assert len(read_csv(tmp_path / "o.csv")) == sum(len(o["lineItems"]) for o in orders)
    summary = json.loads(checked.stdout)
    roles = {m["header"]: m["role"] for m in summary["sheets"][0]["mapping"]}
    assert summary["sheets"][0]["kind"] == "orders" and summary["invalid"] == 0
    assert roles["Line item"] == "key" and roles["Quantity"] == "set"
    assert roles["Current seats"] == "expected" and roles["Customer"] == "note"
    assert served["calls"]["GET"]["orders"] == len(sandbox.store.customers())


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_an_unchanged_export_applied_as_it_is_sends_no_patch(tmp_path, cli, suffix):
    with samples() as (url, _):
        done = cli("export", "--all", "--target", url, "--out", f"e.{suffix}", "--json")
        checked = cli("check", f"e.{suffix}", "--json")
        applied = cli("apply", f"e.{suffix}", "--target", url, "--json")
        served = stats(url)
    assert done.returncode == 0, done.stderr
    mapping = json.loads(checked.stdout)["sheets"][0]["mapping"]
    roles = {m["header"]: (m["role"], m["field"]) for m in mapping}
    assert roles["Quantity"] == ("set", "quantity")
    assert roles["Current seats"] == ("expected", "current:quantity")
    assert roles["Subscription ID"] == ("key", "subscription_id")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["outcomes"]["conflict"] == 0
    assert "PATCH" not in served["calls"] and served["applied"] == 0


def test_a_refused_token_stops_with_one_line_and_no_file(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("BULKPATCH_TOKEN", "not-the-one")
    with synthetic(3, 1, token="the-one") as (url, _):
        done = cli("export", "--all", "--target", url, "--out", "x.xlsx")
        as_json = cli("export", "--all", "--target", url, "--out", "x.xlsx", "--json")
    assert done.returncode == 3
    assert done.stderr.strip().count("\n") == 0
    assert "refused the token (HTTP 401)" in done.stderr and "no file was written" in done.stderr
    assert json.loads(as_json.stdout)["exit_code"] == 3
    assert not list(tmp_path.glob("*.xlsx")) and not list(tmp_path.glob(".*tmp"))


def test_an_unreachable_service_stops_with_no_file(tmp_path):
    with synthetic(1, 1) as (url, _):
        pass  # the server is gone: its port answers nothing
    quick = Settings(rate=60_000, backoff=0.01, attempts=2)
    with pytest.raises(StoppedError, match="could not be reached"):
        export_file(all_customers=True, target=url, settings=quick, out=tmp_path / "x.xlsx")
    assert not list(tmp_path.iterdir())


def test_ctrl_c_leaves_no_file_at_the_output_path(tmp_path):
    out = tmp_path / "x.xlsx"
    with synthetic(60, 2, latency_ms=50) as (url, _):
        process = subprocess.Popen(
            [*EXPORT, "--all", "--target", url, "--out", str(out), "--rate", "600", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **OWN_GROUP,
        )
        deadline = time.monotonic() + 60
        while stats(url)["calls"].get("GET", {}).get("subscriptions", 0) < 5:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        interrupt(process)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert not list(tmp_path.iterdir())


def test_json_on_success_and_on_a_bad_option(tmp_path, cli):
    done = cli("export", "--all", "--target", "sandbox", "--out", "s.xlsx", "--json")
    bad = cli("export", "--all", "--renewing-within", "soon", "--json")
    both = cli("export", "--all", "--customer", "x", "--target", "sandbox")
    summary = json.loads(done.stdout)
    assert done.returncode == 0
    assert summary["rows"] == len(sheet(tmp_path / "s.xlsx")) and summary["customers"] >= 1
    assert summary["calls"] == {"PAGE": 1, "LIST": summary["customers"]}
    assert summary["reports"] == ["s.xlsx"] and "bulkpatch apply s.xlsx" in summary["next"]
    assert bad.returncode == 2 and json.loads(bad.stdout)["exit_code"] == 2
    assert "30d, 8w or 3m" in json.loads(bad.stdout)["error"]
    assert both.returncode == 2 and "one of --all, --customer ID or --customers" in both.stderr


def test_default_output_is_a_timestamped_workbook_under_reports(tmp_path, cli):
    done = cli("export", "--all", "--target", "sandbox", "--quiet")
    made = list((tmp_path / "reports").glob("*-export.xlsx"))
    assert done.returncode == 0 and len(made) == 1
    assert str(made[0].relative_to(tmp_path)) in done.stdout
    assert "then `bulkpatch check" in done.stdout


def test_429_is_waited_out_and_an_export_paced_under_the_limit_meets_none(tmp_path):
    with synthetic(8, 1, rate_limit=(4, 1)) as (url, _):
        pushed = export_file(
            all_customers=True, target=url, settings=FAST, page_size=3, out=tmp_path / "a.csv"
        )
        paced = Settings(rate=2 * 60, concurrency=4, backoff=0.01)  # well under: no jitter hits it
        time.sleep(1.1)  # the sandbox's window empties
        calm = export_file(
            all_customers=True, target=url, settings=paced, page_size=3, out=tmp_path / "b.csv"
        )
    assert pushed.throttled > 0 and pushed.rows == calm.rows == 8
    assert calm.throttled == 0 and calm.calls == {"PAGE": 3, "LIST": 8}


def test_unattended_progress_lines_count_customers(tmp_path, capsys):
    slow = Settings(rate=600, concurrency=2, backoff=0.01, progress_every=0.2)
    with synthetic(12, 1) as (url, _):
        export_file(
            all_customers=True, target=url, settings=slow, progress="lines", out=tmp_path / "a.csv"
        )
    err = capsys.readouterr().err
    assert "customers done" in err and "of 12 customers" in err


def test_settable_columns_are_white_the_others_grey_and_ids_frozen(tmp_path):
    export_file(all_customers=True, target="sandbox", out=tmp_path / "w.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "w.xlsx").worksheets[0]
    fill = {c.value: c.fill.fgColor.rgb for c in ws[1]}
    assert fill["Quantity"] == fill["Auto renew"] == "FFFFFFFF"
    assert fill["Current seats"] != "FFFFFFFF" and fill["Customer ID"] != "FFFFFFFF"
    assert ws.freeze_panes == "D2" and ws.title == "Subscriptions"


def test_a_customer_partner_center_refuses_is_named_and_exits_1(tmp_path, cli):
    stranger = "00000000-0000-4000-8000-000000000000"
    with synthetic(2, 3) as (url, sandbox):
        known = sandbox.store.customers()[0]
        done = cli("export", "--customer", known, "--customer", stranger, "--target", url)
        alone = cli("export", "--customer", stranger, "--target", url, "--out", "a.csv")
        as_json = cli("export", "--customer", stranger, "--target", url, "--json", "--out", "j.csv")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Exported 3 subscriptions of 1 customer from")
    assert lines[1] == "Could not read 1 of 2 customers; the file has none of their rows:"
    assert lines[2].startswith(f"  {stranger}: Partner Center refused the list of its")
    assert "HTTP 403 20002" in lines[2] and lines[-1].startswith("Next: edit the white columns")
    assert alone.returncode == 1
    assert alone.stdout.splitlines()[1:] == [
        "Could not read any customer:",
        alone.stdout.splitlines()[2],
        "Nothing to edit: the file has no rows.",
    ]
    assert "Next" not in alone.stdout and "edit the white columns" not in alone.stdout
    summary = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and summary["customers_failed"] == 1 and summary["rows"] == 0
    assert list(summary["failed_customers"]) == [stranger]
    assert summary["next"].startswith("nothing to edit: the file has no rows, and 1 customer")


def test_round_trip_sends_exactly_the_edited_cell_and_a_moved_value_is_a_conflict(tmp_path, cli):
    with samples() as (url, _):
        assert cli("export", "--all", "--target", url, "--out", "e.xlsx").returncode == 0
        book = openpyxl.load_workbook(tmp_path / "e.xlsx")
        ws = book.worksheets[0]
        head = {c.value: c.column for c in ws[1]}
        active = [
            r
            for r in range(2, ws.max_row + 1)
            if ws.cell(r, head["Current status"]).value == "active"
        ]
        edited, moved = active[0], active[1]
        for r in (edited, moved):
            ws.cell(r, head["Quantity"]).value = ws.cell(r, head["Current seats"]).value + 1
        book.save(tmp_path / "e.xlsx")
        customer = ws.cell(moved, head["Customer ID"]).value
        sub = ws.cell(moved, head["Subscription ID"]).value
        path = f"{url}/v1/customers/{customer}/subscriptions/{sub}"
        auth = {"Authorization": "Bearer t"}
        body = httpx.get(path, headers=auth).json()
        body["quantity"] += 5  # someone changes it in the portal after the export
        assert httpx.patch(path, json=body, headers=auth).status_code in (200, 202)
        applied = cli("apply", "e.xlsx", "--target", url, "--json")
        served = stats(url)
    outcomes = json.loads(applied.stdout)["outcomes"]
    assert outcomes["ok"] == 1 and outcomes["conflict"] == 1, applied.stdout
    assert served["calls"]["PATCH"]["subscription"] == 2  # the portal's change, and the edit


def test_a_terminal_shows_a_progress_bar_of_customers_unless_quiet(tmp_path):

    shown = in_terminal(["export", "--all", "--target", "sandbox", "--out", "a.xlsx"], tmp_path)
    quiet = in_terminal(
        ["export", "--all", "--target", "sandbox", "--out", "b.xlsx", "--quiet"], tmp_path
    )
    # the samples' four customers and the sandbox's look-alike "Contoso Ltd." (matching)
    assert "5/5 [" in shown and "customer/s" in shown
    assert "5/5 [" not in quiet


def test_customers_from_a_workbook(tmp_path, write_xlsx):
    with synthetic(3, 2) as (url, sandbox):
        chosen = sandbox.store.customers()[1]
        book = write_xlsx(
            {"Customers": [["Your list"], [], ["Customer", "Customer ID"], ["Gamma", chosen]]}
        )
        run = export_file(customers_sheet=book, target=url, settings=FAST, out=tmp_path / "g.csv")
    assert run.customers == 1 and run.calls == {"LIST": 1}
    assert {(r["Customer"], r["Customer ID"]) for r in read_csv(tmp_path / "g.csv")} == {
        ("Gamma", chosen)
    }


def test_a_renewal_review_lists_only_subscriptions_that_renew_or_can_still_change(tmp_path, cli):
    """The built-in sandbox holds deleted, expired and disabled subscriptions whose commitment
    end date is still ahead: `--renewing-within` leaves them out unless `--status` asks."""
    today = datetime.now(UTC).date()
    last = (today + timedelta(days=window_days("12m", today))).isoformat()
    every = export_file(all_customers=True, target="sandbox", out=tmp_path / "all.csv")
    held = [
        r
        for r in read_csv(tmp_path / "all.csv")
        if today.isoformat() <= r["Commitment end date"] <= last
    ]
    ended = {r["Current status"] for r in held} - {"active", "suspended"}
    assert every.rows and {"deleted", "expired", "disabled"} <= ended
    review = export_file(
        all_customers=True, target="sandbox", renewing_within="12m", out=tmp_path / "r.csv"
    )
    kept = read_csv(tmp_path / "r.csv")
    assert {r["Subscription ID"] for r in kept} == {
        r["Subscription ID"] for r in held if r["Current status"] in ("active", "suspended")
    }
    assert {r["Current status"] for r in kept} == {"active", "suspended"}
    assert review.summary()["filters"]["status"] == ["active", "suspended"]
    asked = export_file(
        all_customers=True,
        target="sandbox",
        renewing_within="12m",
        statuses=["deleted"],
        out=tmp_path / "d.csv",
    )
    assert asked.rows == sum(r["Current status"] == "deleted" for r in held) > 0
    words = " ".join(cli("export", "--help").stdout.replace("│", " ").split())
    assert "only active or suspended ones" in words


def test_customers_named_by_id_have_no_name_and_the_export_says_why(tmp_path, cli):
    """A subscription list carries no company name: a `--customer` export costs one call per
    customer and leaves the Customer column empty, saying why; --all fills it from its pages."""
    with synthetic(3, 2) as (url, sandbox):
        chosen = sandbox.store.customers()[:2]
        named = cli("export", *(a for c in chosen for a in ("--customer", c)), "--target", url)
        served = stats(url)
        every = cli("export", "--all", "--target", url, "--out", "all.csv")
    assert named.returncode == 0, named.stderr
    assert served["calls"]["GET"] == {"subscriptions": 2}  # no call to read a name
    assert (
        "Note: the Customer column is empty for 2 customers named by id: Partner Center's list "
        "of a customer's subscriptions carries no company name"
    ) in " ".join(named.stdout.split())
    made = next((tmp_path / "reports").glob("*-export.xlsx"))
    assert {r["Customer"] for r in sheet(made)} == {None}
    assert every.returncode == 0 and "Customer column is empty" not in every.stdout
    assert all(r["Customer"] for r in read_csv(tmp_path / "all.csv"))
