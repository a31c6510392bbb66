"""A session with the target: the one HTTP client, the progress bar, and Ctrl-C.

The commands call `Session.read` (what plan and the live-run preview show) and
`Session.send` (what apply does); both drive `apply.Engine` in an event loop of their own.
Ctrl-C during `send` stops sending new calls, lets calls in flight finish, and returns what
finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bulkpatch.apply import Engine
from bulkpatch.calls import Reply
from bulkpatch.config import Settings
from bulkpatch.errors import StoppedError, os_cause
from bulkpatch.journal import Journal
from bulkpatch.outcome import Result
from bulkpatch.plan import Change
from bulkpatch.target import Target, client


@dataclass
class Session:
    """Calls to one target with one set of settings: a target, and for the built-in sandbox
    the sheet whose new ids it seeds."""

    target: Target
    seed: Path
    settings: Settings
    progress: str | bool = False  # "bar", "lines" (unattended), or nothing

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
        self, changes: list[Change], journal: Journal, intents: dict[str, dict[str, Any]]
    ) -> Sent:
        """Apply `changes` (read-modify-write), journaling every response; `intents`: the
        journal's intent lines of an interrupted run."""
        return asyncio.run(self._send(changes, journal, intents))

    async def _read(self, changes: list[Change]) -> tuple[dict[str, dict | Reply], str]:
        shown = Progress(len(changes), "read", self.progress, self.settings.progress_every)
        async with shown, self.client() as http:
            engine = Engine(http, self.settings, None)
            shown.calls = lambda: sum(engine.calls.values())
            return await engine.read_all(changes, shown.read), engine.stopped

    async def _send(
        self, changes: list[Change], journal: Journal, intents: dict[str, dict[str, Any]]
    ) -> Sent:
        shown = Progress(len(changes), "change", self.progress, self.settings.progress_every)
        async with shown, self.client() as http:
            engine = Engine(http, self.settings, journal, shown.finished, intents)
            shown.calls = lambda: sum(engine.calls.values())
            journal.on_fault = lambda exc: engine.stop(
                f"the run folder could not be written ({os_cause(exc)})"
            )
            with _ctrl_c(engine) as interrupted:
                results = await engine.run(changes)
        return Sent(results, engine, interrupted())


@dataclass
class Sent:
    """What `send` did: a result per change it finished, the engine (its counters, and why it
    stopped early), and whether Ctrl-C stopped it."""

    results: dict[str, Result]
    engine: Engine
    interrupted: bool


class Progress:
    """How a long run shows itself: a bar in a terminal (`bar`), or, unattended (`lines`), a
    line on stderr every `every` seconds: done of total, ok, failed, calls per minute, time
    left. Anything else shows nothing."""

    def __init__(self, total: int, unit: str, mode: str | bool, every: float) -> None:
        self.total, self.unit, self.every = total, unit, every
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

    def line(self) -> str:
        """`Progress: 120 of 5000 changes done (118 ok, 2 failed), 492 calls/min, about 9
        min left`."""
        done, elapsed = self.counts["done"], time.monotonic() - self.started
        ok = self.counts["ok"] + self.counts["accepted"]
        per_minute = self.calls() / elapsed * 60 if elapsed else 0.0
        left = (self.total - done) * elapsed / done / 60 if done else None
        if left is None:
            eta = "time left not known yet"
        else:  # "about 0 min left" with work still to do would not be true
            eta = f"about {left:.0f} min left" if left >= 1 else "under a minute left"
        return (
            f"Progress: {done} of {self.total} {self.unit}s done ({ok} ok, "
            f"{self.counts['failed']} failed), {per_minute:.0f} calls/min, {eta}"
        )

    async def _lines(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            sys.stderr.write(self.line() + "\n")
            sys.stderr.flush()


@contextlib.contextmanager
def _ctrl_c(engine: Engine):
    """While inside, Ctrl-C stops the engine (calls in flight finish); yields a function
    that says whether it was pressed."""
    pressed: list[bool] = []

    def interrupt() -> None:
        pressed.append(True)
        engine.stop("interrupted (Ctrl-C)")

    loop = asyncio.get_running_loop()
    with contextlib.suppress(RuntimeError, ValueError):  # only the main thread gets Ctrl-C
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        yield lambda: bool(pressed)
    finally:
        with contextlib.suppress(RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)


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
