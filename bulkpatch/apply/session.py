"""A session with the target: the one HTTP client, the progress bar, and Ctrl-C.

The commands call `Session.read` (what plan and the live-run preview show) and
`Session.send` (what apply does); both drive `apply.Engine` in an event loop of their own.
Ctrl-C during `send` (or `Watch.stop` from another thread: the web page's Stop button) stops
sending new calls, lets calls in flight finish, and returns what finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bulkpatch import portable
from bulkpatch.apply.engine import Engine
from bulkpatch.apply.outcome import Result
from bulkpatch.errors import StoppedError, os_cause
from bulkpatch.network.calls import Recorder, Reply
from bulkpatch.network.target import Target, client
from bulkpatch.plan.changes import Change
from bulkpatch.settings import Settings


@dataclass
class Session:
    """Calls to one target with one set of settings: a target, and for the built-in sandbox
    the sheet whose new ids it seeds."""

    target: Target
    seed: Path
    settings: Settings
    progress: Shown = False  # "bar", "lines" (unattended), a Watch, or nothing
    # Subscription lists matching read this run, by customer id: the reads of those customers
    listed: dict[str, Reply] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        return client(self.target, seed=[self.seed], connections=self.settings.concurrency)

    def read(self, changes: list[Change]) -> dict[str, dict | Reply]:
        """The current state for every change, read as apply reads it (one list call per
        customer with several subscriptions).

        Raises StoppedError when Partner Center could not be read at all: a refused token or
        no answer is not what a row would get, and a plan without the current state is none.
        """
        found, stopped = asyncio.run(self._read(changes))
        unread = [r for r in found.values() if isinstance(r, Reply)]
        why = next((_unreadable(r) for r in unread if _unreadable(r)), "") or stopped
        if why:
            raise StoppedError(f"could not read Partner Center: {why}. Nothing was sent.")
        return found

    def send(
        self, changes: list[Change], journal: Recorder, intents: dict[str, dict[str, Any]]
    ) -> Sent:
        """Apply `changes` (read-modify-write), journaling every response; `intents`: the
        journal's intent lines of an interrupted run."""
        return asyncio.run(self._send(changes, journal, intents))

    async def _read(self, changes: list[Change]) -> tuple[dict[str, dict | Reply], str]:
        shown = Progress(len(changes), "read", self.progress, self.settings.progress_every)
        async with shown, self.client() as http:
            engine = Engine(http, self.settings, None, listed=self.listed)
            shown.calls = lambda: sum(engine.calls.values())
            return await engine.read_all(changes, shown.read), engine.stopped

    async def _send(
        self, changes: list[Change], journal: Recorder, intents: dict[str, dict[str, Any]]
    ) -> Sent:
        shown = Progress(len(changes), "change", self.progress, self.settings.progress_every)
        async with shown, self.client() as http:
            engine = Engine(
                http, self.settings, journal, shown.finished, intents, listed=self.listed
            )
            shown.calls = lambda: sum(engine.calls.values())
            journal.on_fault = lambda exc: engine.stop(
                f"the run folder could not be written ({os_cause(exc)})"
            )
            with _stoppable(engine, self.progress) as interrupted:
                results = await engine.run(changes)
        return Sent(results, engine, interrupted())


@dataclass
class Sent:
    """What `send` did: a result per change it finished, the engine (its counters, and why it
    stopped early), and whether Ctrl-C stopped it."""

    results: dict[str, Result]
    engine: Engine
    interrupted: bool


class Watch:
    """A run followed from another thread (the web page): its progress as it goes, and a stop
    request with Ctrl-C's meaning (calls in flight finish, the journal is kept, the run can be
    resumed). Given as a command's `progress=`."""

    def __init__(self) -> None:
        self.progress: Progress | None = None  # set when the run starts reading or sending
        self.stopping = threading.Event()
        self.why = ""

    def stop(self, why: str = "stopped from the page (Stop)") -> None:
        """Stop the run; `why` is what its unsent rows say."""
        self.why = self.why or why
        self.stopping.set()

    def figures(self) -> dict[str, Any]:
        """The run so far (`Progress.figures`); nothing done before it starts."""
        return (self.progress or Progress(0, "", False, 0)).figures()


Shown = str | bool | Watch  # how a run shows its progress: see Progress


class Progress:
    """How a long run shows itself: a bar in a terminal (`bar`), or, unattended (`lines`), a
    line on stderr every `every` seconds: done of total, ok, failed, calls per minute, time
    left; a `Watch` is handed this object to read. Anything else shows nothing."""

    def __init__(self, total: int, unit: str, mode: Shown, every: float) -> None:
        self.total, self.unit, self.every = total, unit, every
        if isinstance(mode, Watch):
            mode.progress, mode = self, "watch"
        self.mode = "bar" if mode is True else mode
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self.calls: Callable[[], int] = lambda: 0
        self.bar = (
            tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
            if self.mode == "bar"
            else None
        )
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Progress:
        if self.mode == "lines" and self.total:
            self.task = asyncio.create_task(self._lines())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task:
            self.task.cancel()
        if self.bar is not None:  # closed even at total 0 (an export that found no customer)
            self.bar.close()

    def grow(self, n: int) -> None:
        """`n` more to do, found on the way (export learns its customers page by page)."""
        self.total += n
        if self.bar is not None:  # a bar of total 0 is falsy (tqdm's __bool__)
            self.bar.total = self.total
            self.bar.refresh()
        if self.mode == "lines" and self.task is None and self.total:
            self.task = asyncio.create_task(self._lines())

    def read(self, n: int) -> None:
        """`n` more changes read (plan, preview)."""
        self.counts["done"] += n
        if self.bar:
            self.bar.update(n)

    def finished(self, change: Change, result: Result) -> None:
        """One more change finished (apply)."""
        self.counts["done"] += 1
        self.counts[result.outcome] += 1
        if self.bar:
            self.bar.set_postfix(
                ok=self.counts["ok"] + self.counts["accepted"],
                no_change=self.counts["no_change"],
                failed=self.counts["failed"],
                refresh=False,
            )
            self.bar.update()

    def figures(self) -> dict[str, Any]:
        """Done of total, ok, failed, by outcome, calls per minute and the time left in
        words: what the progress line says, as data (the web page shows it)."""
        counts = dict(self.counts)  # one copy: a reader in another thread sees one moment
        done, elapsed = counts.get("done", 0), time.monotonic() - self.started
        left = (self.total - done) * elapsed / done / 60 if done else None
        if left is None:
            eta = "time left not known yet"
        else:  # "about 0 min left" with work still to do would not be true
            eta = f"about {left:.0f} min left" if left >= 1 else "under a minute left"
        return {
            "done": done,
            "total": self.total,
            "unit": self.unit,
            "ok": counts.get("ok", 0) + counts.get("accepted", 0),
            "failed": counts.get("failed", 0),
            "outcomes": {k: n for k, n in counts.items() if k != "done"},
            "calls_per_minute": round(self.calls() / elapsed * 60) if elapsed else 0,
            "eta": eta,
        }

    def line(self) -> str:
        """`Progress: 120 of 5000 changes done (118 ok, 2 failed), 492 calls/min, about 9
        min left`."""
        f = self.figures()
        return (
            f"Progress: {f['done']} of {f['total']} {self.unit}s done ({f['ok']} ok, "
            f"{f['failed']} failed), {f['calls_per_minute']} calls/min, {f['eta']}"
        )

    async def _lines(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            sys.stderr.write(self.line() + "\n")
            sys.stderr.flush()


@contextlib.contextmanager
def _stoppable(engine: Engine, progress: Shown):
    """While inside, Ctrl-C (or a `Watch`'s stop) stops the engine (calls in flight finish);
    yields a function that says whether the run was stopped so."""
    pressed: list[bool] = []

    def interrupt(why: str = "interrupted (Ctrl-C)") -> None:
        pressed.append(True)
        engine.stop(why)

    watched = (
        asyncio.create_task(_until_stopped(progress, interrupt))
        if isinstance(progress, Watch)
        else None
    )
    try:
        with portable.on_interrupt(asyncio.get_running_loop(), interrupt):
            yield lambda: bool(pressed)
    finally:
        if watched:
            watched.cancel()


async def _until_stopped(watch: Watch, interrupt: Callable[[str], None]) -> None:
    while not watch.stopping.is_set():
        await asyncio.sleep(0.1)
    interrupt(watch.why)


def _unreadable(reply: Reply) -> str:
    """Why a read failed for every row alike (the token, the network), or "" for a row's own
    answer (404, a business refusal)."""
    if reply.token_refused:
        return (
            f"it refused the token (HTTP {reply.status}); sign in again with `bulkpatch auth "
            "login`, or check BULKPATCH_TOKEN and the profile's tenant"
        )
    if reply.status is None:
        return (
            f"it could not be reached ({reply.message}); check the network connection or "
            "proxy, then run it again"
        )
    return ""
