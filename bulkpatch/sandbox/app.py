"""The sandbox: a Partner Center look-alike (Starlette) that behaves like the real service in
everything bulkpatch depends on: auth, error bodies and codes, full-object PATCH, etags, the
business rules, rate limits with Retry-After, 202 Accepted, MS-RequestId replays, latency and
faults. `bulkpatch sandbox` serves it with uvicorn; tests and the default target run it
in-process through `SandboxTransport`."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulkpatch.errors import ApiError
from bulkpatch.sandbox import resources, semantics
from bulkpatch.sandbox.seed import SeedSpec, build
from bulkpatch.sandbox.store import Store

Limit = tuple[int, float]  # requests per window of seconds
Fault = Literal["fail", "conflict", "drop", "slow"]
PREFIX = "/{version}/customers/{customer_id}"


def _knob(default: Any, help: str, **cli: Any) -> Any:
    """A SandboxConfig field with the words `bulkpatch sandbox --help` shows for it."""
    return field(default=default, metadata={"help": help, **cli})


def parse_limit(text: str) -> Limit:
    """`500/60` is 500 calls per 60 seconds; a bare `500` is per minute."""
    calls, _, seconds = text.partition("/")
    try:
        limit = (int(calls), float(seconds or 60))
    except ValueError:
        raise ValueError(f"{text!r} is not CALLS/SECONDS, e.g. 500/60") from None
    if limit[0] < 1 or limit[1] <= 0:
        raise ValueError(f"{text!r}: calls and seconds must be positive")
    return limit


SHARE = {"min": 0.0, "max": 1.0}


@dataclass
class SandboxConfig:
    """Every knob of the sandbox; faults are shares of calls, drawn from `random_seed`."""

    db: str = ":memory:"  # the SQLite file holding the state (`bulkpatch sandbox --db`)
    seed: SeedSpec = field(default_factory=SeedSpec.samples)
    token: str | None = _knob(None, "Accept only this bearer token (default: any).")
    rate_limit: Limit | None = _knob(  # noqa: RUF009 (a dataclass field with metadata)
        None,
        "Limit on subscription calls (GET, list, PATCH), e.g. 500/60.",
        parse=parse_limit,
        metavar="CALLS/SECONDS",
    )
    order_rate_limit: Limit | None = _knob(  # noqa: RUF009 (as above)
        None,
        "Limit on order calls (default: as --rate-limit).",
        parse=parse_limit,
        metavar="CALLS/SECONDS",
    )
    limit_scope: Literal["partner", "customer"] = _knob(
        "partner", "Count the limit per partner or per customer.", choices=("partner", "customer")
    )
    latency_ms: float = _knob(0.0, "Added to every call.", min=0)
    accepted_share: float = _knob(0.0, "Share of PATCHes answered 202 Accepted.", **SHARE)
    accepted_delay: float = _knob(1.0, "Seconds before a 202 change shows.", min=0)
    fail_share: float = _knob(0.0, "Share of calls answered 500/503 (nothing applied).", **SHARE)
    conflict_share: float = _knob(
        0.0, "Share of calls answered 400 800082 (not ready to be updated).", **SHARE
    )
    drop_share: float = _knob(
        0.0, "Share of calls whose connection is cut after the work is done.", **SHARE
    )
    slow_share: float = _knob(0.0, "Share of calls answered only after --slow-seconds.", **SHARE)
    slow_seconds: float = _knob(60.0, "How long a slow call takes.", min=0)
    fixed_auto_renew_share: float = _knob(
        0.0,
        "Share of legacy subscriptions whose auto-renew flag cannot be changed: the PATCH "
        "answers 200 and the flag stays (Partner-Center-PowerShell issue 115).",
        **SHARE,
    )
    random_seed: int = _knob(0, "Seed for every fault drawn.")

    def __post_init__(self) -> None:
        if self.order_rate_limit is None:
            self.order_rate_limit = self.rate_limit


class DroppedConnection(Exception):
    """The sandbox cut the connection after the response started (a fault it injects)."""


class SlidingWindow:
    """At most `limit` calls in any `seconds`-long window, per scope key."""

    def __init__(self, limit: Limit) -> None:
        self.limit, self.seconds = limit
        self.hits: dict[str, deque[float]] = defaultdict(deque)

    def admit(self, key: str, now: float) -> float | None:
        """None when the call may go ahead, else the seconds until it could."""
        hits = self.hits[key]
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.seconds - now
        hits.append(now)
        return None


class Sandbox:
    """One sandbox: its state, its counters and its Starlette app."""

    def __init__(self, config: SandboxConfig | None = None, *, reseed: bool = True) -> None:
        self.config = config or SandboxConfig()
        self.store = Store(self.config.db)
        if reseed or self.store.empty():
            self._seed()
        self._zero()
        self.app = Starlette(
            routes=[
                Route(PREFIX + "/subscriptions/{rid}", self.subscription, methods=["GET", "PATCH"]),
                Route(PREFIX + "/subscriptions", self.subscriptions, methods=["GET"]),
                Route(PREFIX + "/orders/{rid}", self.order, methods=["GET", "PATCH"]),
                Route("/_sandbox/stats", self.stats, methods=["GET"]),
                Route("/_sandbox/reset", self.reset, methods=["POST"]),
            ]
        )

    def _seed(self) -> None:
        self.store.clear()
        for kind, items in build(self.config.seed, datetime.now(UTC)).items():
            self.store.put_many(kind, items)

    def _zero(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.counts: Counter[str] = Counter()
        self.applied_per_resource: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.limits = {
            kind: SlidingWindow(limit)
            for kind, limit in (
                ("subscriptions", self.config.rate_limit),
                ("orders", self.config.order_rate_limit),
            )
            if limit
        }

    # --- routes ----------------------------------------------------------------------------------

    async def subscription(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._call(request, "subscription", self._get_subscription)
        return await self._call(request, "subscription", self._patch_subscription)

    async def subscriptions(self, request: Request) -> Response:
        return await self._call(request, "subscriptions", self._list_subscriptions)

    async def order(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._call(request, "order", self._get_order)
        return await self._call(request, "order", self._patch_order)

    async def stats(self, request: Request) -> Response:
        calls: dict[str, dict[str, int]] = defaultdict(dict)
        for (method, resource), n in sorted(self.calls.items()):
            calls[method][resource] = n
        return JSONResponse(
            {
                "calls": calls,
                "throttled": self.counts["throttled"],
                "applied": self.counts["applied"],
                "replayed": self.counts["replayed"],
                "accepted": self.counts["accepted"],
                "applied_per_resource": self.applied_per_resource,
                "faults": {
                    k.removeprefix("fault "): v
                    for k, v in self.counts.items()
                    if k.startswith("fault ")
                },
            }
        )

    async def reset(self, request: Request) -> Response:
        self._seed()
        self._zero()
        return JSONResponse({"reset": True})

    # --- the behaviour every call shares ---------------------------------------------------------

    async def _call(
        self, request: Request, resource: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("ms-requestid") or str(uuid.uuid4())
        echo = {
            "MS-RequestId": request_id,
            "MS-CorrelationId": request.headers.get("ms-correlationid") or str(uuid.uuid4()),
        }
        self.calls[(request.method, resource)] += 1
        response = await self._gate(request, resource, request_id)
        fault = None
        if response is None:
            fault = self._draw_fault(request_id)
            response = await self._respond(request, handler, request_id, fault)
        response.headers.update(echo)
        if fault == "drop":
            return _Dropped()
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        return response

    async def _gate(self, request: Request, resource: str, request_id: str) -> Response | None:
        """Auth, then the rate limit, then latency: the response that stops the call, if any."""
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token or (self.config.token is not None and token != self.config.token):
            return _error(ApiError(401, 401, "Unauthorized: the bearer token is missing or wrong."))
        kind = "orders" if resource == "order" else "subscriptions"
        limiter = self.limits.get(kind)
        if limiter:
            scope = request.path_params["customer_id"].lower()
            key = scope if self.config.limit_scope == "customer" else "partner"
            wait = limiter.admit(key, time.monotonic())
            if wait is not None:
                self.counts["throttled"] += 1
                seconds = max(1, math.ceil(wait))
                return JSONResponse(
                    {
                        "statusCode": 429,
                        "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                    },
                    status_code=429,
                    headers={"Retry-After": str(seconds)},
                )
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        return None

    def _draw_fault(self, request_id: str) -> Fault | None:
        """Which fault (if any) this attempt gets: fixed by the seed, the id and the attempt."""
        self.seen[request_id] += 1
        draw = random.Random(f"{self.config.random_seed}:{request_id}:{self.seen[request_id]}")
        x, edge = draw.random(), 0.0
        c = self.config
        for name, share in (
            ("fail", c.fail_share),
            ("conflict", c.conflict_share),
            ("drop", c.drop_share),
            ("slow", c.slow_share),
        ):
            edge += share
            if x < edge:
                self.counts[f"fault {name}"] += 1
                return name  # type: ignore[return-value]
        return None

    async def _respond(
        self,
        request: Request,
        handler: Callable[[Request], Awaitable[Response]],
        request_id: str,
        fault: Fault | None,
    ) -> Response:
        if fault == "fail":
            status = 500 if self.seen[request_id] % 2 else 503
            return _error(ApiError(status, status, "The service is temporarily unavailable."))
        if fault == "conflict":  # documented as 400 on "Partner Center REST error codes"
            return _error(
                ApiError(
                    400,
                    semantics.NOT_READY,
                    "Subscription is not ready to be updated. Please try again after sometime.",
                )
            )
        if request.method != "PATCH":
            return await handler(request)
        stored = self.store.reply(request_id)
        if stored is not None:
            self.counts["replayed"] += 1
            status, body, location = stored
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"Location": location} if location else None,
            )
        response = await handler(request)
        self.store.remember(
            request_id,
            response.status_code,
            response.body.decode(),
            response.headers.get("location"),
        )
        return response

    # --- resources -------------------------------------------------------------------------------

    async def _get_subscription(self, request: Request) -> Response:
        found = self._read("subscriptions", request)
        return found if isinstance(found, Response) else JSONResponse(found)

    async def _get_order(self, request: Request) -> Response:
        found = self._read("orders", request)
        return found if isinstance(found, Response) else JSONResponse(found)

    async def _list_subscriptions(self, request: Request) -> Response:
        customer = request.path_params["customer_id"]
        items = self.store.list("subscriptions", customer, time.time())
        if items is None:  # an unknown customer: 403 20002 ("Partner Center REST error codes")
            return _error(
                ApiError(
                    403,
                    semantics.NO_RELATIONSHIP,
                    f"The partner ID {resources.PARTNER_ID} has no commerce relationship with "
                    f"the customer ID {customer}.",
                )
            )
        return JSONResponse(
            {
                "totalCount": len(items),
                "items": items,
                "links": {"self": resources.link(unversioned(request.url.path))},
                "attributes": {"objectType": "Collection"},
            }
        )

    async def _patch_subscription(self, request: Request) -> Response:
        if_match = request.headers.get("if-match")
        return await self._patch(
            request,
            "subscriptions",
            lambda cur, body, now: semantics.patch_subscription(
                cur, body, if_match, now, auto_renew_fixed=self._auto_renew_fixed(cur)
            ),
        )

    def _auto_renew_fixed(self, sub: dict[str, Any]) -> bool:
        share = self.config.fixed_auto_renew_share
        legacy = "etag" in (sub.get("attributes") or {})
        return legacy and resources.rng(sub["id"].lower(), "auto-renew fixed").random() < share

    async def _patch_order(self, request: Request) -> Response:
        customer = request.path_params["customer_id"]

        def subscription(sid: str) -> dict[str, Any] | None:
            return self.store.get("subscriptions", customer, sid, time.time()) if sid else None

        def change(cur: dict, body: Any, now: datetime) -> dict:
            return semantics.patch_order(cur, body, now, subscription)

        return await self._patch(request, "orders", change)

    def _read(self, kind: str, request: Request) -> dict[str, Any] | Response:
        customer, rid = request.path_params["customer_id"], request.path_params["rid"]
        found = self.store.get(kind, customer, rid, time.time())
        if found is None:
            code = (
                semantics.SUBSCRIPTION_NOT_FOUND
                if kind == "subscriptions"
                else semantics.ORDER_NOT_FOUND
            )
            noun = "Subscription" if kind == "subscriptions" else "Order"
            return _error(
                ApiError(404, code, f"{noun} {rid} was not found for customer {customer}.")
            )
        return found

    async def _patch(
        self, request: Request, kind: str, change: Callable[[dict, Any, datetime], dict]
    ) -> Response:
        current = self._read(kind, request)
        if isinstance(current, Response):
            return current
        try:
            body = json.loads(await request.body())
            new = change(current, body, datetime.now(UTC))
        except json.JSONDecodeError:
            return _error(
                ApiError(400, semantics.BAD_INPUT, "Invalid input: the body is not JSON.")
            )
        except ApiError as refusal:
            return _error(refusal)
        customer = request.path_params["customer_id"]
        if new != current:
            self.counts["applied"] += 1
            self.applied_per_resource[new["id"]] += 1
        draw = random.Random(f"{self.config.random_seed}:{request.headers.get('ms-requestid')}:202")
        # 202 only for subscriptions: the order PATCH documents 200 (reference/update-order).
        accepted = kind == "subscriptions" and draw.random() < self.config.accepted_share
        if new != current and accepted:
            self.counts["accepted"] += 1
            self.store.save(
                kind, customer, new, visible_at=time.time() + self.config.accepted_delay
            )
            # The Location is relative to the versioned base, as Partner Center writes it
            # ("Change the quantity of a subscription"): `/customers/{c}/subscriptions/{s}`.
            return Response(status_code=202, headers={"Location": unversioned(request.url.path)})
        self.store.save(kind, customer, new)
        return JSONResponse(new)


def unversioned(path: str) -> str:
    """`/v1/customers/...` as Partner Center's links write it: `/customers/...`."""
    parts = path.split("/", 2)
    return "/" + parts[2] if len(parts) > 2 and parts[1].startswith("v") else path


def _error(refusal: ApiError) -> JSONResponse:
    return JSONResponse(refusal.body(), status_code=refusal.status)


class _Dropped(Response):
    """Starts a response, then cuts the connection: the client never sees an answer."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise DroppedConnection("the sandbox dropped this connection on purpose")


class SandboxTransport(httpx.ASGITransport):
    """The in-process seam: a dropped connection surfaces as httpx's own protocol error."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except DroppedConnection as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None
