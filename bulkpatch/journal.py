"""The journal of an apply: one JSON line per response and per finished change, appended and
flushed before it counts, so a run killed at any moment loses at most its calls in flight.

Resume is a replay: a change with a `result` line is finished and never sent again; any other
change is sent again with the same MS-RequestId (Partner Center answers a repeat from its
store, and the read before the write shows a landed change as already done).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class Journal:
    """Append-only JSON lines; every line is flushed to the OS before `write` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: TextIO = self.path.open("a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        line = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            **fields,
        }
        self.handle.write(json.dumps(line, default=str) + "\n")
        self.handle.flush()  # in the OS's hands now: a killed process loses nothing written

    def close(self) -> None:
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
            if entry.get("event") == "result":
                results[entry["change"]] = entry
    return results
