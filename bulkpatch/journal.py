"""The journal of an apply: one JSON line per response and per finished change, appended and
flushed before it counts, so a run killed at any moment loses at most its calls in flight.

Resume is a replay: a change with a `result` line is finished and never sent again; any other
change is sent again with the same MS-RequestId (Partner Center answers a repeat from its
store, and the read before the write shows a landed change as already done).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
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


def finished(path: Path) -> dict[str, dict[str, Any]]:
    """The result of every finished change in the journal at `path`, by change key."""
    if not path.exists():
        return {}
    results = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: the call was in flight
                continue
            if entry.get("event") == "result" and entry.get("outcome") != "not_sent":
                results[entry["change"]] = entry
    return results
