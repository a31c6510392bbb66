"""The run folder: one run's files, their names, the manifest and the fingerprint.

Nothing else in bulkpatch knows a file name. A run starts one of three ways: a new folder for
a sheet (`RunFolder.new`), a plan (`RunFolder.from_plan`: a new folder, the plan's stays as it
is), or an interrupted run (`RunFolder.resumed`); the last two check that the sheet and the
target are still the ones the folder was made for, and `settled` says which changes need no
sending. One process at a time writes a folder (`lock`). Files appear atomically
(`safe.atomic`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import polars as pl

from bulkpatch import portable, safe
from bulkpatch.errors import FolderFault, InputError, first_line
from bulkpatch.load import quoting
from bulkpatch.load.csv_file import csv_grid
from bulkpatch.load.sheet import Dialect
from bulkpatch.plan.assess import pinned
from bulkpatch.plan.changes import Change
from bulkpatch.report import writers as report
from bulkpatch.report.stamp import file_sha256
from bulkpatch.runs.journal import Journal, Replay, replay

MANIFEST, PLAN, JOURNAL = "run.json", "plan.jsonl", "journal.jsonl"
APPROVAL = "approval.json"  # the approval (or rejection) of the plan (README, "Controls")
AUDITED = "audit.json"  # the audit log line this folder's run wrote last
INPUT = "input"  # the folder's copy of the sheet: input.csv, input.xlsx
LOCK = ".lock"
T = TypeVar("T")
UNDO = {"subscriptions": "undo.csv", "orders": "undo-orders.csv"}


def _writes(method: Callable[..., T]) -> Callable[..., T]:
    """A method that writes into the folder: a refusal of the disk is a `FolderFault`."""

    @functools.wraps(method)
    def guarded(self: RunFolder, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise FolderFault(self.path, exc) from None

    return guarded


@dataclass
class RunFolder:
    """A run's folder and its manifest (the source, the settings, the fingerprint, the run id)."""

    path: Path
    manifest: dict[str, Any]
    _lock: IO[str] | None = field(default=None, repr=False)
    dialect: Dialect = field(default_factory=Dialect)  # how the input CSV was written: so are ours

    # --- the three ways to start ----------------------------------------------------------------

    @classmethod
    def new(
        cls,
        source: Path,
        settings: dict[str, Any],
        out: str | Path | None,
        base: str | Path,
        fresh: bool = False,
        identity: dict[str, Any] | None = None,
    ) -> RunFolder:
        """A new folder for `source` (`out`, or `<base>/<timestamp>-<name>/`); `fresh`: an
        `out` that already holds files is refused (a finished run is never overwritten);
        `identity`: who makes it (the manifest's `planned_by`, with `planned_at`)."""
        sha256 = file_sha256(source)
        manifest = {
            "source": str(source.resolve()),
            "input": f"{INPUT}{source.suffix.lower()}",
            "settings": settings,
            "sha256": sha256,  # what the reports say the input was
            "fingerprint": fingerprint(sha256, settings),
            "run_id": str(uuid.uuid4()),
            "planned_by": identity,
            "planned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        run = cls(make_folder(out, base, source, fresh), manifest)
        run._keep(source)
        return run

    @_writes
    def _keep(self, source: Path) -> None:
        """A copy of the sheet as it was sent: a resume reads it, wherever the sheet went."""
        shutil.copy2(source, self.path / self.manifest["input"])

    @classmethod
    def from_plan(
        cls, plan: str | Path, target: str | None, out: str | Path | None, base: str | Path
    ) -> RunFolder:
        """A new folder for applying the plan in `plan` (which stays as it is): its manifest,
        plan and copy of the sheet are copied over."""
        planned = cls.opened(plan, target)
        planned._same_sheet()
        run = cls(make_folder(out, base, planned.source, fresh=True), planned.manifest)
        for name in (MANIFEST, PLAN, APPROVAL, planned.manifest.get("input")):
            if name and (planned.path / name).exists():
                shutil.copy2(planned.path / name, run.path / name)
        return run

    @classmethod
    def resumed(cls, path: str | Path, target: str | None) -> RunFolder:
        """An interrupted (or finished) apply's folder, for the same target; its own copy of the
        sheet is read, so moving or editing the sheet since does not matter."""
        run = cls.opened(path, target)
        if not (run.path / JOURNAL).exists():
            raise InputError(
                f"{run.path}: is a plan that was never applied; apply it with "
                f"`bulkpatch apply --plan {run.path}` (its results then go to a new folder)."
            )
        if not (run.path / run.manifest.get("input", "")).is_file():
            run._same_sheet()  # a folder without its copy reads the sheet where it was
        return run

    @classmethod
    def opened(cls, path: str | Path, target: str | None) -> RunFolder:
        """A folder `bulkpatch plan` or `apply` wrote, for the same target."""
        folder = Path(path)
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            (folder / PLAN).stat()
        except (OSError, ValueError):
            raise InputError(
                f"{folder}: is not a bulkpatch run folder (no readable {MANIFEST} and {PLAN})."
            ) from None
        run = cls(folder, manifest)
        run._same_target(target)
        return run

    def _same_target(self, target: str | None) -> None:
        saved = self.settings
        if target in (None, saved["target"]) or (saved["embedded"] and target == "sandbox"):
            return
        raise InputError(
            f"{self.path}: was planned for {saved['target']}, not {target}; plan "
            "again for the new target."
        )

    def _same_sheet(self) -> None:
        source = self.source
        if (
            not source.exists()
            or fingerprint(file_sha256(source), self.settings) != self.manifest["fingerprint"]
        ):
            raise InputError(
                f"{self.path}: its sheet {source} has changed (or moved) since it was planned; "
                "plan again."
            )

    # --- one process at a time -----------------------------------------------------------------

    @_writes
    def lock(self) -> None:
        """Hold the folder for this process; the OS lets go when the process ends, so a
        `kill -9` never leaves a stale lock. Refused when another process holds it."""
        handle = (self.path / LOCK).open("a+", encoding="utf-8")
        try:
            portable.lock(handle)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InputError(
                f"{self.path}: is in use by {holder}; wait for it to finish (or stop it), "
                "then try again."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} ({' '.join(['bulkpatch', *sys.argv[1:3]])})")
        handle.flush()
        self._lock = handle

    @staticmethod
    def holder(path: Path) -> str | None:
        """Who holds the run folder at `path` now (`process 4242 (bulkpatch apply ...)`, as
        `lock` wrote it), or None when no process does: a probe of the same OS lock, let go at
        once, so a folder another process is applying is never taken for an interrupted one."""
        if not (path / LOCK).is_file():
            return None
        try:
            with (path / LOCK).open("a+", encoding="utf-8") as handle:
                try:
                    portable.lock(handle)
                except OSError:
                    handle.seek(0)
                    return handle.read().strip() or "another process"
                portable.unlock(handle)
        except OSError:  # cannot even be opened: not a lock anyone holds here
            return None
        return None

    def unlock(self) -> None:
        if self._lock is not None:
            portable.unlock(self._lock)
            self._lock.close()
            self._lock = None

    # --- the manifest ---------------------------------------------------------------------------

    @property
    def source(self) -> Path:
        return Path(self.manifest["source"])

    @property
    def sheet(self) -> Path:
        """The sheet to read: the folder's own copy when it has one."""
        copy = self.path / self.manifest.get("input", "")
        return copy if copy.is_file() else self.source

    @property
    def sha256(self) -> str:
        """The SHA-256 of the sheet as the run read it (its copy, or where it was)."""
        return self.manifest.get("sha256") or file_sha256(self.sheet)

    @property
    def settings(self) -> dict[str, Any]:
        """What decides what is sent: sheet, kind, target, and whether it is the embedded one."""
        return self.manifest["settings"]

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    # --- the plan and the journal ---------------------------------------------------------------

    @_writes
    def write_plan(self, entries: list[dict[str, Any]]) -> None:
        """The manifest and one JSON line per change (what plan read and would send)."""
        safe.write_json(self.path / MANIFEST, self.manifest)
        with safe.atomic(self.path / PLAN) as tmp, tmp.open("w", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(entry, default=str) + "\n")

    @property
    def plan_path(self) -> Path:
        return self.path / PLAN

    def read_plan(self) -> list[dict[str, Any]]:
        text = self.plan_path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line]

    def settled(self, resume: bool) -> tuple[list[Change], dict[str, dict[str, Any]], Replay]:
        """The plan's changes, the results known before sending anything (what the plan found
        already done or bound to fail, and, resuming, what the journal finished), and the
        journal's replay (its intents tell what may have landed)."""
        entries = self.read_plan()
        changes = [Change(**e["change"]) for e in entries]
        journaled = replay(self.path / JOURNAL) if resume else Replay()
        keys = {c.key.lower() for c in changes}
        journaled.damaged = [d.among(keys) for d in journaled.damaged]
        done = dict(journaled.finished)
        changes = [
            pinned(c, e["before"], e["body"]) if e.get("outcome") == "change" else c
            for c, e in zip(changes, entries, strict=True)
        ]
        for change, e in zip(changes, entries, strict=True):
            if e.get("outcome") == "no_change":
                done.setdefault(change.key, {"outcome": "no_change"})
            elif e.get("outcome") in ("would_fail", "conflict"):
                done.setdefault(
                    change.key,
                    {
                        "outcome": "failed" if e["outcome"] == "would_fail" else "conflict",
                        "error_code": e.get("error_code"),
                        "error_message": f"not sent: {e.get('error')}",
                    },
                )
        return changes, done, journaled

    def plan_fingerprint(self) -> str:
        """The SHA-256 of the plan as written: its manifest's bytes, then its plan file's. An
        approval holds it, so one byte changed in either after the approval is seen."""
        digest = hashlib.sha256()
        for name in (MANIFEST, PLAN):
            digest.update(hashlib.sha256((self.path / name).read_bytes()).digest())
        return digest.hexdigest()

    # --- the controls: the approval, the audit line ------------------------------------------

    @_writes
    def write_approval(self, record: dict[str, Any]) -> Path:
        safe.write_json(self.path / APPROVAL, record)
        return self.path / APPROVAL

    def approval(self) -> dict[str, Any] | None:
        """The plan's approval or rejection; None when it has none (or an unreadable one,
        which approves nothing)."""
        try:
            found = json.loads((self.path / APPROVAL).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    @_writes
    def write_audited(self, record: dict[str, Any]) -> None:
        safe.write_json(self.path / AUDITED, record)

    def audited(self) -> dict[str, Any] | None:
        """Which audit line this folder's run wrote last (`audit --verify` looks for it)."""
        try:
            found = json.loads((self.path / AUDITED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    @_writes
    def journal(self) -> Journal:
        return Journal(self.path / JOURNAL)

    # --- reports --------------------------------------------------------------------------------

    @_writes
    def write_tables(self, stem: str, tables: list[tuple[str, report.Table]]) -> list[Path]:
        """`<stem>.csv`, or `<stem>-<kind>.csv` each when the input had several sheets."""
        written = []
        for kind, t in tables:
            path = self.path / (f"{stem}.csv" if len(tables) == 1 else f"{stem}-{kind}.csv")
            report.write_csv(path, *t.for_csv(), t.dialect)
            written.append(path)
        return written

    @_writes
    def write_workbook(
        self,
        stem: str,
        tables: list[report.Table],
        summary: list[tuple[str, dict[str, Any]]],
        extra: list[tuple[str, pl.DataFrame]],
    ) -> list[Path]:
        """`<stem>.xlsx` (see `report.write_workbook`); none when Excel could not open it."""
        path = self.path / f"{stem}.xlsx"
        return [path] if report.write_workbook(path, tables, summary, extra) else []

    @_writes
    def write_fix(self, tables: list[report.Table], excel: bool) -> list[Path]:
        """The rows to fix and send again, in the input's own format: `to-fix.xlsx` (a sheet
        per input sheet, named as it was) or `to-fix.csv`; nothing when every row went."""
        for stale in ("to-fix.xlsx", "to-fix.csv"):  # a resume's rows replace the stop's
            (self.path / stale).unlink(missing_ok=True)
        if not tables:
            return []
        return self._as_input("to-fix", tables, excel)

    @_writes
    def write_matched(self, tables: list[report.Table], excel: bool) -> list[Path]:
        """The sheet with the ids matching found, in the input's own format: `matched.xlsx`
        (a sheet per input sheet) or `matched.csv` (README, "Matching")."""
        return self._as_input("matched", tables, excel)

    def _as_input(self, stem: str, tables: list[report.Table], excel: bool) -> list[Path]:
        """`<stem>.xlsx` (a sheet per input sheet, no Summary) or `<stem>.csv`, as the input
        was; nothing when Excel could not open the workbook."""
        path = self.path / f"{stem}.{'xlsx' if excel else 'csv'}"
        if not excel:
            report.write_csv(path, *tables[0].for_csv(), tables[0].dialect)
        elif not report.write_workbook(path, tables, None):
            return []
        return [path]

    @_writes
    def write_frame(self, name: str, frame: pl.DataFrame) -> list[Path]:
        """A plain table such as `plan-seats`, formula-like text quoted; nothing when empty."""
        if not frame.height:
            return []
        path = self.path / f"{name}.csv"
        quoted, headers = quoting.quote(frame, frame.columns)
        report.write_csv(path, headers, quoted, self.dialect)
        return [path]

    @_writes
    def write_summary(self, summary: dict[str, Any]) -> Path:
        safe.write_json(self.path / "summary.json", summary)
        return self.path / "summary.json"

    @_writes
    def earlier_undo(self) -> tuple[dict[str, pl.DataFrame], list[str]]:
        """The undo sheets an earlier attempt of this run wrote (a resume's replace them), every
        cell as text, by kind; and those that could not be read, each copied aside first (as
        `undo-unread.csv`) so that no byte of them is lost, with why."""
        found, unread = {}, []
        for kind, name in UNDO.items():
            path = self.path / name
            if not path.is_file():
                continue
            try:
                grid = csv_grid(path)[0]
                headers = [str(h) for h in grid.row(0)]
                if len(set(headers)) != len(headers):
                    raise InputError("its header row is not one bulkpatch writes")
            except (InputError, pl.exceptions.PolarsError, IndexError) as exc:
                aside = path.with_name(f"{path.stem}-unread{path.suffix}")
                shutil.copy2(path, aside)
                unread.append(f"{name} ({first_line(exc)}; it is kept as {aside.name})")
                continue
            named = grid.slice(1).rename(dict(zip(grid.columns, headers, strict=True)))
            found[kind] = _as_written(named.fill_null(""))
        return found, unread

    @_writes
    def write_undo(self, frames: dict[str, pl.DataFrame]) -> list[Path]:
        """`undo.csv` (subscriptions) and `undo-orders.csv`, for what was applied (`undo.frames`:
        each frame's columns are its headers)."""
        written = []
        for kind, frame in frames.items():
            report.write_csv(self.path / UNDO[kind], frame.columns, frame, self.dialect)
            written.append(self.path / UNDO[kind])
        return written


def _as_written(frame: pl.DataFrame) -> pl.DataFrame:
    """An undo sheet's cells as the values they hold: the quote bulkpatch put before
    formula-like text taken off by the sheet's own record (`quoting`), the record dropped."""
    at = quoting.record_at(frame.columns)
    if at is None:
        return frame
    record = frame.get_column(frame.columns[at])
    cells = frame.drop(frame.columns[at])
    return quoting.unquote(cells, cells.columns, record)[0]


def fingerprint(sha256: str, settings: dict[str, Any]) -> str:
    """A hash of the sheet (its SHA-256) and the settings that decide what is sent."""
    digest = hashlib.sha256(sha256.encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def make_folder(
    out: str | Path | None, base: str | Path, source: Path, fresh: bool = False
) -> Path:
    """`out` (made if missing; with `fresh`, refused if it holds files), or a new
    `<base>/<timestamp>-<input name>/`."""
    try:
        return _make_folder(out, base, source, fresh)
    except OSError as exc:
        raise FolderFault(exc.filename or out or base, exc) from None


def _make_folder(out: str | Path | None, base: str | Path, source: Path, fresh: bool) -> Path:
    if out:
        folder = Path(out)
        if fresh and folder.is_dir() and any(folder.iterdir()):
            finish = (
                f", or finish that run with `bulkpatch apply --resume {folder}`"
                if (folder / JOURNAL).exists()
                else ""
            )
            raise InputError(
                f"--out {folder}: already holds files (an earlier run?); bulkpatch never "
                f"overwrites a run. Choose a new folder{finish}."
            )
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-") or "sheet"
    folder = Path(base) / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}"
    candidate, n = folder, 2
    while candidate.exists():
        candidate, n = folder.with_name(f"{folder.name}-{n}"), n + 1
    candidate.mkdir(parents=True)
    return candidate
