"""bulkpatch benchmarks: speed and economy of calls, each figure a ratio taken in the same run.

    python benchmarks/run.py [--quick] [--out FILE] [--only FIGURE ...]

Makes its own data in a temporary folder, runs the real CLI and a real `bulkpatch sandbox`
server on 127.0.0.1, prints a table and writes the figures as JSON (default
benchmarks/results.json, or results-quick.json with --quick). `--only matching` runs just that
figure (repeatable; the names are the JSON's groups) and updates it in the JSON file, keeping
the others as they were. Absolute times vary from machine to machine; the targets are ratios
against a floor or a limit measured here, in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import xlsxwriter

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RUNS = 5  # each side of a timing ratio is the best of this many runs
NS = uuid.UUID("1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b")


@dataclass
class Sizes:
    check_rows: int
    excel_rows: int
    apply_rows: int
    customers: int
    peer_rows: int
    export_customers: int
    export_rows: int
    page_rows: int
    wide_rows: int
    wide_columns: tuple[int, ...]
    match_customers: int
    match_rows: int
    match_runs: int  # each plan of the full size takes half a minute: the best of three


FULL = Sizes(
    check_rows=1_000_000,
    excel_rows=100_000,
    apply_rows=2_000,
    customers=40,
    peer_rows=2_000,
    export_customers=200,
    export_rows=100_000,
    page_rows=100_000,
    wide_rows=50,
    wide_columns=(100, 1_000, 4_000, 16_000),
    match_customers=2_000,
    match_rows=100_000,
    match_runs=3,
)
QUICK = Sizes(
    check_rows=100_000,
    excel_rows=10_000,
    apply_rows=300,
    customers=6,
    peer_rows=60,
    export_customers=20,
    export_rows=10_000,
    page_rows=10_000,
    wide_rows=50,
    wide_columns=(100, 1_000, 4_000),
    match_customers=100,
    match_rows=2_000,
    match_runs=1,
)


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    stdout: str


# Linux carries a process's peak memory across fork and exec, and this process holds benchmark
# data; so a small launcher forks each measured command, which then reports its own peak.
LAUNCHER = """
import os, sys, time
report, args = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(args[0], args)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as handle:
    wall, cpu = time.perf_counter() - started, usage.ru_utime + usage.ru_stime
    handle.write(f"{wall} {cpu} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(args: list[str]) -> Measured:
    """Run a process; its wall time, CPU time and peak memory (from the kernel, via wait4).

    Pending file writes are flushed first (not timed), so no run pays for an earlier one's.
    """
    os.sync()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "usage"
        process = subprocess.run(
            [PYTHON, "-c", LAUNCHER, str(report), *args], capture_output=True, text=True
        )
        if process.returncode not in (0, 1):
            raise SystemExit(f"benchmark step failed: {' '.join(args)}\n{process.stderr}")
        wall, cpu, peak_kb = report.read_text().split()
    return Measured(float(wall), float(cpu), int(peak_kb) / 1024, process.stdout)


def best(*commands: list[str], runs: int = RUNS) -> list[Measured]:
    """The fastest of `runs` runs of each command, taking turns so that both sides of a ratio
    meet the same moments of this shared machine (noise only ever adds time)."""
    rounds = [[measure(args) for args in commands] for _ in range(runs)]
    return [min(column, key=lambda m: m.seconds) for column in zip(*rounds, strict=True)]


# --- data --------------------------------------------------------------------------------------


def ids(n: int, salt: str) -> list[str]:
    return [str(uuid.uuid5(NS, f"{salt}-{i}")) for i in range(n)]


def subscriptions_frame(rows: int, customers: int, mistakes: bool = False) -> pl.DataFrame:
    """A true-up sheet: every row a change (seats, auto-renew or a rename). With `mistakes`,
    about 0.3% of rows are wrong: no seats, seats in words, a subscription on two rows."""
    customer_ids = ids(customers, "customer")
    per = -(-rows // customers)
    return pl.DataFrame(
        {
            "Customer": [f"Customer {i // per}" for i in range(rows)],
            "Customer ID": [customer_ids[i // per] for i in range(rows)],
            "Subscription ID": [
                str(uuid.uuid5(NS, f"sub-{i - 1 if mistakes and i % 9_973 == 1 else i}"))
                for i in range(rows)
            ],
            "Quantity": [
                "0"
                if mistakes and i % 499 == 7
                else "ten"
                if mistakes and i % 997 == 3
                else str(5 + i % 40)
                for i in range(rows)
            ],
            "Auto renew": ["yes" if i % 3 else "no" for i in range(rows)],
            "Friendly name": [f"Team {i % 97}" if i % 5 == 0 else "" for i in range(rows)],
            "Notes": ['=HYPERLINK("x")' if i % 1000 == 0 else "" for i in range(rows)],
        }
    )


def write_xlsx(frame: pl.DataFrame, path: Path) -> None:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("Subscriptions")
    sheet.write_row(0, 0, frame.columns)
    for r, row in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(row):
            if frame.columns[c] == "Quantity":
                sheet.write_number(r, c, float(value))
            elif value:
                sheet.write_string(r, c, value)
    book.close()


# --- the figures ---------------------------------------------------------------------------


def bench_check(work: Path, size: Sizes) -> dict:
    sheet = work / "check.csv"
    frame = subscriptions_frame(size.check_rows, 2_000, mistakes=True)
    frame.write_csv(sheet)
    seats = pl.col("Quantity").cast(pl.Int64, strict=False)
    wrong = frame.select(
        (seats.is_null() | (seats < 1) | pl.col("Subscription ID").is_duplicated()).sum()
    ).item()
    floor_code = (
        "import polars as pl, sys; "
        "pl.read_csv(sys.argv[1], infer_schema=False).write_csv(sys.argv[2])"
    )
    floor, ours = best(
        [PYTHON, "-c", floor_code, str(sheet), str(work / "floor.csv")],
        [
            PYTHON,
            "-m",
            "bulkpatch",
            "check",
            str(sheet),
            "--no-xlsx",
            "--json",
            "--out",
            str(work / "check"),
        ],
    )
    report = pl.read_csv(work / "check" / "check.csv", infer_schema=False)
    assert report.height == size.check_rows
    assert report.filter(pl.col("outcome") == "invalid").height == wrong > 0
    return {
        "rows": size.check_rows,
        "invalid_rows": wrong,
        "seconds": round(ours.seconds, 2),
        "floor_seconds": round(floor.seconds, 2),
        "time_vs_floor": round(ours.seconds / floor.seconds, 2),
        "peak_mb": round(ours.peak_mb),
        "floor_peak_mb": round(floor.peak_mb),
        "targets": {"time_vs_floor": "<= 3", "peak_mb": "<= 1024"},
    }


def bench_excel(work: Path, size: Sizes) -> dict:
    frame = subscriptions_frame(size.excel_rows, 200)
    book = work / "sheet.xlsx"
    write_xlsx(frame, book)
    bare_code = "import polars as pl, sys; pl.read_excel(sys.argv[1])"
    load_code = "import sys; from bulkpatch.load.reader import load; load(sys.argv[1])"
    bare, load = best([PYTHON, "-c", bare_code, str(book)], [PYTHON, "-c", load_code, str(book)])
    small_sheet, big_sheet = work / "small.csv", work / "big.csv"
    frame.head(max(size.excel_rows // 10, 1)).write_csv(small_sheet)
    frame.write_csv(big_sheet)
    small = measure([PYTHON, "-c", WRITE_REPORT, str(small_sheet), str(work / "small.xlsx")])
    big = measure([PYTHON, "-c", WRITE_REPORT, str(big_sheet), str(work / "big.xlsx")])
    seconds, growth = (float(x) for x in big.stdout.split())
    small_growth = float(small.stdout.split()[1])
    return {
        "rows": size.excel_rows,
        "read_seconds": round(load.seconds, 2),
        "bare_read_seconds": round(bare.seconds, 2),
        "read_vs_bare": round(load.seconds / bare.seconds, 2),
        "write_report_seconds": round(seconds, 2),
        "write_growth_mb": round(growth, 1),
        "tenth_size_write_growth_mb": round(small_growth, 1),
        "targets": {
            "read_vs_bare": "<= 3",
            "write_report_seconds": "<= 5",
            "write_growth_mb": "flat (as at a tenth of the rows)",
        },
    }


# Check a sheet, then time writing its check.xlsx and watch how much memory the writing adds
# (sampled every 5 ms): a streaming writer adds the same at any number of rows.
WRITE_REPORT = """
import os, sys, threading, time
from pathlib import Path
from bulkpatch.report import writers as report
from bulkpatch.check.checker import check
from bulkpatch.load.reader import load

part = check(load(sys.argv[1])[0])
table = report.table(part.sheet, part.outcomes, part.issues)
summary = report.Summary(None, [("Outcome", part.counts())])
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = peak = rss()
done = threading.Event()
def watch():
    global peak
    while not done.wait(0.005):
        peak = max(peak, rss())
watcher = threading.Thread(target=watch, daemon=True)  # a failed write must not hang the run
watcher.start()
started = time.perf_counter()
report.write_workbook(Path(sys.argv[2]), [table], summary)
seconds = time.perf_counter() - started
done.set()
watcher.join()
print(seconds, (max(peak, rss()) - before) / 2**20)
"""


def write_wide(work: Path, columns: int, rows: int) -> Path:
    """A sheet of `columns` columns (the keys, then notes) and `rows` rows, every cell written."""
    customer = ids(1, "customer")[0]
    header = [
        "Customer ID",
        "Subscription ID",
        "Quantity",
        *(f"Note {i}" for i in range(columns - 3)),
    ]
    lines = [",".join(header)] + [
        ",".join([customer, sub, str(1 + r), *(f"n{r}.{i}" for i in range(columns - 3))])
        for r, sub in enumerate(ids(rows, "wide"))
    ]
    sheet = work / f"wide-{columns}.csv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


# Load a sheet `runs` times in one process (its imports are not the reading): the fastest in
# wall time and in CPU time (all threads: what reading it costs, whatever else the machine is
# doing), and whether it was read or refused.
LOAD_SHEET = """
import sys, time
from bulkpatch.errors import InputError
from bulkpatch.load.reader import load

wall, cpu, said = [], [], "read"
for _ in range(int(sys.argv[2])):
    started, used = time.perf_counter(), time.process_time()
    try:
        load(sys.argv[1])
    except InputError:
        said = "refused"
    wall.append(time.perf_counter() - started)
    cpu.append(time.process_time() - used)
print(min(wall), min(cpu), said)
"""


def bench_wide(work: Path, size: Sizes) -> dict:
    """Reading costs a sheet's cells, whatever its shape: the time per cell of a sheet of a few
    rows from 100 columns to the most bulkpatch reads (16,000), and how soon a sheet wider than
    that (20,000 columns, 100,000) is refused. Flatness is judged on CPU time per cell, which a
    busy machine changes less than wall time."""

    def loaded(columns: int) -> tuple[float, float, str]:
        sheet = write_wide(work, columns, size.wide_rows)
        wall, cpu, said = measure([PYTHON, "-c", LOAD_SHEET, str(sheet), str(RUNS)]).stdout.split()
        return float(wall), float(cpu), said

    wall_per_cell, cpu_per_cell = {}, {}
    for columns in size.wide_columns:
        wall, cpu, said = loaded(columns)
        assert said == "read", columns
        cells = columns * size.wide_rows
        wall_per_cell[str(columns)] = round(wall / cells * 1e6, 2)
        cpu_per_cell[str(columns)] = round(cpu / cells * 1e6, 2)
    refused = {}
    for columns in (20_000, 100_000):
        wall, _, said = loaded(columns)
        assert said == "refused", columns
        refused[str(columns)] = round(wall, 3)
    spread = max(cpu_per_cell.values()) / min(cpu_per_cell.values())
    return {
        "rows": size.wide_rows,
        "read_us_per_cell": wall_per_cell,
        "cpu_us_per_cell": cpu_per_cell,
        "per_cell_spread": round(spread, 2),
        "refused_seconds": refused,
        "slowest_refusal_seconds": max(refused.values()),
        "targets": {"per_cell_spread": "<= 2 (flat)", "slowest_refusal_seconds": "<= 1"},
    }


class SandboxServer:
    """A real `bulkpatch sandbox` process on 127.0.0.1 seeded from the benchmark sheet."""

    def __init__(self, work: Path, sheet: Path, *options: str) -> None:
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bulkpatch",
                "sandbox",
                "--port",
                "0",
                "--db",
                str(work / "sb.db"),
                "--seed-from",
                str(sheet),
                *options,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self.process.stdout.readline().split()[3]

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sandbox/reset", timeout=60)

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_sandbox/stats", timeout=60).json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def apply_run(
    work: Path, sheet: Path, url: str, name: str, rate: float, concurrency: int
) -> tuple[dict, Measured]:
    run = measure(
        [
            PYTHON,
            "-m",
            "bulkpatch",
            "apply",
            str(sheet),
            "--target",
            url,
            "--json",
            "--quiet",
            "--rate",
            str(rate),
            "--concurrency",
            str(concurrency),
            "--out",
            str(work / name),
        ]
    )
    return json.loads(run.stdout), run


def peer_loop(url: str, rows: list[dict]) -> float:
    """What people write today: GET then PATCH per row, one at a time, with httpx."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": "Bearer x"}, timeout=60) as http:
        for row in rows:
            path = f"/v1/customers/{row['Customer ID']}/subscriptions/{row['Subscription ID']}"
            while (current := http.get(path)).status_code == 429:
                time.sleep(int(current.headers["Retry-After"]))
            body = current.json() | {
                "quantity": int(row["Quantity"]),
                "autoRenewEnabled": row["Auto renew"] == "yes",
            }
            while http.patch(path, json=body).status_code == 429:
                time.sleep(1)
    return time.perf_counter() - started


def bench_calls(work: Path, size: Sizes) -> dict:
    frame = subscriptions_frame(size.apply_rows, size.customers).drop("Notes")
    sheet = work / "month-end.csv"
    frame.write_csv(sheet)
    limit = 100  # per second: a scaled stand-in for Partner Center's 500 per minute
    server = SandboxServer(work, sheet, "--rate-limit", f"{limit}/1", "--latency-ms", "50")
    try:
        summary, _ = apply_run(work, sheet, server.url, "economy", limit * 60, 8)
        served = server.stats()
        server.reset()
        peer_frame = frame.head(size.peer_rows)
        peer_seconds = peer_loop(server.url, peer_frame.to_dicts())
    finally:
        server.close()
    calls, elapsed = summary["calls_total"], summary["elapsed_seconds"]
    changed = summary["outcomes"]["ok"]
    ours_per_row = elapsed / changed
    peer_per_row = peer_seconds / size.peer_rows
    least = calls / limit
    return {
        "rows": size.apply_rows,
        "customers": size.customers,
        "changed_rows": changed,
        "calls": calls,
        "calls_per_changed_row": round(calls / changed, 3),
        "achieved_calls_per_second": round(calls / elapsed, 1),
        "limit_per_second": limit,
        "achieved_vs_limit": round(calls / elapsed / limit, 3),
        "throttled_429": summary["throttled_429"],
        "server_429": served["throttled"],
        "wall_seconds": elapsed,
        "least_possible_seconds": round(least, 2),
        "wall_vs_least": round(elapsed / least, 3),
        "peer_rows": size.peer_rows,
        "peer_seconds": round(peer_seconds, 2),
        "peer_vs_bulkpatch_per_row": round(peer_per_row / ours_per_row, 1),
        "targets": {
            "calls_per_changed_row": "<= 1.03",
            "achieved_vs_limit": ">= 0.95",
            "throttled_429": "0",
            "wall_vs_least": "<= 1.1",
        },
    }


def bench_overhead(work: Path, size: Sizes) -> dict:
    frame = subscriptions_frame(size.apply_rows, size.customers).drop("Notes")
    sheet = work / "overhead.csv"
    frame.write_csv(sheet)
    server = SandboxServer(work, sheet)
    try:
        summary, run = apply_run(work, sheet, server.url, "overhead", 10_000_000, 8)
    finally:
        server.close()
    calls, elapsed = summary["calls_total"], summary["elapsed_seconds"]
    return {
        "calls": calls,
        "requests_per_second": round(calls / elapsed),
        "client_cpu_ms_per_request": round(run.cpu_seconds * 1000 / calls, 2),
        "targets": {"requests_per_second": ">= 500"},
    }


def bench_export(work: Path, size: Sizes) -> dict:
    from bench_export import bench_export  # beside this file; it uses `measure` from here

    return bench_export(work, size.export_customers, size.export_rows)


def bench_ui(work: Path, size: Sizes) -> dict:
    from bench_ui import bench_ui  # beside this file, as bench_export

    return bench_ui(work, size.page_rows)


def bench_matching(work: Path, size: Sizes) -> dict:
    from bench_match import bench_match  # beside this file, as bench_export

    return bench_match(work, size.match_customers, size.match_rows, size.match_runs)


FIGURES = {
    "check": bench_check,
    "excel": bench_excel,
    "wide": bench_wide,
    "economy_of_calls": bench_calls,
    "client_overhead": bench_overhead,
    "export": bench_export,
    "ui": bench_ui,
    "matching": bench_matching,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--out", type=Path, help="where to write the JSON figures")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(FIGURES),
        metavar="FIGURE",
        help=f"run only this figure (repeatable): {', '.join(FIGURES)}",
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    out = args.out or ROOT / "benchmarks" / ("results-quick.json" if args.quick else "results.json")
    figures: dict[str, object] = {
        "quick": args.quick,
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
    }
    if args.only and out.exists():  # the other figures stay as their last run left them
        kept = json.loads(out.read_text())
        if kept.get("quick") != args.quick:
            raise SystemExit(f"{out} holds {'quick' if kept.get('quick') else 'full'} figures")
        figures = kept | figures
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, bench in FIGURES.items():
            if args.only and name not in args.only:
                continue
            started = time.perf_counter()
            figures[name] = bench(work, size)
            print(f"{name}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    print(f"\nFigures written to {out}")


def table(figures: dict) -> str:
    rows = [("figure", "measured", "target")]
    for group, values in figures.items():
        if not isinstance(values, dict):
            continue
        for key, target in values.get("targets", {}).items():
            rows.append((f"{group}.{key}", str(values[key]), target))
    extra = figures.get("economy_of_calls", {})
    if isinstance(extra, dict) and "peer_vs_bulkpatch_per_row" in extra:
        rows.append(
            (
                "economy_of_calls.peer_vs_bulkpatch_per_row",
                str(extra["peer_vs_bulkpatch_per_row"]),
                "(higher is better)",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
