"""The sandbox: a Partner Center look-alike (Starlette) that behaves like the real service in
everything bulkpatch depends on: auth, error bodies and codes, full-object PATCH, etags, the
business rules, rate limits with Retry-After, 202 Accepted, MS-RequestId replays, latency and
faults. `bulkpatch sandbox` serves it with uvicorn; tests and the default target run it
in-process through `SandboxTransport`.

This module holds the app, its state and counters, and what every call goes through (auth,
rate limit, faults, replays); the knobs are `config`'s, the resource handlers `handlers`'."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulkpatch.errors import ApiError
from bulkpatch.sandbox import faults, identity, ratelimit
from bulkpatch.sandbox.config import SandboxConfig
from bulkpatch.sandbox.handlers import ResourceHandlers, error
from bulkpatch.sandbox.seed import build
from bulkpatch.sandbox.store import Store

PREFIX = "/{version}/customers/{customer_id}"


class Sandbox(ResourceHandlers):
    """One sandbox: its state, its counters and its Starlette app."""

    def __init__(self, config: SandboxConfig | None = None, *, reseed: bool = True) -> None:
        """`reseed`: start from the seed alone; otherwise the state in `config.db` stays as
        earlier runs left it and only ids it does not hold yet are seeded."""
        self.config = config or SandboxConfig()
        self.store = Store(self.config.db)
        self._key: bytes | None = None  # read when the first sandbox-issued token arrives
        self._seed(fresh=reseed)
        self._zero()
        self.app = Starlette(
            routes=[
                Route(PREFIX + "/subscriptions/{rid}", self.subscription, methods=["GET", "PATCH"]),
                Route(
                    PREFIX + "/subscriptions/{rid}/transitionEligibilities",
                    self.eligibilities,
                    methods=["GET"],
                ),
                Route(PREFIX + "/subscriptions", self.subscriptions, methods=["GET"]),
                Route(PREFIX + "/orders/{rid}", self.order, methods=["GET", "PATCH"]),
                Route(PREFIX + "/orders", self.orders, methods=["GET"]),
                Route("/{version}/customers", self.customers, methods=["GET"]),
                Route("/_sandbox/stats", self.stats, methods=["GET"]),
                Route("/_sandbox/reset", self.reset, methods=["POST"]),
            ]
        )

    def _seed(self, fresh: bool = True) -> None:
        if fresh:
            self.store.clear()
        for kind, items in build(self.config.seed, datetime.now(UTC)).items():
            self.store.add_new(kind, items)

    def _zero(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.counts: Counter[str] = Counter()
        self.applied_per_resource: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.limits = ratelimit.windows(self.config)

    # --- routes ----------------------------------------------------------------------------------

    async def subscription(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._call(request, "subscription", self._get_subscription)
        return await self._call(request, "subscription", self._patch_subscription)

    async def eligibilities(self, request: Request) -> Response:
        return await self._call(request, "transitionEligibilities", self._get_eligibilities)

    async def subscriptions(self, request: Request) -> Response:
        return await self._call(request, "subscriptions", self._list_subscriptions)

    async def orders(self, request: Request) -> Response:
        return await self._call(request, "orders", self._list_orders)

    async def customers(self, request: Request) -> Response:
        # No limit is documented for the customer list: it counts against the subscription
        # calls' limit, so a client that paces it with them never meets a 429 it did not expect.
        return await self._call(request, "customers", self._list_customers)

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
            return faults.Dropped()
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        return response

    async def _gate(self, request: Request, resource: str, request_id: str) -> Response | None:
        """Auth, then the rate limit, then latency: the response that stops the call, if any."""
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token or (self.config.token is not None and token != self.config.token):
            return error(ApiError(401, 401, "Unauthorized: the bearer token is missing or wrong."))
        if identity.claimed(token) is not None and not self._signed(token):
            return error(
                ApiError(
                    401,
                    401,
                    "Unauthorized: this sandbox did not sign that token, or it "
                    "has expired; sign in again with `bulkpatch auth login --sandbox-as NAME`.",
                )
            )
        wait = self._admit(request, resource)
        if wait is not None:
            self.counts["throttled"] += 1
            return ratelimit.throttled(wait)
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        return None

    def _signed(self, token: str) -> bool:
        """A token claiming to be the sandbox's own is checked against its signing key."""
        if self._key is None:
            self._key = identity.signing_key()
        return identity.verify(token, self._key) is not None

    def _admit(self, request: Request, resource: str) -> float | None:
        """None when the rate limit lets the call through, else the seconds until it would."""
        limiter = self.limits.get("orders" if resource in ("order", "orders") else "subscriptions")
        if not limiter:
            return None
        scope = request.path_params.get("customer_id", "").lower()  # none for the customer list
        key = scope if self.config.limit_scope == "customer" else "partner"
        return limiter.admit(key, time.monotonic())

    def _draw_fault(self, request_id: str) -> faults.Fault | None:
        """Which fault (if any) this attempt gets, counted."""
        self.seen[request_id] += 1
        fault = faults.draw(self.config, request_id, self.seen[request_id])
        if fault is not None:
            self.counts[f"fault {fault}"] += 1
        return fault

    async def _respond(
        self,
        request: Request,
        handler: Callable[[Request], Awaitable[Response]],
        request_id: str,
        fault: faults.Fault | None,
    ) -> Response:
        """The fault's error, a PATCH's stored reply to the same MS-RequestId, or the handler's."""
        refusal = faults.refusal(fault, self.seen[request_id])
        if refusal is not None:
            return error(refusal)
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
