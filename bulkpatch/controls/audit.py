"""The audit log: one JSON line per plan, approval, rejection, apply, resume and refusal, each
holding the hash of the line before it and its own, and the check that the chain holds.

An edited line no longer matches its own hash (named by its number); a removed line leaves
the next one pointing at a hash the log does not hold (named by the position where the chain
breaks). Lines cut from the end leave no break, so each run folder keeps the number and hash
of the line its run wrote (`RunFolder.write_audited`) and `verify` holds the newest folders
against the log. The log lives where its writers can reach it: the chain shows tampering, it
does not prevent it (README, "Controls").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from bulkpatch import portable
from bulkpatch.errors import StoppedError, os_cause
from bulkpatch.runs.folder import RunFolder
from bulkpatch.settings import Profile, data_dir

START = "0" * 64  # what the first line says came before it
RECENT = 20  # run folders `verify` holds against the end of the log


def default_path(tenant: str) -> Path:
    """The log of a partner tenant (or a sandbox) in the user's data folder."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", tenant).strip("-") or "unknown"
    return data_dir() / "audit" / f"{name}.jsonl"


def log_path(profile: Profile, tenant: str) -> Path:
    """The profile's `audit_log`, else the tenant's log in the user's data folder."""
    chosen = profile.get("audit_log")
    return Path(chosen).expanduser() if chosen else default_path(tenant)


def line_hash(line: dict[str, Any]) -> str:
    """The SHA-256 of a line's content without its own hash, in one canonical spelling."""
    content = {k: v for k, v in line.items() if k != "hash"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


LOCK_WAIT = 30.0  # seconds a writer waits for another run's line to be written


def _wait_for(handle: IO[str]) -> None:
    """Hold the log for this process, waiting while another run writes its line (two runs of
    two sheets at once both append); OSError when it is still held after `LOCK_WAIT`."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            portable.lock(handle)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def append(path: Path, event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Write `event` as the log's next line, chained to the last one, flushed to disk before
    returning; a log that cannot be written is a `StoppedError` (exit 3)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+", encoding="utf-8") as handle:
            _wait_for(handle)  # one writer at a time: two lines never claim one place
            try:
                handle.seek(0)
                lines = [s for s in handle.read().splitlines() if s.strip()]
                last = _last_hash(lines)
                line = {
                    "n": len(lines) + 1,
                    "at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                    **event,
                    "prev": last,
                }
                line["hash"] = line_hash(line)
                handle.seek(0, os.SEEK_END)
                handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                portable.unlock(handle)
    except OSError as exc:
        raise StoppedError(
            f"the audit log {path} cannot be written ({os_cause(exc)}); the "
            f"{event.get('event')} is not recorded"
        ) from None
    return line


def _last_hash(lines: list[str]) -> str:
    if not lines:
        return START
    try:
        return str(json.loads(lines[-1]).get("hash") or START)
    except ValueError:
        return hashlib.sha256(lines[-1].encode("utf-8")).hexdigest()  # chained as it stands


@dataclass
class Problem:
    """Where the chain does not hold: the line's number (1 is the first) and why."""

    line: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}


def read(path: Path) -> list[str]:
    """The log's lines as written (none when there is no log yet)."""
    try:
        return [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    except FileNotFoundError:
        return []


def chain(lines: list[str]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Each line read, and every place the chain breaks: a line edited (its own hash), a
    line removed (the next one follows a hash the log does not hold), a line unreadable."""
    found, problems, before = [], [], START
    for number, text in enumerate(lines, start=1):
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            problems.append(Problem(number, f"line {number} is not a log line (edited?)"))
            before = hashlib.sha256(text.encode("utf-8")).hexdigest()
            continue
        if line.get("hash") != line_hash(line):
            problems.append(
                Problem(number, f"line {number} was edited: it no longer matches its own hash")
            )
        if line.get("prev") != before:
            problems.append(
                Problem(
                    number,
                    f"the chain breaks at line {number}: the line before it is missing or "
                    f"was changed (it was written as line {line.get('n')})",
                )
            )
        found.append(line)
        before = str(line.get("hash"))
    return found, problems


def against_folders(
    path: Path, lines: list[dict[str, Any]], base: Path, count: int
) -> list[Problem]:
    """The newest run folders under `base` that wrote to this log: each one's line must be in
    it, as written (a log cut short, replaced or removed is seen here)."""
    written = {str(line.get("n")): line.get("hash") for line in lines}
    folders = sorted(
        (f for f in base.glob("*/") if (f / "audit.json").is_file()),
        key=lambda f: (f / "audit.json").stat().st_mtime,
        reverse=True,
    )
    problems = []
    for folder in folders[:RECENT]:
        kept = RunFolder(folder, {}).audited() or {}
        if Path(str(kept.get("log"))).resolve() != path.resolve():
            continue
        n = kept.get("line")
        if written.get(str(n)) != kept.get("hash"):
            problems.append(
                Problem(
                    count + 1 if str(n) not in written else int(n),
                    f"run folder {folder} wrote line {n} of this log, which the log "
                    f"{'does not hold' if str(n) not in written else 'holds changed'}: lines "
                    "were cut from its end, or it was replaced",
                )
            )
    return problems


def since(lines: list[dict[str, Any]], day: date | None) -> list[dict[str, Any]]:
    """The lines written on or after `day` (all of them for None)."""
    if day is None:
        return lines
    return [line for line in lines if str(line.get("at", ""))[:10] >= day.isoformat()]
