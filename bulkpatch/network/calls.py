"""One call to Partner Center: paced evenly under the limits, retried as documented, counted.

`Caller.call` waits for its budget's slot (subscriptions and orders each have one), sends, and
retries with backoff and the same MS-RequestId what is worth retrying (5xx, 429 after its
Retry-After, 800082 "not ready", timeouts, dropped connections); a streak of refused tokens or
of calls with no answer, or a call refused with 429 past a bounded wait, stops the caller.
Every answer is read within bounds (time, size, JSON) and journaled.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from bulkpatch.errors import Unsent
from bulkpatch.settings import Settings

RETRY_STATUSES = {500, 502, 503, 504}
# "Subscription is not ready to be updated. Please try again after sometime": HTTP 400 on
# "Partner Center REST error codes" (https://learn.microsoft.com/partner-center/developer/
# error-codes), also seen as 409. Retried whatever its status, with the same MS-RequestId.
NOT_READY = 800082
NOT_READY_STATUSES = {400, 409}
LATE = 0.005  # seconds: a call woken later than this (and a whole slot) takes a new slot
ATTEMPT = uuid.UUID("7c1d9e2f-3a4b-4c5d-8e6f-a0b1c2d3e4f5")
VERSIONED = re.compile(r"^/v\d+(/|$)")
SECONDS = re.compile(r"^\d+(\.\d+)?$")
MESSAGE = 500  # characters of a message kept for a result cell


@dataclass(frozen=True)
class Unreadable:
    """An answer that cannot be taken as JSON: empty, not JSON, or larger than bulkpatch reads;
    `words` say which, `excerpt` what it began with."""

    words: str
    excerpt: str = ""


@dataclass
class Reply:
    """One call's final answer after retries (status None: no answer at all). `body` is the
    JSON answered, or `Unreadable`; `seen` says, when set, that a 200 was not the resource
    asked for and what it showed instead (`answer.unproven`)."""

    status: int | None
    body: Any
    correlation_id: str
    attempts: int
    location: str | None = None
    error: str = ""
    seen: str = ""

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
        if self.seen:
            return self.seen
        if self.status is None:
            return f"no answer after {self.attempts} attempts ({self.error})"
        if isinstance(self.body, dict):
            said = self.body.get("description") or self.body.get("message") or ""
            return str(said)[:MESSAGE]
        if isinstance(self.body, Unreadable) and self.body.excerpt:
            return self.body.excerpt  # an error page: its first words
        return f"HTTP {self.status}"


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


class Recorder(Protocol):
    """Where every answer is written down before it counts: a run's journal
    (`bulkpatch.runs.journal.Journal`); an export records nothing. A write that could not be
    made says False, and `on_fault` hears why."""

    on_fault: Callable[[OSError], None] | None

    def write(self, event: str, **fields: Any) -> bool: ...


class Caller:
    """Calls through `client` under `settings`; counts calls, statuses, 429s and streaks."""

    def __init__(
        self, client: httpx.AsyncClient, settings: Settings, journal: Recorder | None
    ) -> None:
        self.client, self.settings, self.journal = client, settings, journal
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

    def stop(self, reason: str) -> None:
        """Send nothing new; calls in flight finish. Unsent changes become `not_sent`."""
        self.stopped = self.stopped or reason

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
        headers: dict[str, str] | None = None,
        stoppable: bool = False,
    ) -> Reply:
        """`headers`: more to send, such as the `MS-ContinuationToken` a next page asks for.
        `stoppable`: a first write that nothing has landed before; if the run stops while it
        waits for its slot, it raises Unsent instead of going out."""
        attempts = throttles = 0
        waited = 0.0
        while True:
            attempts += 1
            # A permit before the slot: a call whose turn has come goes out at once. (A call
            # that waited for a permit after its slot went out late, then in a bunch with
            # others: the bunches are what a per-second limit refuses with 429.)
            async with self.in_flight:
                await self.budgets[kind].slot(customer)
                if stoppable and self.stopped and attempts == 1:
                    raise Unsent(request_id)
                reply, retry_after = await self._send(
                    kind, op, method, path, request_id, body, etag, headers
                )
            reply.attempts = attempts
            if reply.status == 429:
                wait = retry_wait(retry_after, throttles, self.settings.retry_after_max)
                if self._throttled_out(throttles, waited + wait, retry_after):
                    return reply
                throttles, attempts, waited = throttles + 1, attempts - 1, waited + wait
                self.throttled += 1
                self.budgets[kind].throttled(wait)
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

    def _throttled_out(self, throttles: int, waited: float, retry_after: str | None) -> bool:
        """Whether a call refused with 429 has waited enough: past `max_throttles` refusals or
        `throttle_patience` seconds of waiting, the service keeps refusing and the run stops
        (the call's change is not sent; a resume sends it). A run already stopping waits no
        more either."""
        s = self.settings
        if not self.stopped and throttles < s.max_throttles and waited <= s.throttle_patience:
            return False
        header = f"Retry-After: {retry_after[:40]}" if retry_after is not None else "no Retry-After"
        self.stop(
            f"Partner Center kept refusing calls with 429 (too many requests): one call was "
            f"refused {throttles + 1} times ({header}); bulkpatch waits at most "
            f"{s.retry_after_max:g} s at a time and {s.throttle_patience:g} s per call. Wait a "
            "while, then resume the run"
        )
        return True

    async def _send(
        self,
        kind: str,
        op: str,
        method: str,
        path: str,
        request_id: str,
        body: Any,
        etag: str | None,
        extra: dict[str, str] | None = None,
    ) -> tuple[Reply, str | None]:
        """One attempt, within `call_timeout` for the whole answer; the Retry-After header of a
        429 comes back as sent."""
        correlation = str(uuid.uuid4())
        headers = {**(extra or {}), "MS-RequestId": request_id, "MS-CorrelationId": correlation}
        if etag:
            headers["If-Match"] = etag
        self.calls[(kind, op)] += 1
        started, retry_after = time.monotonic(), None
        limit = self.settings.max_answer_bytes
        try:
            async with (
                asyncio.timeout(self.settings.call_timeout),
                self.client.stream(method, path, json=body, headers=headers) as response,
            ):
                content = await _content(response, limit)
            reply = Reply(
                response.status_code,
                parsed(content, limit),
                correlation,
                0,
                response.headers.get("location"),
            )
            self.budgets[kind].answered()
            retry_after = response.headers.get("retry-after")
        except (httpx.TransportError, TimeoutError) as exc:
            reply = Reply(None, None, correlation, 0, error=_describe(exc))
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
                **(
                    {"retry_after": retry_after and retry_after[:100]}
                    if reply.status == 429
                    else {}
                ),
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


def attempt_id(request_id: str, attempt: int) -> str:
    """The MS-RequestId of a deliberate further attempt of a change: new, yet reproducible."""
    return str(uuid.uuid5(ATTEMPT, f"{request_id}:attempt {attempt}"))


def same_origin(link: str, base: httpx.URL) -> bool:
    """Whether a link (a 202's `Location`) stays on the target: relative, or naming the
    target's own scheme, host and port. Any other (or one that is no URL) is never followed."""
    try:
        url = httpx.URL(link)
    except (httpx.InvalidURL, ValueError, TypeError):
        return False
    if not url.scheme and not url.host:
        return True
    ours = (base.scheme, base.host.rstrip("."), base.port)
    return (url.scheme or base.scheme, url.host.rstrip("."), url.port) == ours


async def customer_pages(caller: Caller, size: int) -> AsyncIterator[Reply]:
    """Every page of the partner's customer list, following each page's `links.next` (its uri
    and the MS-ContinuationToken header it names); the last reply yielded is a refusal when a
    page could not be read (its status not 200).

    "Get a list of customers" (https://learn.microsoft.com/partner-center/developer/
    get-a-list-of-customers): `GET /v1/customers?size={size}`; "Manage customer accounts -
    Get customers" (https://learn.microsoft.com/rest/api/partner-center/
    manage-customer-accounts/get-customers): a paged answer carries a continuation token for
    `seekOperation`; Partner Center's paged collections write both into `links.next` (its
    `uri` and `headers`), which is followed exactly as given, under the versioned base.
    """
    path: str | None = f"/v1/customers?size={size}"
    headers: dict[str, str] | None = None
    while path and not caller.stopped:
        reply = await caller.call(
            "subscriptions", "PAGE", "GET", path, "", str(uuid.uuid4()), headers=headers
        )
        yield reply
        if reply.status != 200 or not isinstance(reply.body, dict):
            return
        after = (reply.body.get("links") or {}).get("next")
        path = versioned(after["uri"], "/v1/customers") if after else None
        headers = {h["key"]: h["value"] for h in (after or {}).get("headers") or []}


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


def retry_wait(header: str | None, throttles: int, longest: float) -> float:
    """Seconds a 429 waits: its Retry-After, in seconds or as an HTTP-date ("Retry-After",
    RFC 9110 section 10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after), at
    most `longest`. None or unreadable: 1 s, doubled for each earlier 429 of the same call,
    at most `longest` too ("API throttling guidance for partners calling Partner Center APIs",
    https://learn.microsoft.com/partner-center/developer/api-throttling-guidance, asks to wait
    out the Retry-After it sends)."""
    text = (header or "").strip()
    seconds: float | None = None
    if SECONDS.match(text):
        seconds = float(text)
    elif text:
        try:
            when = parsedate_to_datetime(text)
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            seconds = max(0.0, (when - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = None
    if seconds is None:
        seconds = 2.0 ** min(throttles, 30)
    return min(seconds, longest)


async def _content(response: httpx.Response, limit: int) -> bytes | None:
    """The answer's bytes (decoded as sent: gzip and the like), or None past `limit`: a reply
    is never held whole in memory beyond what bulkpatch reads."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parsed(content: bytes | None, limit: int) -> Any:
    """The JSON an answer holds, or `Unreadable` saying why not (NaN and Infinity, nesting too
    deep for the parser, numbers of thousands of digits are not JSON bulkpatch reads)."""
    if content is None:
        return Unreadable(f"a body larger than the {limit:,} bytes bulkpatch reads")
    if not content.strip():
        return Unreadable("an empty body")
    try:
        return json.loads(content, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        text = content[:120].decode("utf-8", "replace")
        return Unreadable("text that is not JSON", " ".join(text.split())[:100])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
