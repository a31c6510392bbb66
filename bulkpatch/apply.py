"""Stage 4, apply: send the changes, read-modify-write, under Partner Center's limits.

The only stage that touches the network, through one `httpx.AsyncClient` (the embedded sandbox
and tests plug in with an ASGI transport). Per customer: one read just before its writes (a list
call when it has several subscriptions), then each change merged into the fresh resource and
the full object PATCHed. Calls are paced evenly per budget (subscriptions, orders); a 429
pauses every worker; retries keep the change's MS-RequestId, a deliberate second attempt after
a business answer gets its own; every response is journaled. What Partner Center answers is
checked against what the sheet asked before a row is `ok`.
"""

from __future__ import annotations

import asyncio
import random
import re
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
from bulkpatch.plan import Assessment, Change, Merged, assess, merge, show

RETRY_STATUSES = {500, 502, 503, 504}
# "Subscription is not ready to be updated. Please try again after sometime": HTTP 400 on
# "Partner Center REST error codes" (https://learn.microsoft.com/partner-center/developer/
# error-codes), also seen as 409. Retried whatever its status, with the same MS-RequestId.
NOT_READY = 800082
NOT_READY_STATUSES = {400, 409}
STALE_ETAG = 2055
READ_FAILED = "reading it failed: "  # a change whose resource could not be read first
LATE = 0.005  # seconds: a call woken later than this (and a whole slot) takes a new slot
REACTIVATE = uuid.UUID("5e0f6a7b-8c9d-4e1f-a2b3-c4d5e6f7a8b9")
ATTEMPT = uuid.UUID("7c1d9e2f-3a4b-4c5d-8e6f-a0b1c2d3e4f5")
VERSIONED = re.compile(r"^/v\d+(/|$)")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
WORDS = {"autoRenewEnabled": "auto-renew"}


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
        """Partner Center's error code (documented as a string, so "800082" counts too)."""
        code = self.body.get("code") if isinstance(self.body, dict) else None
        try:
            return int(code) if code is not None and not isinstance(code, bool) else None
        except (TypeError, ValueError):
            return None

    @property
    def token_refused(self) -> bool:
        """401, or 403 without a Partner Center code: the token, not the row, was refused.

        A 403 that carries a code (20002 no relationship with the customer, 2006, 800019,
        800027, 800067 seat cap, 800088/800089, ...) is a business answer about this row only
        ("Partner Center REST error codes" lists them as Forbidden with a code).
        """
        return self.status == 401 or (self.status == 403 and self.code is None)

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
                or (reply.status in NOT_READY_STATUSES and reply.code == NOT_READY)
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
        self.auth_failures = self.auth_failures + 1 if reply.token_refused else 0
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
        result.request_id = result.request_id or change.request_id
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
        request_id = change.request_id
        reply = await self._patch(change, current, merged, request_id)
        if reply.status == 400 and reply.code == STALE_ETAG:  # changed meanwhile: read, retry once
            fresh = await self._get(change)
            if isinstance(fresh, Reply):
                return _failed(fresh, "reading it again after a stale etag failed: ")
            again = assess(change, fresh, now)
            if not again.sendable:
                return _unsent(again)
            merged = again.merged
            # "Partner Center REST request/response headers" (https://learn.microsoft.com/
            # partner-center/developer/headers): MS-RequestId stays the same across a timeout,
            # and is reset once a response (success or business failure) was received. The 2055
            # was a response, so the second attempt is a new call with its own id, derived from
            # the change and the attempt so that a resumed run sends the same one again.
            request_id = attempt_id(change.request_id, 2)
            reply = await self._patch(change, fresh, merged, request_id)
        result = await self._outcome(change, merged, reply)
        result.request_id = request_id
        return result

    async def _reactivate(self, change: Change, current: dict, now: datetime) -> dict | Reply:
        """The status change on its own (its own MS-RequestId, derived from the change's)."""
        step = replace(
            change,
            values={"status": "active"},
            request_id=str(uuid.uuid5(REACTIVATE, change.request_id)),
        )
        reply = await self._patch(step, current, merge(step, current, now), step.request_id)
        if reply.status not in (200, 202):
            return reply
        return await self._get(change)

    async def _patch(self, change: Change, current: dict, merged: Merged, request_id: str) -> Reply:
        etag = (current.get("attributes") or {}).get("etag")
        return await self.call(
            change.kind,
            "PATCH",
            "PATCH",
            change.path,
            change.customer_id,
            request_id,
            body=merged.body,
            etag=etag,
        )

    async def _outcome(self, change: Change, merged: Merged, reply: Reply) -> Result:
        if reply.status not in (200, 202):
            failed = _failed(reply)
            failed.changes = merged.describe()
            return failed
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
        elif isinstance(reply.body, dict) and (missed := unmet(change, reply.body)):
            # Verify what was written: a 200 whose resource does not show a target did not
            # apply it (legacy subscriptions whose auto-renew cannot be changed answer 200 and
            # keep it: Partner-Center-PowerShell issue 115,
            # https://github.com/microsoft/Partner-Center-PowerShell/issues/115). After a 202
            # the poll does the same: `ok` only once the resource shows every target.
            result.outcome = "failed"
            result.error_message = "Partner Center answered 200 but " + "; ".join(missed)
        return result

    async def _poll(self, change: Change, location: str | None) -> str:
        """After 202: read the resource until the target values show, within the poll budget.

        `Location` is relative to the versioned base ("Change the quantity of a subscription":
        `/customers/{c}/subscriptions/{s}` means `{base}/v1/customers/...`). A poll answered
        404 or 400 stops using it and reads the resource at its own path instead.
        """
        path = versioned(location, change.path) if location else change.path
        deadline, delay = time.monotonic() + self.settings.poll_timeout, 0.25
        while time.monotonic() + delay < deadline and not self.stopped:
            await asyncio.sleep(delay)
            reply = await self.call(
                change.kind, "POLL", "GET", path, change.customer_id, str(uuid.uuid4())
            )
            if reply.status in (400, 404) and path != change.path:
                path = change.path
                continue
            shown = reply.body if reply.status == 200 else None
            if isinstance(shown, dict) and not unmet(change, shown):
                return "ok"
            delay = min(delay * 1.6, 5.0)
        return "accepted"


def attempt_id(request_id: str, attempt: int) -> str:
    """The MS-RequestId of a deliberate further attempt of a change: new, yet reproducible."""
    return str(uuid.uuid5(ATTEMPT, f"{request_id}:attempt {attempt}"))


def versioned(link: str, canonical: str) -> str:
    """A Partner Center link or Location as a path under the API version.

    Links are relative to the versioned base (`/customers/...` is `/v1/customers/...`); a link
    that already names a version is kept; the host of an absolute link is never followed.
    """
    parts = urlsplit(link)
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    if not VERSIONED.match(path):
        version = canonical.split("/")[1] if VERSIONED.match(canonical) else "v1"
        path = f"/{version}{path}"
    return path + (f"?{parts.query}" if parts.query else "")


def unmet(change: Change, resource: dict[str, Any]) -> list[str]:
    """Every target of `change` that `resource` does not show, in words.

    Enums compare without case (answers may say `Annual`), dates by day when the sheet gave a
    day, lists as sets. An order cancel that names lines is met when those lines show
    quantity 0 ("Cancel software purchases": the order stays `completed` while others remain).
    """
    missed = []
    line_cancel = (
        change.kind == "orders" and change.lines and change.values.get("status") == "cancelled"
    )
    for name, want in change.values.items():
        if line_cancel and name == "status":
            continue
        have = _dotted(resource, name)
        if not same(have, want):
            missed.append(_still(name, have, want))
    if change.kind == "orders":
        items = resource.get("lineItems") or []
        for line in change.lines:
            item = _line(items, line)
            if item is None:
                missed.append(f"line item {line.get('lineItemNumber')} is not in the order")
                continue
            targets = {
                k: v for k, v in line.items() if k not in ("lineItemNumber", "subscriptionId")
            }
            if line_cancel:
                targets["quantity"] = 0
            for name, want in targets.items():
                if not same(item.get(name), want):
                    missed.append(
                        _still(
                            f"line item {item.get('lineItemNumber')} {name}", item.get(name), want
                        )
                    )
    return missed


def same(have: Any, want: Any) -> bool:
    """Does a value Partner Center shows satisfy a target the sheet set?"""
    if isinstance(want, bool) or isinstance(have, bool):
        return have is want
    if isinstance(want, list):
        return isinstance(have, list) and {_fold(i) for i in have} == {_fold(i) for i in want}
    if isinstance(want, str) and isinstance(have, str):
        if DATE.match(want) and DATE.match(have) and len(want) <= 10:
            return have[:10] == want[:10]
        return have.casefold() == want.casefold()
    return have == want


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _dotted(resource: dict[str, Any], name: str) -> Any:
    node: Any = resource
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _line(items: list[dict[str, Any]], line: dict[str, Any]) -> dict[str, Any] | None:
    number, sub = line.get("lineItemNumber"), str(line.get("subscriptionId") or "").lower()
    for item in items:
        if number is not None and item.get("lineItemNumber") == number:
            return item
        if sub and str(item.get("subscriptionId", "")).lower() == sub:
            return item
    return None


def _still(name: str, have: Any, want: Any) -> str:
    word = WORDS.get(name, name)
    if isinstance(want, bool):
        return f"{word} is still {'on' if have else 'off'}"
    return f"{word} is still {show(have)} (asked {show(want)})"


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
    """A call that ended without the change: `failed`, or `not_sent` when the token was refused.

    A 401 (or a 403 without a code) never reached Partner Center's business logic: the row is
    `not_sent` (journaled so), counts toward the streak that stops the run, and a resume with a
    good token sends it again.
    """
    if reply.token_refused:
        return Result(
            "not_sent",
            reply.status,
            reply.code,
            f"not sent: Partner Center refused the token (HTTP {reply.status}"
            + (f": {reply.message})" if reply.message else ")"),
            correlation_id=reply.correlation_id,
            attempts=reply.attempts,
        )
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
