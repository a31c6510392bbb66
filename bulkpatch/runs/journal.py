"""The journal of an apply: one JSON line per intent (before each PATCH: the change, its
MS-RequestId, the values read before it), per response and per finished change, appended and
flushed before it counts, so a run killed at any moment loses nothing it did.

Resume is a replay: a change with a `result` line is finished and never sent again; any other
change is sent again with the same MS-RequestId (Partner Center answers a repeat from its
store). A change with an intent whose target already holds landed before the interruption: it
is `ok`, and undo puts back the values its intent line recorded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class Journal:
    """Append-only JSON lines; every line is flushed to the OS before `write` returns.

    A line the disk refuses (full, read-only, removed) is a fault, not an exception: `write`
    says False, `fault` keeps the cause, `on_fault` hears it once (the engine stops sending),
    and nothing more is written, so the journal stays a true record of what it holds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: TextIO = self.path.open("a", encoding="utf-8")
        self.fault: OSError | None = None
        self.on_fault: Callable[[OSError], None] | None = None

    def write(self, event: str, **fields: Any) -> bool:
        """Append one line and flush it; False when it could not be written."""
        if self.fault:
            return False
        line = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            **fields,
        }
        try:
            self.handle.write(json.dumps(line, default=str) + "\n")
            self.handle.flush()  # in the OS's hands now: a killed process loses nothing written
        except OSError as exc:
            self.fault = exc
            if self.on_fault:
                self.on_fault(exc)
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a line cut short by a fault is skipped on reading
            self.handle.close()


@dataclass
class Replay:
    """What a journal says of each change: its result when it finished (a `not_sent` result
    never reached Partner Center's business logic, so it is not finished), and its first
    intent line when a PATCH of it may have been sent."""

    finished: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)


def replay(path: Path) -> Replay:
    """Read the journal at `path` (a line cut short by a kill is skipped: its call was in
    flight)."""
    found = Replay()
    if not path.exists():
        return found
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("event") == "result" and entry.get("outcome") != "not_sent":
                found.finished[entry["change"]] = entry
            elif entry.get("event") == "intent":
                found.intents.setdefault(entry["change"], entry)
    return found
