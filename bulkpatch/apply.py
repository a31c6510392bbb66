"""Stage 4, apply: send the changes, read-modify-write, under Partner Center's limits.

The only stage that touches the network, through one `httpx.AsyncClient` (the embedded sandbox
and tests plug in with an ASGI transport). Per customer: one read just before its writes (a list
call when it has several subscriptions), then each change merged into the fresh resource and
the full object PATCHed. Calls are paced evenly per budget (subscriptions, orders); a 429
pauses every worker; retries keep the change's MS-RequestId; every response is journaled.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bulkpatch.config import Settings
from bulkpatch.journal import Journal
from bulkpatch.plan import Assessment, Change, Merged, assess, merge, target_reached

RETRY_STATUSES = {500, 502, 503, 504}
CONFLICT_CODE = 800082
STALE_ETAG = 2055
READ_FAILED = "reading it failed: "  # a change whose resource could not be read first
LATE = 0.005  # seconds: a call woken later than this (and a whole slot) takes a new slot
REACTIVATE = uuid.UUID("5e0f6a7b-8c9d-4e1f-a2b3-c4d5e6f7a8b9")


@dataclass
class Reply:
    """One call's final answer after retries (status None: no answer at all)."""

    status: int | None
    body: Any
    correlation_id: str
    attempts: int
    location: str | None = None
    error: str = ""

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def message(self) -> str:
        if self.status is None:
            return f"no answer after {self.attempts} attempts ({self.error})"
        if isinstance(self.body, dict):
            return str(self.body.get("description") or self.body.get("message") or "")
        return f"HTTP {self.status}"


@dataclass
class Result:
    """What happened to one change: the columns of the result sheet and the undo values."""

    outcome: str
    http_status: int | None = None
    error_code: int | None = None
    error_message: str = ""
    changes: str = ""
    request_id: str = ""
    correlation_id: str = ""
    attempts: int = 0
    elapsed_ms: int = 0
    before: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Budget:
    """Even pacing for one kind of call: one slot every `interval`, per scope key."""

    def __init__(self, per_minute: float, scope: str, headroom: float) -> None:
        self.interval = 60.0 / (per_minute * headroom)
        self.scope = scope
        self.next: dict[str, float] = defaultdict(float)
        self.paused_until = 0.0
        self.factor = 1.0

    async def slot(self, customer: str) -> None:
        """Wait for this call's turn; a pause (429) that starts meanwhile is waited out too.

        A call that wakes a whole interval late (the event loop was busy) takes the next free
        slot instead of its missed one: late calls never go out in a bunch.
        """
        key = customer if self.scope == "customer" else ""
        while True:
            now = time.monotonic()
            gap = self.interval / self.factor
            start = max(now, self.next[key], self.paused_until)
            self.next[key] = start + gap
            await asyncio.sleep(start - now)
            woke = time.monotonic()
            if woke >= self.paused_until and woke - start < max(gap, LATE):
                return

    def throttled(self, seconds: float) -> None:
        """A 429: every worker waits `seconds`, then the pace halves and recovers slowly."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        self.factor = max(0.25, self.factor / 2)

    def answered(self) -> None:
        self.factor = min(1.0, self.factor * 1.05)


class Engine:
    """Applies changes through `client`; `results` fills in as changes finish."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        journal: Journal | None,
        on_result: Callable[[Change, Result], None] | None = None,
    ) -> None:
        self.client, self.settings, self.journal = client, settings, journal
        self.on_result = on_result
        order_rate = settings.order_rate or settings.rate
        self.budgets = {
            "subscriptions": Budget(settings.rate, settings.limit_scope, settings.headroom),
            "orders": Budget(order_rate, settings.limit_scope, settings.headroom),
        }
        self.in_flight = asyncio.Semaphore(settings.concurrency)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.statuses: Counter[str] = Counter()
        self.throttled = 0
        self.auth_failures = 0
        self.unreachable = 0
        self.stopped = ""
        self.results: dict[str, Result] = {}

    def stop(self, reason: str) -> None:
        """Send nothing new; calls in flight finish. Unsent changes become `not_sent`."""
        self.stopped = self.stopped or reason

    # --- one call, with pacing and retries -------------------------------------------------------

    async def call(
        self,
        kind: str,
        op: str,
        method: str,
        path: str,
        customer: str,
        request_id: str,
        body: Any = None,
        etag: str | None = None,
    ) -> Reply:
        attempts = throttles = 0
        while True:
            attempts += 1
            await self.budgets[kind].slot(customer)
            reply, retry_after = await self._send(kind, op, method, path, request_id, body, etag)
            reply.attempts = attempts
            if reply.status == 429 and throttles < self.settings.max_throttles:
                throttles, attempts = throttles + 1, attempts - 1
                self.throttled += 1
                self.budgets[kind].throttled(retry_after)
                continue
            retry = (
                reply.status is None
                or reply.status in RETRY_STATUSES
                or (reply.status == 409 and reply.code == CONFLICT_CODE)
            )
            if not retry or attempts >= self.settings.attempts or self.stopped:
                self._count_auth(reply)
                return reply
            await asyncio.sleep(
                min(30.0, self.settings.backoff * 2 ** (attempts - 1)) * random.uniform(0.5, 1.5)
            )

    async def _send(
        self,
        kind: str,
        op: str,
        method: str,
        path: str,
        request_id: str,
        body: Any,
        etag: str | None,
    ) -> tuple[Reply, float]:
        correlation = str(uuid.uuid4())
        headers = {"MS-RequestId": request_id, "MS-CorrelationId": correlation}
        if etag:
            headers["If-Match"] = etag
        self.calls[(kind, op)] += 1
        started = time.monotonic()
        try:
            async with self.in_flight, asyncio.timeout(self.settings.call_timeout):
                response = await self.client.request(method, path, json=body, headers=headers)
            reply = Reply(
                response.status_code,
                _json(response),
                correlation,
                0,
                response.headers.get("location"),
            )
            self.budgets[kind].answered()
            retry_after = float(response.headers.get("retry-after", "1") or 1)
        except (httpx.TransportError, TimeoutError) as exc:
            reply, retry_after = Reply(None, None, correlation, 0, error=_describe(exc)), 0.0
        self.statuses[str(reply.status or "no answer")] += 1
        if self.journal:
            self.journal.write(
                "call",
                op=op,
                method=method,
                path=path,
                request_id=request_id,
                correlation_id=correlation,
                status=reply.status,
                code=reply.code,
                error=reply.error,
                ms=round((time.monotonic() - started) * 1000),
            )
        return reply, retry_after

    def _count_auth(self, reply: Reply) -> None:
        """Stop on a streak: the token is bad, or the service cannot be reached at all."""
        self.auth_failures = self.auth_failures + 1 if reply.status in (401, 403) else 0
        self.unreachable = self.unreachable + 1 if reply.status is None else 0
        if self.auth_failures >= self.settings.auth_streak:
            self.stop(
                f"Partner Center refused the token {self.auth_failures} times in a row "
                f"(HTTP {reply.status}); check the credentials"
            )
        if self.unreachable >= self.settings.unreachable_streak:
            self.stop(
                f"Partner Center could not be reached {self.unreachable} times in a row, "
                f"each after {self.settings.attempts} attempts ({reply.error})"
            )

    # --- the run ---------------------------------------------------------------------------------

    async def run(self, changes: list[Change]) -> dict[str, Result]:
        """Apply every change: readers fetch each customer's state just ahead of the writers."""
        pending = _by_customer(changes)
        queue: asyncio.Queue[tuple[Change, dict | Reply] | None] = asyncio.Queue(
            maxsize=self.settings.concurrency
        )
        readers = [
            asyncio.create_task(self._reader(pending, queue))
            for _ in range(max(1, self.settings.concurrency // 2))
        ]
        workers = [
            asyncio.create_task(self._worker(queue)) for _ in range(self.settings.concurrency)
        ]
        await asyncio.gather(*readers)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        return self.results

    async def read_all(
        self, changes: list[Change], on_read: Callable[[int], None] | None = None
    ) -> dict[str, dict | Reply]:
        """Current state for every change (what `plan` shows), read as `run` reads it;
        `on_read` hears how many changes each read covered."""
        pending, found = _by_customer(changes), {}

        async def reader() -> None:
            for group in pending:
                found.update({c.key: current for c, current in await self._read(group)})
                if on_read:
                    on_read(len(group))

        await asyncio.gather(*(reader() for _ in range(max(1, self.settings.concurrency // 2))))
        return found

    async def _reader(
        self,
        pending: Iterator[list[Change]],
        queue: asyncio.Queue[tuple[Change, dict | Reply] | None],
    ) -> None:
        for group in pending:
            if self.stopped:
                return
            for change, current in await self._read(group):
                await queue.put((change, current))

    async def _worker(self, queue: asyncio.Queue[tuple[Change, dict | Reply] | None]) -> None:
        while (item := await queue.get()) is not None:
            change, current = item
            if not self.stopped or isinstance(current, Reply):  # a refused read is a result
                self._finish(change, await self._apply(change, current))

    def _finish(self, change: Change, result: Result) -> None:
        self.results[change.key] = result
        if self.journal:
            self.journal.write("result", change=change.key, **result.to_json())
        if self.on_result:
            self.on_result(change, result)

    async def _read(self, group: list[Change]) -> list[tuple[Change, dict | Reply]]:
        """Current state for a customer's changes: one list call for several subscriptions."""
        first = group[0]
        if first.kind == "subscriptions" and len(group) > 1:
            path = f"/v1/customers/{first.customer_id}/subscriptions"
            reply = await self.call(
                "subscriptions", "LIST", "GET", path, first.customer_id, str(uuid.uuid4())
            )
            if reply.status != 200:
                return [(c, reply) for c in group]
            items = {str(i.get("id", "")).lower(): i for i in reply.body.get("items", [])}
            missing = Reply(
                404,
                {"code": 20003, "description": "The subscription was not found for this customer."},
                reply.correlation_id,
                1,
            )
            return [(c, items.get(c.resource_id.lower(), missing)) for c in group]
        return [(c, await self._get(c)) for c in group]

    async def _get(self, change: Change, op: str = "GET", path: str | None = None) -> dict | Reply:
        reply = await self.call(
            change.kind, op, "GET", path or change.path, change.customer_id, str(uuid.uuid4())
        )
        return reply.body if reply.status == 200 and isinstance(reply.body, dict) else reply

    # --- one change ---------------------------------------------------------------------------

    async def _apply(self, change: Change, current: dict | Reply) -> Result:
        started = time.monotonic()
        result = await self._write(change, current)
        result.request_id = change.request_id
        result.elapsed_ms = round((time.monotonic() - started) * 1000)
        return result

    async def _write(self, change: Change, current: dict | Reply) -> Result:
        if isinstance(current, Reply):
            return _failed(current, READ_FAILED)
        now = datetime.now(UTC)
        assessment = assess(change, current, now)
        if not assessment.sendable:
            return _unsent(assessment)
        merged = assessment.merged
        if merged.reactivate_first:  # Partner Center: a suspended subscription changes status alone
            current = await self._reactivate(change, current, now)
            if isinstance(current, Reply):
                return _failed(current, "reactivating it first failed: ")
            merged = merge(change, current, now)
        reply = await self._patch(change, current, merged)
        if reply.status == 400 and reply.code == STALE_ETAG:  # changed meanwhile: read, retry once
            fresh = await self._get(change)
            if isinstance(fresh, Reply):
                return _failed(fresh, "reading it again after a stale etag failed: ")
            again = assess(change, fresh, now)
            if not again.sendable:
                return _unsent(again)
            merged = again.merged
            reply = await self._patch(change, fresh, merged)
        return await self._outcome(change, merged, reply)

    async def _reactivate(self, change: Change, current: dict, now: datetime) -> dict | Reply:
        """The status change on its own (its own MS-RequestId, derived from the change's)."""
        step = replace(
            change,
            values={"status": "active"},
            request_id=str(uuid.uuid5(REACTIVATE, change.request_id)),
        )
        reply = await self._patch(step, current, merge(step, current, now))
        if reply.status not in (200, 202):
            return reply
        return await self._get(change)

    async def _patch(self, change: Change, current: dict, merged: Merged) -> Reply:
        etag = (current.get("attributes") or {}).get("etag")
        return await self.call(
            change.kind,
            "PATCH",
            "PATCH",
            change.path,
            change.customer_id,
            change.request_id,
            body=merged.body,
            etag=etag,
        )

    async def _outcome(self, change: Change, merged: Merged, reply: Reply) -> Result:
        result = Result(
            "ok",
            reply.status,
            changes=merged.describe(),
            correlation_id=reply.correlation_id,
            attempts=reply.attempts,
            before={k: b for k, (b, _) in merged.diffs.items()},
        )
        if reply.status == 202:
            result.outcome = await self._poll(change, reply.location)
        elif reply.status != 200:
            failed = _failed(reply)
            failed.changes = merged.describe()
            return failed
        return result

    async def _poll(self, change: Change, location: str | None) -> str:
        """After 202: read the resource until the target values show, within the poll budget."""
        path = urlsplit(location).path if location else change.path
        deadline, delay = time.monotonic() + self.settings.poll_timeout, 0.25
        while time.monotonic() + delay < deadline and not self.stopped:
            await asyncio.sleep(delay)
            current = await self._get(change, "POLL", path)
            if isinstance(current, dict) and target_reached(change, current, datetime.now(UTC)):
                return "ok"
            delay = min(delay * 1.6, 5.0)
        return "accepted"


def _by_customer(changes: list[Change]) -> Iterator[list[Change]]:
    """Changes grouped per customer and kind, in sheet order: each group is read once."""
    groups: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in changes:
        groups[(change.kind, change.customer_id.lower())].append(change)
    return iter(list(groups.values()))


def _unsent(assessment: Assessment) -> Result:
    """A change the assessment keeps back: already done, or bound to be refused."""
    if assessment.verdict == "no_change":
        return Result("no_change")
    return Result(
        "failed",
        error_code=assessment.code,
        changes=assessment.merged.describe(),
        error_message=f"not sent: {assessment.reason}",
    )


def _failed(reply: Reply, prefix: str = "") -> Result:
    return Result(
        "failed",
        reply.status,
        reply.code,
        prefix + reply.message,
        correlation_id=reply.correlation_id,
        attempts=reply.attempts,
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return {"description": response.text[:200]}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
