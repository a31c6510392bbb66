"""What the page remembers: one job per uploaded sheet, export or reopened run folder (its
check, plan and run, each a run folder written by the command layer; a plan, run or export
works in a thread of its own), the rows of their reports a page at a time, and the recent
run folders found on disk.

A job's id is random and its files are the `reports` its runs returned: a request names a
job, a stage and a file name, and only a name found in that list is ever served.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from bulkpatch.apply.session import Watch
from bulkpatch.check.checker import Checked
from bulkpatch.check.values import GUID
from bulkpatch.commands.results import CheckRun
from bulkpatch.errors import BulkpatchError, InputError
from bulkpatch.load import quoting
from bulkpatch.load.csv_file import csv_grid
from bulkpatch.load.sheet import Dialect
from bulkpatch.report.stamp import placed
from bulkpatch.runs.folder import RunFolder
from bulkpatch.runs.journal import replay
from bulkpatch.runs.result import Run
from bulkpatch.settings import load_profile

SHEETS = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
PAGE = 50  # rows on one page
# The files of a run folder the page offers (reports, not the journal, the lock or the input).
REPORT = re.compile(r"^(check|plan|results|to-fix|undo|summary|matched)[\w-]*\.(csv|xlsx|jsonl?)$")


@dataclass
class Work:
    """A plan or a run the page started, in a thread of its own: its folder, the `Watch` it
    reports its progress to (and hears Stop from), and how it ended."""

    stage: str  # "plan" or "results"
    folder: Path
    watch: Watch = field(default_factory=Watch)
    thread: threading.Thread | None = None
    running: bool = True
    failure: str = ""  # why it stopped without a result (the CLI's one line)

    def shown(self) -> dict[str, Any]:
        return {**self.watch.figures(), "stopping": self.watch.stopping.is_set()}


@dataclass
class Job:
    """One uploaded sheet (or a run folder opened again) and the runs made from it."""

    id: str
    name: str  # the file's name as the user had it: shown, never used as a path
    sheet: Path  # where the upload is kept, under a generated name
    folder: Path  # the check's run folder; the plan's and the run's sit beside it
    stages: dict[str, Run] = field(default_factory=dict)  # check, plan, results
    target: str = "sandbox"  # where the plan read, and so where the run sends
    busy: threading.Lock = field(default_factory=threading.Lock)  # one run at a time
    work: Work | None = None  # the latest plan or run started from the page
    where: dict[str, str | None] | None = None  # a reopened run folder's target, as its files say
    _frames: dict[Path, pl.DataFrame] = field(default_factory=dict)

    def file(self, stage: str, name: str) -> Path | None:
        """A report of this job's `stage` named `name`, if that run wrote one."""
        run = self.stages.get(stage)
        return next((p for p in run.reports if p.name == name), None) if run else None

    def next_folder(self, stage: str) -> Path:
        """A new folder beside the check's for a plan or a run (never one that exists)."""
        first = self.folder.with_name(f"{self.folder.name}-{stage}")
        folder, n = first, 2
        while folder.exists():
            folder, n = first.with_name(f"{first.name}-{n}"), n + 1
        return folder

    @property
    def parts(self) -> list[Checked]:
        """The sheet's parts as checked (a workbook's sheets), from the earliest stage known."""
        run = next(self.stages[s] for s in ("check", "plan", "results") if s in self.stages)
        return run.parts if isinstance(run, CheckRun) else run.prepared.parts  # type: ignore[attr-defined]

    @property
    def running(self) -> bool:
        return self.work is not None and self.work.running

    def rows(self, stage: str, part: int) -> pl.DataFrame:
        """The per-row report of the stage's `part`-th sheet (the user's columns, `row`, and
        ours), read once; a stage's reports are named for it (`check.csv`, `plan-orders.csv`)."""
        run = self.stages[stage]
        tables = [p for p in run.reports if p.suffix == ".csv" and _is_table(p, stage)]
        path = tables[min(part, len(tables) - 1)]
        if path not in self._frames:
            frame = read_report(path, self.parts[0].sheet.dialect)
            at = frame.columns.index("row")  # ours first: the verdict is what the page is for
            self._frames[path] = frame.select(frame.columns[at:] + frame.columns[:at])
        return self._frames[path]

    def start(self, stage: str, folder: Path, call: Callable[..., Run], **options: Any) -> bool:
        """Start `call` (plan, apply or export) in a thread of its own, writing `folder`, so
        the page can show its progress; False when a plan or a run of this sheet is under way
        (`options` may hold the `command` the reports name)."""
        if not self.busy.acquire(blocking=False):
            return False
        self.work = Work(stage, folder)
        options["progress"] = self.work.watch
        self.work.thread = threading.Thread(
            target=self._run, args=(self.work, call, options), daemon=True
        )
        self.work.thread.start()
        return True

    def _run(self, work: Work, command: Callable[..., Run], options: dict[str, Any]) -> None:
        try:
            run = command(**options)
            self.stages[work.stage] = run
            if work.stage == "plan":  # a new plan: an older plan's run is not its run
                self.target = options["target"]  # where this plan read: its run sends there
                self.stages.pop("results", None)
        except BulkpatchError as exc:  # the one line the CLI would print, naming the upload
            work.failure = str(exc).replace(str(self.sheet.resolve()), self.name)
            work.failure = work.failure.replace(str(self.sheet), self.name)
            if work.stage == "export" and not any(work.folder.iterdir()):
                work.folder.rmdir()  # an export that wrote nothing leaves no folder behind
        except BaseException as exc:  # a bug (or a panic inside Polars): say it, never spin
            work.failure = f"unexpected error: {exc!r}; its run folder is {work.folder}"
        finally:
            work.running = False
            self.busy.release()


def _is_table(path: Path, stem: str) -> bool:
    return path.stem == stem or (path.stem.startswith(f"{stem}-") and path.stem != "plan-seats")


def read_report(path: Path, dialect: Dialect) -> pl.DataFrame:
    """A CSV report as text cells, in the separator and encoding it was written with, each as
    the sheet had it: a page runs no formula, so the quote the CSV puts before formula-like
    text (`'=HYPERLINK(...)`) is taken off again, on the cells its record names (`quoting`),
    and the record itself is not shown."""
    ours = "utf-16" if dialect.encoding == "utf-16" else "utf-8"  # as `report.write_csv` writes
    text = path.read_bytes().decode(ours, errors="replace").lstrip("\ufeff")
    frame = pl.read_csv(text.encode(), separator=dialect.separator, infer_schema=False)
    at = quoting.record_at(frame.columns)
    if at is None:
        return frame
    record = frame.get_column(frame.columns[at])
    cells = frame.drop(record.name)
    return quoting.unquote(cells, cells.columns, record)[0]


class Jobs:
    """The jobs of this server, by id; uploads are kept under `base`; runs sign in with
    `profile` (None: the default one)."""

    def __init__(self, base: Path, profile: str | None = None) -> None:
        self.base, self.profile = base, profile
        self._jobs: dict[str, Job] = {}

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def new(self, name: str, data: bytes) -> Job:
        """A job for an uploaded sheet: a new folder named for it (made safe), the file inside
        under a generated name (the safe stem, a random part, the sheet's own extension)."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-")[:40] or "sheet"
        folder = self._folder(stem)
        sheet = folder / f"{stem}-{secrets.token_hex(4)}{Path(name).suffix.lower()}"
        sheet.write_bytes(data)
        return self._add(Job(secrets.token_urlsafe(12), Path(name).name, sheet, folder))

    def export(self) -> Job:
        """A job for an export from the page: its workbook is written into a new folder."""
        folder = self._folder("export")
        return self._add(
            Job(secrets.token_urlsafe(12), "export.xlsx", folder / "export.xlsx", folder)
        )

    def _folder(self, stem: str) -> Path:
        first = self.base / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}"
        folder, n = first, 2
        while folder.exists():
            folder, n = first.with_name(f"{first.name}-{n}"), n + 1
        folder.mkdir(parents=True)
        return folder

    def reopened(self, folder: Path) -> Job:
        """A job for a run folder from the list (to resume it), reading the folder's own copy
        of its sheet; InputError when it is not a run folder."""
        run = RunFolder.opened(folder, None)
        name = re.sub(r"-[0-9a-f]{8}(\.\w+)$", r"\1", run.source.name)  # as uploaded here
        job = Job(
            secrets.token_urlsafe(12), name, run.sheet, folder, where=_where(run, self.profile)
        )
        return self._add(job)

    def drop(self, job: Job) -> None:
        """Forget a job whose sheet could not be checked, and its folder."""
        self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def _add(self, job: Job) -> Job:
        self._jobs[job.id] = job
        return job

    def stop_runs(self) -> list[Path]:
        """Stop every run under way as Ctrl-C stops `apply` (calls in flight finish, the
        journal is kept); the folders of those stopped, to resume."""
        working = [j.work for j in self._jobs.values() if j.work and j.work.running]
        for work in working:
            work.watch.stop("interrupted (Ctrl-C on bulkpatch ui)")
        return [w.folder for w in working if w.stage == "results"]

    def wait(self, timeout: float) -> None:
        """Wait for the runs under way to end (a plan that outlives `timeout` is left: it
        writes nothing Partner Center holds)."""
        for job in list(self._jobs.values()):
            if job.work and job.work.thread:
                job.work.thread.join(timeout)


def page(frame: pl.DataFrame, outcome: str | None, number: int) -> dict[str, Any]:
    """One page of rows (filtered by outcome): headers, rows, which page of how many."""
    if outcome:
        frame = frame.filter(pl.col("outcome") == outcome)
    shown, number, pages = sliced(frame, number)
    return {
        "headers": frame.columns,
        "rows": [[v or "" for v in r] for r in shown.iter_rows()],
        "total": frame.height,
        "number": number,
        "pages": pages,
    }


def sliced(frame: pl.DataFrame, number: int) -> tuple[pl.DataFrame, int, int]:
    """Page `number` of `frame` (PAGE rows; the first or last page when out of range), that
    page's number, and how many pages there are."""
    pages = max(1, -(-frame.height // PAGE))
    number = min(max(number, 1), pages)
    return frame.slice((number - 1) * PAGE, PAGE), number, pages


def recent(base: Path, limit: int = 15) -> list[dict[str, str]]:
    """The newest run folders under `base` and the state each is in, from its files."""
    if not base.is_dir():
        return []
    folders = sorted((p for p in base.iterdir() if p.is_dir()), reverse=True)[:limit]
    return [{"name": f.name, "state": folder_state(f)} for f in folders]


def folder_state(folder: Path) -> str:
    """What a run folder's files say it got to: checked, planned, applied, interrupted, or
    running (another process holds it: a CLI run, or a resume, under way)."""
    if (folder / "journal.jsonl").is_file() and RunFolder.holder(folder):
        return "running"
    if (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        return "interrupted" if summary.get("interrupted") else "applied"
    if (folder / "journal.jsonl").is_file():
        return "interrupted"
    if (folder / "plan.csv").is_file() or any(folder.glob("plan-*.csv")):
        return "planned"
    if (folder / "check.csv").is_file() or any(folder.glob("check-*.csv")):
        return "checked"
    return "started"


def in_progress(folder: Path) -> dict[str, Any]:
    """A run another process is applying, from its lock and its journal: who holds it, and
    how many of its changes have finished."""
    run = RunFolder.opened(folder, None)
    finished = len(replay(folder / "journal.jsonl").finished)
    return {"holder": RunFolder.holder(folder), "finished": finished, "total": len(run.read_plan())}


def finished(folder: Path) -> dict[str, Any]:
    """What a finished run did, from its files: rows by outcome (its summary) and the rows
    that did not go (its to-fix sheets: header, rows), as its Results page showed them."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    counts = {o: n for o, n in summary.get("outcomes", {}).items() if n}
    fixes = []
    for path in sorted(folder.glob("to-fix*.csv")):
        grid = csv_grid(path)[0]
        rows = [["" if v is None else v for v in r] for r in grid.head(FIX_SHOWN + 1).rows()]
        fixes.append(
            {"name": path.name, "header": rows[0], "rows": rows[1:], "all": grid.height - 1}
        )
    return {"counts": counts, "fixes": fixes}


FIX_SHOWN = 100  # rows of a to-fix sheet a reopened run shows (the file has them all)


def left_to_send(folder: Path, profile: str | None = None) -> dict[str, Any]:
    """What resuming a run folder with `profile` would do: the changes not finished yet, and
    whether they go to a real Partner Center (anything but a sandbox on this machine), which
    the page asks the user to confirm by typing that number, as it asks before a first run."""
    run = RunFolder.opened(folder, None)
    changes, done, _ = run.settled(resume=True)
    return {"real": _place(run, profile)[0] != "sandbox", "pending": len(changes) - len(done)}


def run_folder(base: Path, name: str) -> Path | None:
    """The run folder `name` among those under `base` (a name from the list, never a path)."""
    if not base.is_dir():
        return None
    return next((p for p in base.iterdir() if p.is_dir() and p.name == name), None)


def folder_reports(folder: Path) -> list[Path]:
    """The reports a run folder holds, by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and REPORT.match(p.name))


def _where(run: RunFolder, profile: str | None) -> dict[str, str | None]:
    """Where a run folder's run sends, as its summary says (`report`), else its manifest."""
    summary = run.path / "summary.json"
    said = json.loads(summary.read_text("utf-8")).get("report") if summary.is_file() else None
    if said:
        return {"where": said["where"], "words": said["target"], "tenant": said["partner_tenant"]}
    where, words = _place(run, profile)
    return {"where": where, "words": words, "tenant": None}


def _place(run: RunFolder, profile: str | None) -> tuple[str, str]:
    """Where a run folder's run sends, from its manifest and `profile` (what `production`
    means), as its reports' stamp says it."""
    from bulkpatch.network.target import production_url, where

    production, embedded = production_url(load_profile(profile)), run.settings["embedded"]
    target = run.settings["target"]
    url = production if target == "production" else target.rstrip("/")  # as `resolve` has it
    return placed(where(url, production, embedded), url, embedded=embedded)


def export_options(form: Mapping[str, Any], targets: tuple[str, ...]) -> dict[str, Any]:
    """The Start page's export form as `export_file`'s options: every customer, or the
    tenant ids typed (one per line, or separated by commas); the kind; the renewal window."""
    target = form.get("target")
    if target not in targets:
        raise InputError("choose where to export from: the sandbox or production.")
    typed = [t for t in re.split(r"[\s,;]+", str(form.get("customers") or "")) if t]
    every = form.get("scope") != "listed"
    if not every and not typed:
        raise InputError("type the customers' tenant ids, or choose every customer.")
    wrong = next((t for t in typed if not every and not re.match(GUID, t)), None)
    if wrong is not None:
        shown = wrong if len(wrong) <= 40 else wrong[:39] + "…"
        raise InputError(
            f'"{shown}" is not a tenant id: a customer\'s tenant id looks like '
            "0f0e0d0c-1b2a-4c3d-8e9f-a0b1c2d3e4f5 (Partner Center shows it as Microsoft ID)."
        )
    window = str(form.get("renewing") or "").strip()
    if window and form.get("kind") == "orders":
        raise InputError("the renewal window is for subscriptions: for orders, choose any time.")
    return {
        "target": target,
        "all_customers": every,
        "customers": None if every else typed,
        "kind": form.get("kind") or "subscriptions",
        "renewing_within": window or None,
    }
