"""The faults the sandbox injects on purpose (`--fail-share` and the like), so the engine's
retries, resumes and verification meet what production does to them. Which attempt gets which
fault is fixed by the seed, the request id and the attempt number."""

from __future__ import annotations

import random
from typing import Any, Literal

from starlette.responses import Response

from bulkpatch.errors import ApiError
from bulkpatch.sandbox import semantics
from bulkpatch.sandbox.config import SandboxConfig

Fault = Literal["fail", "conflict", "drop", "slow"]


class DroppedConnection(Exception):
    """The sandbox cut the connection after the response started (a fault it injects)."""


def draw(config: SandboxConfig, request_id: str, attempt: int) -> Fault | None:
    """Which fault (if any) this attempt gets: fixed by the seed, the id and the attempt."""
    x, edge = random.Random(f"{config.random_seed}:{request_id}:{attempt}").random(), 0.0
    for name, share in (
        ("fail", config.fail_share),
        ("conflict", config.conflict_share),
        ("drop", config.drop_share),
        ("slow", config.slow_share),
    ):
        edge += share
        if x < edge:
            return name  # type: ignore[return-value]
    return None


def refusal(fault: Fault | None, attempt: int) -> ApiError | None:
    """The error a fault answers instead of the call (nothing is applied), if it does."""
    if fault == "fail":
        status = 500 if attempt % 2 else 503
        return ApiError(status, status, "The service is temporarily unavailable.")
    if fault == "conflict":  # documented as 400 on "Partner Center REST error codes"
        return ApiError(
            400,
            semantics.NOT_READY,
            "Subscription is not ready to be updated. Please try again after sometime.",
        )
    return None


class Dropped(Response):
    """Starts a response, then cuts the connection: the client never sees an answer."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise DroppedConnection("the sandbox dropped this connection on purpose")
