"""The page tells the truth about runs (issue 24), in a real Chromium: a run the CLI is still
applying shows as running with its progress from the journal, never as interrupted with a
Resume button; once Ctrl-C stops it, it is interrupted and can be resumed; a finished run
reopened from the Start page's list shows what it did (rows by outcome, the rows that did not
go, its downloads)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OWN_GROUP, QUIRKS, SAMPLES, interrupt, start_ui
from playwright.sync_api import Page, expect, sync_playwright

from bulkpatch.runs.folder import RunFolder


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[str]:
    """`bulkpatch ui --no-browser` in `tmp_path` (its runs listed from `tmp_path/reports`)."""
    process, address = start_ui(tmp_path, calls_per_minute=600)
    try:
        yield address
    finally:
        interrupt(process)
        process.communicate(timeout=30)


@pytest.fixture
def page(chromium: str, ui: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.goto(ui)  # trades the one-time token for the page's cookie
        yield tab
        browser.close()


def apply_in_background(sheet: Path, folder: Path, calls_per_minute: int) -> subprocess.Popen:
    """The real `bulkpatch apply` in its own process, paced so that it is still sending."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "BULKPATCH_RATE": str(calls_per_minute)}
    return subprocess.Popen(
        [sys.executable, "-m", "bulkpatch", "apply", str(sheet), "--out", str(folder), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        env=env,
        **OWN_GROUP,
    )


def wait_until_held(folder: Path, process: subprocess.Popen) -> None:
    """Until the run holds its folder and has journaled its start (bounded: a minute)."""
    done = threading.Event()
    watchdog = threading.Timer(60, done.set)
    watchdog.start()
    try:
        while not done.is_set():
            journal = folder / "journal.jsonl"
            if journal.is_file() and journal.stat().st_size and RunFolder.holder(folder):
                return
            assert process.poll() is None, process.communicate()[0]
            done.wait(0.1)
        raise AssertionError("the CLI run never started sending")
    finally:
        watchdog.cancel()


def test_a_cli_run_in_progress_shows_as_running_then_as_interrupted_once_stopped(
    page: Page, ui: str, tmp_path: Path
):
    folder = tmp_path / "reports" / "29991231-000000-cli-results"
    process = apply_in_background(SAMPLES / "subscriptions-true-up.csv", folder, 30)
    try:
        wait_until_held(folder, process)
        base = ui.split("/?")[0]
        page.goto(f"{base}/")
        expect(page.locator(f"a[href='/runs/{folder.name}'] >> xpath=../../td[2]")).to_have_text(
            "running"
        )
        page.goto(f"{base}/runs/{folder.name}")
        expect(page.locator("#state")).to_have_text("running")
        expect(page.locator("#running")).to_contain_text(f"process {process.pid} (bulkpatch apply")
        planned = (folder / "plan.jsonl").read_text(encoding="utf-8").splitlines()
        expect(page.locator("#total")).to_have_text(str(len(planned)))
        expect(page.locator("#resume")).to_have_count(0)
    finally:
        interrupt(process)
        process.communicate(timeout=60)
    # the page watching the run moves on by itself when the run ends (a goto of the same page
    # before that would race its own reload), and the run opened again says the same
    expect(page.locator("#state")).to_have_text("interrupted")
    page.goto(f"{base}/runs/{folder.name}")
    expect(page.locator("#state")).to_have_text("interrupted")
    expect(page.locator("#resume")).to_be_visible()


def test_a_finished_run_reopened_from_the_list_shows_what_it_did(
    page: Page, ui: str, tmp_path: Path
):
    folder = tmp_path / "reports" / "29991231-000000-done-results"
    process = apply_in_background(QUIRKS / "all-or-nothing-invalid-row.csv", folder, 600)
    assert process.wait(timeout=120) == 1, process.communicate()[0]
    base = ui.split("/?")[0]
    page.goto(f"{base}/")
    page.click(f"a[href='/runs/{folder.name}']")
    expect(page.locator("#state")).to_have_text("applied")
    expect(page.locator(".outcome-ok")).to_have_text("1 ok")
    expect(page.locator(".outcome-invalid")).to_have_text("1 invalid")
    rows = page.locator("#not-gone tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("to cancel, write deleted in Status")
    expect(page.locator("a[download][href$='/files/results.xlsx']")).to_be_visible()


def test_the_check_table_shows_whole_messages_wrapped_in_rows_a_few_lines_tall(page: Page):
    page.set_input_files("#sheet", SAMPLES / "subscriptions-true-up.csv")
    page.click("#check")
    expect(page.locator(".outcome-invalid")).to_have_text("8 invalid")
    cells = page.locator("#rows td.said")
    expect(cells.first).to_be_visible()
    shown = page.evaluate(
        """() => [...document.querySelectorAll('#rows tbody tr')].map(row => {
            const said = row.querySelector('td.said');
            const line = parseFloat(getComputedStyle(row.cells[0]).lineHeight);
            return {
                cut: said.scrollWidth > said.clientWidth + 1,
                whole: said.textContent === said.title,
                lines: row.getBoundingClientRect().height / line,
            };
        })"""
    )
    assert len(shown) == 37
    assert not [s for s in shown if s["cut"] or not s["whole"]]  # every message read whole
    # the longest message (the 1,000 row, 130 characters) wraps to a few lines, not a column
    assert max(s["lines"] for s in shown) <= 6, shown


def test_the_note_about_rows_to_fix_links_the_to_fix_file(page: Page):
    page.set_input_files("#sheet", SAMPLES / "subscriptions-true-up.csv")
    page.click("#check")
    note = page.locator("p.note", has_text="rows to fix")
    link = note.locator("a.report-link")
    expect(link).to_have_text("to-fix.csv")
    expect(note).not_to_contain_text("reports/")  # no path on the server
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "to-fix.csv"
