"""Four eyes on the page, in a real Chromium: two people, each with their own `bulkpatch ui`
signed in to the sandbox as themselves and their own browser context, sharing one reports
folder. Alice plans, Bob finds the plan waiting, reviews and approves it, Alice sends it."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import SAMPLES, interrupt, started_ui
from playwright.sync_api import expect, sync_playwright

SAMPLE = SAMPLES / "month-end.xlsx"
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


@contextmanager
def ui_as(person: str, cwd: Path) -> Iterator[str]:
    """The real `bulkpatch ui` in `cwd`, signed in to the sandbox as `person`: its address."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "BULKPATCH_SANDBOX_USER": person}
    env.pop("BULKPATCH_TOKEN", None)
    process, address = started_ui([sys.executable, "-m", "bulkpatch"], cwd, env)
    try:
        yield address
    finally:
        interrupt(process)
        process.communicate(timeout=30)


def test_two_people_plan_and_approve_on_their_own_pages(chromium, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    (tmp_path / "bulkpatch.toml").write_text('[profiles.default]\napproval = "required"\n')
    with (
        ui_as(ALICE, tmp_path) as alice_address,
        ui_as(BOB, tmp_path) as bob_address,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        alice = browser.new_context().new_page()
        bob = browser.new_context().new_page()
        alice.goto(alice_address)
        expect(alice.locator("#who")).to_contain_text(f"signed in to the sandboxes as {ALICE}")
        alice.set_input_files("#sheet", SAMPLE)
        alice.click("#check")
        alice.click("#plan")
        alice.click("#to-confirm")
        expect(alice.locator("#approval")).to_contain_text("needs approval")
        expect(alice.locator("#run")).to_have_count(0)

        bob.goto(bob_address)
        expect(bob.locator("#who")).to_contain_text(f"signed in to the sandboxes as {BOB}")
        bob.click("a.approve")
        expect(bob.locator("#planner")).to_have_text(f"{ALICE} (sandbox sign-in)")
        said = bob.locator("#review").inner_text()
        changes = re.search(r"Changes to send: (\d+)", said).group(1)
        bob.fill("#typed", changes)
        bob.click("#approve")
        expect(bob.locator("#decided")).to_contain_text(f"as {BOB} (sandbox sign-in)")

        alice.reload()
        expect(alice.locator("#approval")).to_contain_text(f"Approved by {BOB} (sandbox sign-in)")
        alice.click("#run")
        expect(alice.locator("h1")).to_contain_text("Results", timeout=60_000)
        expect(alice.locator(".outcome-ok")).to_have_text(re.compile(r"^[1-9]\d* ok$"))
        browser.close()
