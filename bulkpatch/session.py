"""A session with the target: the one HTTP client, the progress bar, and Ctrl-C.

The commands call `read` (what plan and the live-run preview show) and `send` (what apply
does); both drive `apply.Engine` in an event loop of their own. Ctrl-C during `send` stops
sending new calls, lets calls in flight finish, and returns what finished.
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

import httpx
from tqdm import tqdm

from bulkpatch.apply import Engine, Reply, Result
from bulkpatch.config import Settings
from bulkpatch.journal import Journal
from bulkpatch.plan import Change
from bulkpatch.target import Target, client


@dataclass
class Endpoint:
    """Where a session's calls go: a target, and for the built-in sandbox its state file and
    the sheet it is seeded from."""

    target: Target
    sandbox_db: Path
    seed: Path

    def client(self, settings: Settings) -> httpx.AsyncClient:
        return client(
            self.target,
            sandbox_db=self.sandbox_db,
            seed=[self.seed],
            reseed=not self.sandbox_db.exists(),
            connections=settings.concurrency,
        )


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


def read(
    endpoint: Endpoint, changes: list[Change], settings: Settings, progress: bool
) -> dict[str, dict | Reply]:
    """The current state for every change, read as apply reads it (one list call per customer
    with several subscriptions)."""
    return asyncio.run(_read(endpoint, changes, settings, progress))


async def _read(
    endpoint: Endpoint, changes: list[Change], settings: Settings, progress: bool
) -> dict[str, dict | Reply]:
    shown = bar(len(changes), "read", progress)
    try:
        async with endpoint.client(settings) as http:
            engine = Engine(http, settings, None)
            return await engine.read_all(changes, shown.update if shown else None)
    finally:
        if shown:
            shown.close()


def send(
    endpoint: Endpoint,
    changes: list[Change],
    settings: Settings,
    journal: Journal,
    progress: bool,
) -> Sent:
    """Apply `changes` (read-modify-write), journaling every response."""
    return asyncio.run(_send(endpoint, changes, settings, journal, progress))


async def _send(
    endpoint: Endpoint,
    changes: list[Change],
    settings: Settings,
    journal: Journal,
    progress: bool,
) -> Sent:
    shown = bar(len(changes), "change", progress)
    async with endpoint.client(settings) as http:
        engine = Engine(http, settings, journal, on_result=_ticker(shown))
        with _ctrl_c(engine) as interrupted:
            try:
                results = await engine.run(changes)
            finally:
                if shown:
                    shown.close()
    return Sent(results, engine, interrupted())


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
