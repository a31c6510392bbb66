"""What the page remembers: one job per uploaded sheet (its check, plan and run, each a run
folder written by the command layer), the rows of their reports a page at a time, and the
recent run folders found on disk.

A job's id is random and its files are the `reports` its runs returned: a request names a
job, a stage and a file name, and only a name found in that list is ever served.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from bulkpatch.errors import BulkpatchError
from bulkpatch.journal import replay
from bulkpatch.results import CheckRun, Run
from bulkpatch.runfolder import JOURNAL
from bulkpatch.sheet import Dialect

SHEETS = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
PAGE = 50  # rows on one page
# The files of a run folder the page offers (reports, not the journal, the lock or the input).
REPORT = re.compile(r"^(check|plan|results|to-fix|undo|summary)[\w-]*\.(csv|xlsx|jsonl?)$")


@dataclass
class Job:
    """One uploaded sheet and the runs made from it."""

    id: str
    name: str  # the file's name as the user had it: shown, never used as a path
    sheet: Path  # where the upload is kept, under a generated name
    folder: Path  # the check's run folder; the plan's and the run's sit beside it
    stages: dict[str, Run] = field(default_factory=dict)  # check, plan, results
    target: str = "sandbox"  # where the plan read, and so where the run sends
    busy: threading.Lock = field(default_factory=threading.Lock)  # one run at a time
    sending: Path | None = None  # the folder of the latest run (its journal is its progress)
    running: bool = False
    failure: str = ""  # why the latest run stopped without results
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

    def rows(self, stage: str, part: int) -> pl.DataFrame:
        """The per-row report of the stage's `part`-th sheet (the user's columns, `row`, and
        ours), read once; a stage's reports are named for it (`check.csv`, `plan-orders.csv`)."""
        run = self.stages[stage]
        tables = [p for p in run.reports if p.suffix == ".csv" and _is_table(p, stage)]
        path = tables[min(part, len(tables) - 1)]
        if path not in self._frames:
            frame = read_report(path, self.check.parts[0].sheet.dialect)
            at = frame.columns.index("row")  # ours first: the verdict is what the page is for
            self._frames[path] = frame.select(frame.columns[at:] + frame.columns[:at])
        return self._frames[path]

    def send(self, command: Callable[..., Run], **options: Any) -> bool:
        """Start `command` (apply) in a thread of its own, into a new folder, so the page can
        show its progress; False when a plan or a run of this sheet is under way."""
        if not self.busy.acquire(blocking=False):
            return False
        self.sending, self.running, self.failure = self.next_folder("results"), True, ""
        self.stages.pop("results", None)
        thread = threading.Thread(target=self._send, args=(command, options), daemon=True)
        thread.start()
        return True

    def _send(self, command: Callable[..., Run], options: dict[str, Any]) -> None:
        try:
            self.stages["results"] = command(out=self.sending, **options)
        except BulkpatchError as exc:  # the one line the CLI would print
            self.failure = str(exc)
        except BaseException as exc:  # a bug (or a panic inside Polars): say it, never spin
            self.failure = f"unexpected error: {exc!r}; its run folder is {self.sending}"
        finally:
            self.running = False
            self.busy.release()

    def progress(self) -> dict[str, Any]:
        """The latest run so far, from its journal: changes finished, by outcome."""
        finished = replay(self.sending / JOURNAL).finished if self.sending else {}
        outcomes = Counter(e["outcome"] for e in finished.values())
        return {"done": len(finished), "outcomes": dict(outcomes)}

    @property
    def check(self) -> CheckRun:
        return self.stages["check"]  # type: ignore[return-value]


def _is_table(path: Path, stem: str) -> bool:
    return path.stem == stem or (path.stem.startswith(f"{stem}-") and path.stem != "plan-seats")


def read_report(path: Path, dialect: Dialect) -> pl.DataFrame:
    """A CSV report as text cells, in the separator and encoding it was written with."""
    text = path.read_bytes().decode(dialect.encoding, errors="replace").lstrip("\ufeff")
    return pl.read_csv(text.encode(), separator=dialect.separator, infer_schema=False)


class Jobs:
    """The jobs of this server, by id; uploads are kept under `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._jobs: dict[str, Job] = {}

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def new(self, name: str, data: bytes) -> Job:
        """A job for an uploaded sheet: a new folder named for it (made safe), the file inside
        under a generated name with the sheet's own extension."""
        suffix = Path(name).suffix.lower()
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-")[:40] or "sheet"
        first = self.base / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}"
        folder, n = first, 2
        while folder.exists():
            folder, n = first.with_name(f"{first.name}-{n}"), n + 1
        folder.mkdir(parents=True)
        sheet = folder / f"upload-{secrets.token_hex(4)}{suffix}"
        sheet.write_bytes(data)
        job = Job(secrets.token_urlsafe(12), Path(name).name, sheet, folder)
        self._jobs[job.id] = job
        return job


def page(frame: pl.DataFrame, outcome: str | None, number: int) -> dict[str, Any]:
    """One page of rows (filtered by outcome): headers, rows, which page of how many."""
    if outcome:
        frame = frame.filter(pl.col("outcome") == outcome)
    pages = max(1, -(-frame.height // PAGE))
    number = min(max(number, 1), pages)
    shown = frame.slice((number - 1) * PAGE, PAGE)
    return {
        "headers": frame.columns,
        "rows": [[v or "" for v in r] for r in shown.iter_rows()],
        "total": frame.height,
        "number": number,
        "pages": pages,
    }


def recent(base: Path, limit: int = 15) -> list[dict[str, str]]:
    """The newest run folders under `base` and the state each is in, from its files."""
    if not base.is_dir():
        return []
    folders = sorted((p for p in base.iterdir() if p.is_dir()), reverse=True)[:limit]
    return [{"name": f.name, "state": folder_state(f)} for f in folders]


def folder_state(folder: Path) -> str:
    """What a run folder's files say it got to: checked, planned, applied or interrupted."""
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


def run_folder(base: Path, name: str) -> Path | None:
    """The run folder `name` among those under `base` (a name from the list, never a path)."""
    if not base.is_dir():
        return None
    return next((p for p in base.iterdir() if p.is_dir() and p.name == name), None)


def folder_reports(folder: Path) -> list[Path]:
    """The reports a run folder holds, by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and REPORT.match(p.name))
