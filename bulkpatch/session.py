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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bulkpatch.apply import Engine, Result
from bulkpatch.calls import Reply
from bulkpatch.config import Settings
from bulkpatch.errors import os_cause
from bulkpatch.journal import Journal
from bulkpatch.plan import Change
from bulkpatch.target import Target, client


@dataclass
class Session:
    """Calls to one target with one set of settings: a target, and for the built-in sandbox
    its state file and the sheet it is seeded from."""

    target: Target
    sandbox_db: Path
    seed: Path
    settings: Settings
    progress: bool = False

    def client(self) -> httpx.AsyncClient:
        return client(
            self.target,
            sandbox_db=self.sandbox_db,
            seed=[self.seed],
            reseed=not self.sandbox_db.exists(),
            connections=self.settings.concurrency,
        )

    def read(self, changes: list[Change]) -> dict[str, dict | Reply]:
        """The current state for every change, read as apply reads it (one list call per
        customer with several subscriptions)."""
        return asyncio.run(self._read(changes))

    def send(
        self, changes: list[Change], journal: Journal, intents: dict[str, dict[str, Any]]
    ) -> Sent:
        """Apply `changes` (read-modify-write), journaling every response; `intents`: the
        journal's intent lines of an interrupted run."""
        return asyncio.run(self._send(changes, journal, intents))

    async def _read(self, changes: list[Change]) -> dict[str, dict | Reply]:
        shown = bar(len(changes), "read", self.progress)
        try:
            async with self.client() as http:
                engine = Engine(http, self.settings, None)
                return await engine.read_all(changes, shown.update if shown else None)
        finally:
            if shown:
                shown.close()

    async def _send(
        self, changes: list[Change], journal: Journal, intents: dict[str, dict[str, Any]]
    ) -> Sent:
        shown = bar(len(changes), "change", self.progress)
        async with self.client() as http:
            engine = Engine(http, self.settings, journal, _ticker(shown), intents)
            journal.on_fault = lambda exc: engine.stop(
                f"the run folder could not be written ({os_cause(exc)})"
            )
            with _ctrl_c(engine) as interrupted:
                try:
                    results = await engine.run(changes)
                finally:
                    if shown:
                        shown.close()
        return Sent(results, engine, interrupted())


@dataclass
class Sent:
    """What `send` did: a result per change it finished, the engine (its counters, and why it
    stopped early), and whether Ctrl-C stopped it."""

    results: dict[str, Result]
    engine: Engine
    interrupted: bool


def bar(total: int, unit: str, progress: bool) -> tqdm | None:
    """A progress bar on stderr, when asked for (the CLI asks when stderr is a terminal)."""
    return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True) if progress else None


def _ticker(shown: tqdm | None) -> Callable[[Change, Result], None] | None:
    """Counts on the progress bar as changes finish."""
    if shown is None:
        return None
    counts: Counter[str] = Counter()

    def tick(change: Change, result: Result) -> None:
        counts[result.outcome] += 1
        shown.set_postfix(
            ok=counts["ok"] + counts["accepted"],
            unchanged=counts["no_change"],
            failed=counts["failed"],
            refresh=False,
        )
        shown.update()

    return tick


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
