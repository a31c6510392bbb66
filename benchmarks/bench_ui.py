"""The web page's figures for `run.py`: a big sheet uploaded to a real `bulkpatch ui` until its
Check page has arrived, against `bulkpatch check` of the same sheet (the same work: the check
and its reports, check.xlsx included); then the slowest of many pages of its rows (first,
middle, last, filtered by outcome)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
from run import PYTHON, RUNS, measure, subscriptions_frame

PAGES = 30  # pages of rows asked for; the slowest is the figure


def bench_ui(work: Path, rows: int) -> dict:
    sheet = work / "page.csv"
    subscriptions_frame(rows, 200, mistakes=True).write_csv(sheet)
    checks = [measure(_check(sheet, work / f"cli-{n}")).seconds for n in range(RUNS)]
    server, address = _serve(work)
    try:
        with httpx.Client(follow_redirects=True, timeout=600) as browser:
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get(address).text)[1]
            base = address.split("/?")[0]
            uploads, shown = [], None
            for _ in range(RUNS):
                started = time.perf_counter()
                shown = browser.post(
                    f"{base}/upload",
                    data={"csrf": csrf},
                    files={"sheet": (sheet.name, sheet.read_bytes(), "text/csv")},
                )
                uploads.append(time.perf_counter() - started)
                assert shown.status_code == 200 and 'id="rows"' in shown.text, shown.text[:500]
            pages = _pages(browser, str(shown.url), rows)
    finally:
        server.terminate()
        server.wait(60)
    check, upload = min(checks), min(uploads)
    return {
        "rows": rows,
        "check_seconds": round(check, 2),
        "upload_to_check_page_seconds": round(upload, 2),
        "upload_vs_check": round(upload / check, 2),
        "pages_asked": len(pages),
        "slowest_page_ms": round(max(pages) * 1000),
        "median_page_ms": round(sorted(pages)[len(pages) // 2] * 1000),
        "targets": {"upload_vs_check": "<= 1.5", "slowest_page_ms": "< 200"},
    }


def _check(sheet: Path, out: Path) -> list[str]:
    return [PYTHON, "-m", "bulkpatch", "check", str(sheet), "--quiet", "--out", str(out)]


def _serve(work: Path) -> tuple[subprocess.Popen, str]:
    """`bulkpatch ui --no-browser` for real, writing under `work`; its address with token."""
    server = subprocess.Popen(
        [PYTHON, "-m", "bulkpatch", "ui", "--no-browser"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    return server, re.search(r"http://\S+", server.stdout.readline())[0]


def _pages(browser: httpx.Client, check_page: str, rows: int) -> list[float]:
    """Seconds for each page of rows: all rows (first, middle, last pages), then invalid
    rows only, each asked for in turn."""
    last = -(-rows // 50)
    asked = [f"?page={n}" for n in (1, 2, last // 2, last - 1, last)]
    asked += [f"?outcome=invalid&page={n}" for n in (1, 2, 3)]
    took = []
    for n in range(PAGES):
        url = check_page.split("?")[0] + asked[n % len(asked)]
        started = time.perf_counter()
        answer = browser.get(url)
        took.append(time.perf_counter() - started)
        assert answer.status_code == 200 and 'id="rows"' in answer.text
    return took
