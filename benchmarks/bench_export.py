"""The export's figures for `run.py`: its economy of calls and pace against a real `bulkpatch
sandbox` (calls = customer pages + customers, wall time against calls / limit), and the time
and memory of writing its workbook (a streaming writer adds the same memory at any size)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

from run import PYTHON, measure

LIMIT = 100  # calls per second: a scaled stand-in for Partner Center's 500 per minute
PER_CUSTOMER = 10
SERVE = [PYTHON, "-m", "bulkpatch", "sandbox", "--port", "0"]
EXPORT = [PYTHON, "-m", "bulkpatch", "export", "--all", "--target"]

# Build what an export of `rows` subscriptions reads (not timed), then time making its rows and
# writing its workbook, and watch how much memory the writing adds (sampled every 5 ms).
WRITE_EXPORT = """
import os, sys, threading, time
from datetime import UTC, datetime
from pathlib import Path
from bulkpatch.export import book as export_book
from bulkpatch.export import rows as export_rows
from bulkpatch.export.read import Customer, Read
from bulkpatch.sandbox.seed import synthetic

rows, per = int(sys.argv[1]), int(sys.argv[3])
now = datetime.now(UTC)
read = Read()
for customer, body in synthetic(rows // per, per, now):
    if customer not in read.items:
        read.customers.append(Customer(customer, "Contoso Ltd"))
        read.items[customer] = []
    read.items[customer].append(body)
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
started = time.perf_counter()
frame = export_rows.frame("subscriptions", read, export_rows.Filters(), now.date())
made = time.perf_counter() - started
before = peak = rss()
done = threading.Event()
def watch():
    global peak
    while not done.wait(0.005):
        peak = max(peak, rss())
watcher = threading.Thread(target=watch, daemon=True)  # a failed write must not hang the run
watcher.start()
export_book.write(
    Path(sys.argv[2]), "subscriptions", export_rows.headers("subscriptions"), frame, "2026-11-21"
)
seconds = time.perf_counter() - started
done.set()
watcher.join()
import xlsxwriter  # the floor: the same cells, as bare strings, through bare xlsxwriter
floor_started = time.perf_counter()
book = xlsxwriter.Workbook(sys.argv[2] + ".floor.xlsx", {"constant_memory": True})
ws = book.add_worksheet()
for r, values in enumerate(frame.iter_rows()):
    for c, value in enumerate(values):
        if value is not None:
            ws.write_string(r, c, value)
book.close()
floor = time.perf_counter() - floor_started
print(seconds, made, (max(peak, rss()) - before) / 2**20, floor)
"""


def serve(work: Path, customers: int) -> tuple[subprocess.Popen, str]:
    """A real `bulkpatch sandbox` of `customers` x PER_CUSTOMER synthetic subscriptions,
    limited to LIMIT calls a second, 50 ms added to every call."""
    options = ["--seed", f"{customers},{PER_CUSTOMER}", "--rate-limit", f"{LIMIT}/1"]
    process = subprocess.Popen(
        [*SERVE, "--db", str(work / "export.db"), *options, "--latency-ms", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, process.stdout.readline().split()[3]


def bench_export(work: Path, customers: int, rows: int) -> dict:
    process, url = serve(work, customers)
    try:
        out = str(work / "export.xlsx")
        run = measure([*EXPORT, url, "--json", "--quiet", "--rate", str(LIMIT * 60), "--out", out])
    finally:
        process.terminate()
        process.wait(30)
    summary = json.loads(run.stdout)
    calls, elapsed = summary["calls_total"], summary["elapsed_seconds"]
    pages = math.ceil(customers / 100)
    big = _write(work, rows, "big")
    small = _write(work, max(rows // 10, PER_CUSTOMER), "small")
    least = calls / LIMIT
    return {
        "customers": customers,
        "subscriptions": summary["rows"],
        "calls": summary["calls"],
        "calls_vs_pages_plus_customers": calls - (pages + customers),
        "throttled_429": summary["throttled_429"],
        "wall_seconds": elapsed,
        "least_possible_seconds": round(least, 2),
        "wall_vs_least": round(elapsed / least, 3),
        "write_rows": rows,
        "write_seconds": round(big[0], 2),
        "rows_seconds": round(big[1], 2),
        "bare_xlsxwriter_seconds": round(big[3], 2),
        "write_vs_bare_xlsxwriter": round(big[0] / big[3], 2),
        "write_growth_mb": round(big[2], 1),
        "tenth_size_write_growth_mb": round(small[2], 1),
        "targets": {
            "calls_vs_pages_plus_customers": "0",
            "wall_vs_least": "<= 1.1",
            "write_seconds": "< 10",
            "write_growth_mb": "flat (as at a tenth of the rows)",
        },
    }


def _write(work: Path, rows: int, name: str) -> tuple[float, float, float, float]:
    """Seconds to make the rows and write the workbook, of which making the rows, the MB the
    writing added, and the seconds bare xlsxwriter takes to write the same cells (the floor)."""
    done = measure(
        [PYTHON, "-c", WRITE_EXPORT, str(rows), str(work / f"{name}.xlsx"), str(PER_CUSTOMER)]
    )
    seconds, made, growth, floor = done.stdout.split()
    return float(seconds), float(made), float(growth), float(floor)
