"""The journal of an apply: one JSON line per intent (before each PATCH: the change, its
MS-RequestId, the values read before it), per response and per finished change, appended and
flushed before it counts, so a run killed at any moment loses nothing it did.

Resume is a replay: a change with a `result` line is finished and never sent again; any other
change is sent again with the same MS-RequestId (Partner Center answers a repeat from its
store). A change with an intent whose target already holds landed before the interruption: it
is `ok`, and undo puts back the values its intent line recorded.

A line that cannot be read (cut short by a crash, bytes changed on the disk, not UTF-8, JSON
that is not a journal record) is never trusted: the replay names it by line number and keeps
only which changes its bytes still name, so a resume reads those again before deciding.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bulkpatch.outcomes import RESULT_OUTCOMES

EVENTS = {"start", "call", "intent", "result"}
# What a change's result line may say: an invalid row never reaches the engine.
OUTCOMES = set(RESULT_OUTCOMES) - {"invalid"}
# A change's key as a line names it (`subscriptions/<customer>/<id>`) or as its path does.
KEY = re.compile(r'"change": "((?:subscriptions|orders)/[\w.-]+/[\w.-]+)"')
PATH = re.compile(r"/customers/([\w.-]+)/(subscriptions|orders)/([\w.-]+)")
INTENT = {"request_id": str, "before": dict, "after": dict}
# A result line's fields (those of `outcome.Result`, each optional): the type each is read as.
RESULT = {
    **dict.fromkeys(("error_message", "request_id", "correlation_id", "offer"), (str,)),
    **dict.fromkeys(("http_status", "error_code"), (int, type(None))),
    **dict.fromkeys(("attempts", "elapsed_ms"), (int,)),
    **dict.fromkeys(("before", "diffs"), (dict,)),
}


class Journal:
    """Append-only JSON lines; every line is flushed to the OS before `write` returns.

    A line the disk refuses (full, read-only, removed) is a fault, not an exception: `write`
    says False, `fault` keeps the cause, `on_fault` hears it once (the engine stops sending),
    and nothing more is written, so the journal stays a true record of what it holds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        cut = not _ends_a_line(path)
        self.handle: TextIO = self.path.open("a", encoding="utf-8")
        if cut:  # a line cut short stays as it is, on its own line, for an auditor to see
            self.handle.write("\n")
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
        with contextlib.suppress(OSError):  # a line cut short by a fault is named on reading
            self.handle.close()


def _ends_a_line(path: Path) -> bool:
    """Whether appending to `path` starts a new line (no file, an empty one, or a last byte that
    ends a line): a record is never glued onto a line a crash cut short."""
    try:
        with path.open("rb") as handle:
            handle.seek(-1, 2)
            return handle.read(1) == b"\n"
    except OSError:  # no file, or an empty one (a seek before its start)
        return True


@dataclass(frozen=True)
class Damage:
    """A journal line that cannot be read: its number (from 1, as an editor counts), what is
    wrong with it, and the changes its bytes still name (none: it may be any change's)."""

    line: int
    problem: str
    names: frozenset[str] = frozenset()
    cut: bool = False  # the file's last line, with no end of line: appending starts a new one

    def concerns(self, key: str) -> bool:
        return not self.names or key.lower() in self.names

    def among(self, keys: set[str]) -> Damage:
        """The same line naming only changes of the run (lower case): bytes that garbled a
        change's name name none, so the line may be any change's."""
        return replace(self, names=self.names & keys)

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "problem": self.problem, "changes": sorted(self.names)}


@dataclass
class Replay:
    """What a journal says of each change: its result when it finished (a `not_sent` result
    never reached Partner Center's business logic, so it is not finished), its first intent line
    when a PATCH of it may have been sent, and the lines that could not be read."""

    finished: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    damaged: list[Damage] = field(default_factory=list)


def replay(path: Path) -> Replay:
    """Read the journal at `path` line by line, as bytes: a line that cannot be read is named
    in `damaged` and nothing in it is used."""
    found = Replay()
    if not path.exists():
        return found
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            entry, problem = _entry(raw)
            if problem:
                cut = not raw.endswith(b"\n")
                found.damaged.append(Damage(number, problem, _names(raw), cut))
            elif entry is None:
                continue
            elif entry["event"] == "result" and entry["outcome"] != "not_sent":
                found.finished[entry["change"]] = entry
            elif entry["event"] == "intent":
                found.intents.setdefault(entry["change"], entry)
    return found


def _entry(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """One line as a journal record, or what is wrong with it (a blank line holds nothing)."""
    if not raw.strip():
        return None, ""
    if not raw.strip(b"\x00\r\n"):
        return None, "only NUL bytes (what a machine that lost power can leave)"
    cut = not raw.endswith(b"\n")
    try:
        entry = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start + 1} of the line)"
    except json.JSONDecodeError as exc:
        if cut:
            return None, "cut short (no end of line: the run stopped while writing it)"
        return None, f"not valid JSON ({exc.msg} at character {exc.pos + 1})"
    problem = _not_a_record(entry)
    return (None, f"JSON, but not a journal record ({problem})") if problem else (entry, "")


def _not_a_record(entry: Any) -> str:
    """What keeps a JSON value from being a line this journal writes ('' when it is one): the
    fields a resume uses, of the types it uses them as."""
    if not isinstance(entry, dict):
        return f"a {type(entry).__name__}, not an object"
    event = entry.get("event")
    if event not in EVENTS:
        return f"its event is {json.dumps(event)}"
    if event in ("start", "call"):
        return ""  # read by people, not by a resume
    if not isinstance(entry.get("change"), str):
        return f"a {event} without the change it is of"
    if event == "intent":
        wrong = [k for k, kind in INTENT.items() if not isinstance(entry.get(k), kind)]
    elif entry.get("outcome") not in OUTCOMES:
        return f"its outcome is {json.dumps(entry.get('outcome'))}"
    else:
        wrong = [k for k, kind in RESULT.items() if k in entry and not isinstance(entry[k], kind)]
        pairs = (entry.get("diffs") or {}).values()
        wrong += [] if all(isinstance(v, list) and len(v) == 2 for v in pairs) else ["diffs"]
    return f"its {', '.join(dict.fromkeys(wrong))} cannot be read" if wrong else ""


def _names(raw: bytes) -> frozenset[str]:
    """The changes a damaged line still names: its `change` key, or a resource path."""
    text = raw.decode("utf-8", errors="replace")
    keys = {k.lower() for k in KEY.findall(text)}
    keys |= {f"{kind}/{c}/{r}".lower() for c, kind, r in PATH.findall(text)}
    return frozenset(keys)
