"""The web page in a real Chromium, driven by Playwright: the real `bulkpatch ui` command,
the sample with mistakes checked, planned and applied to the built-in sandbox, the results
downloaded and read back. Each page is photographed into `tests/screenshots/`."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import NAMES_ONLY, SAMPLES, as_workbook, interrupt, start_ui
from playwright.sync_api import Page, expect, sync_playwright

from bulkpatch.sandbox.customers import LOOKALIKE_ID

# Where the screenshots go to be looked at: a folder of the test run, never the checkout
# (BULKPATCH_SCREENSHOTS names another, to keep them).
SHOTS = (
    Path(os.environ.get("BULKPATCH_SCREENSHOTS") or tempfile.gettempdir()) / "bulkpatch-ui-shots"
)
SAMPLE = SAMPLES / "subscriptions-true-up.csv"


@pytest.fixture
def ui_address(tmp_path: Path) -> Iterator[str]:
    """`bulkpatch ui --no-browser` started for real; stopped with Ctrl-C, as a user would."""
    # 10 calls a second: the run lasts a few seconds, long enough to watch its progress.
    process, address = start_ui(tmp_path, calls_per_minute=600)
    try:
        yield address
    finally:
        interrupt(process)
        rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0 and "bulkpatch ui stopped." in rest, rest


@pytest.fixture
def page(chromium: str, ui_address: str) -> Iterator[Page]:
    """A Chromium tab on the page; any error in its console (a script the page's
    Content-Security-Policy blocked, say) fails the test."""
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 800})
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.goto(ui_address)
        yield tab
        browser.close()
    assert errors == []


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_check_plan_apply_and_download_the_results_in_a_browser(page: Page, tmp_path: Path):
    assert "token=" not in page.url  # traded for the cookie, gone from the address bar
    expect(page.locator("h1")).to_have_text("Check a sheet")
    shot(page, "1-start")

    page.set_input_files("#sheet", SAMPLE)
    page.click("#check")
    expect(page.locator(".outcome-invalid")).to_have_text("8 invalid")
    page.select_option("select[name=outcome]", "invalid")  # filters as soon as it is chosen
    expect(page.locator("#rows tbody tr")).to_have_count(8)
    expect(page.locator("#rows td.bad").first).to_be_visible()
    shot(page, "2-check")

    page.click("#plan")
    expect(page.locator(".outcome-change")).to_have_text("26 change")
    expect(page.locator("#target")).to_contain_text("SANDBOX")
    shot(page, "3-plan")

    page.click("#to-confirm")
    expect(page.locator(".big")).to_contain_text("26 changes will be sent to")
    shot(page, "4-confirm")
    page.click("#run")
    expect(page.locator("h1")).to_contain_text("Sending")
    # Only the events the server pushes change this line (with script on, nothing reloads).
    expect(page.locator("#progress")).to_have_text(re.compile(r"^[1-9]\d* of 26 changes done"))
    shot(page, "5-run")
    expect(page.locator(".outcome-ok")).to_have_text("26 ok", timeout=60_000)
    expect(page.locator("h1")).to_contain_text("Results")
    shot(page, "6-results")

    with page.expect_download() as download:
        page.click("a[href$='/results.xlsx']")
    saved = tmp_path / "downloaded.xlsx"
    download.value.save_as(saved)
    rows = openpyxl.load_workbook(saved)["Subscriptions"].iter_rows(values_only=True)
    header = next(rows)
    outcomes = [row[header.index("outcome")] for row in rows]
    assert outcomes.count("ok") == 26 and outcomes.count("invalid") == 8


def test_stop_a_run_and_resume_it_in_a_browser(page: Page):
    page.set_input_files("#sheet", SAMPLE)
    page.click("#check")
    page.click("#plan")
    expect(page.locator(".outcome-change")).to_have_text("26 change")
    expect(page.locator("#seats tbody tr").first).to_be_visible()
    page.click("#to-confirm")
    page.click("#run")
    expect(page.locator("#progress")).to_have_text(re.compile(r"^[1-9]\d* of 26 changes done"))
    expect(page.locator("#pace")).to_contain_text("calls per minute")
    page.click("#stop")
    expect(page.locator("h1")).to_contain_text("Results")
    expect(page.locator(".outcome-not_sent")).to_be_visible()
    shot(page, "7-stopped")
    page.click("#resume")
    expect(page.locator(".outcome-ok")).to_have_text("26 ok", timeout=60_000)
    expect(page.locator("#resume")).to_have_count(0)


def test_export_from_the_start_page_in_a_browser(page: Page, tmp_path: Path):
    expect(page.locator("#export")).to_be_visible()  # open while there are no runs yet
    shot(page, "8-export-form")
    page.click("#export")
    expect(page.locator("h1")).to_have_text("Export ready", timeout=60_000)
    expect(page.locator("#exported")).to_contain_text(re.compile(r"^\d+ rows from \d+ customers"))
    shot(page, "9-exported")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "export.xlsx"
    download.value.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert (
        book.sheetnames[:2] == ["Subscriptions", "Instructions"]
        and book["Subscriptions"].max_row > 1
    )


def test_the_month_end_sample_dropped_on_the_page_goes_all_the_way(page: Page, tmp_path: Path):
    workbook = SAMPLES / "month-end.xlsx"
    # A file dropped on the form, as from the desktop: a DataTransfer carrying the workbook.
    dropped = page.evaluate_handle(
        """([name, bytes]) => {
            const moved = new DataTransfer();
            moved.items.add(new File([new Uint8Array(bytes)], name));
            return moved;
        }""",
        [workbook.name, list(workbook.read_bytes())],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    expect(page.locator("#drop .chosen")).to_have_text("month-end.xlsx")
    page.click("#check")
    expect(page.locator("h1")).to_have_text("Check: month-end.xlsx")
    page.click("#plan")
    expect(page.locator("#to-confirm")).to_be_visible(timeout=60_000)
    page.click("#to-confirm")
    page.click("#run")
    expect(page.locator("h1")).to_contain_text("Results", timeout=60_000)
    with page.expect_download() as download:
        page.click("a[href$='/results.xlsx']")
    saved = tmp_path / "month-end-results.xlsx"
    download.value.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert {"Summary", "Subscriptions", "Orders"} <= set(book.sheetnames)
    for name in ("Subscriptions", "Orders"):
        rows = book[name].iter_rows(values_only=True)
        header = next(rows)
        outcomes = {row[header.index("outcome")] for row in rows}
        assert "ok" in outcomes and "failed" not in outcomes, (name, outcomes)


def test_the_names_only_sample_shows_its_matching_and_gives_matched_xlsx(
    page: Page, tmp_path: Path, write_xlsx
):
    page.set_input_files("#sheet", as_workbook(write_xlsx, NAMES_ONLY))
    page.click("#check")
    page.click("#plan")
    matching = page.locator("#matching")
    expect(matching).to_be_visible(timeout=60_000)
    expect(matching.locator("#matched-by tr", has_text="not matched")).to_contain_text("4")
    expect(page.locator("#choices tr.choice")).to_have_count(4)
    alike = page.locator("#choices tr.choice", has_text="customers alike")
    expect(alike.locator(".candidates tbody tr")).to_have_count(2)
    expect(alike.locator(".candidates")).to_contain_text(LOOKALIKE_ID)
    shot(page, "10-plan-matching")

    with page.expect_download() as download:
        page.click("#matched-file")
    assert download.value.suggested_filename == "matched.xlsx"
    saved = tmp_path / "matched.xlsx"
    download.value.save_as(saved)
    rows = openpyxl.load_workbook(saved)["Subscriptions"].iter_rows(values_only=True)
    header = next(rows)
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    by = [c["Matched by"] for c in cells]
    assert len(by) == 10 and by.count("not matched") == 4 and None not in by
    for c in cells:  # a matched row names its customer and subscription by id
        assert bool(c["Customer ID"] and c["Subscription ID"]) == (c["Matched by"] != "not matched")
