"""The rate limit: Partner Center counts calls in a sliding window (per partner or per customer)
and answers a call over the limit 429 with Retry-After, which the engine's pacing relies on."""

from __future__ import annotations

import math
from collections import defaultdict, deque

from starlette.responses import JSONResponse

from bulkpatch.sandbox.config import Limit, SandboxConfig


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


def windows(config: SandboxConfig) -> dict[str, SlidingWindow]:
    """A window for each kind of call (`subscriptions`, `orders`) that has a limit."""
    return {
        kind: SlidingWindow(limit)
        for kind, limit in (
            ("subscriptions", config.rate_limit),
            ("orders", config.order_rate_limit),
        )
        if limit
    }


def throttled(wait: float) -> JSONResponse:
    """The 429 a call over the limit gets, its Retry-After in whole seconds (at least 1)."""
    seconds = max(1, math.ceil(wait))
    return JSONResponse(
        {
            "statusCode": 429,
            "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
        },
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )
