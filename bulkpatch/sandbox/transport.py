"""The in-process seam: tests and the default target call the sandbox's app through httpx,
without a socket, and still see a dropped connection as a network client would."""

from __future__ import annotations

import httpx

from bulkpatch.sandbox.faults import DroppedConnection


class SandboxTransport(httpx.ASGITransport):
    """The in-process seam: a dropped connection surfaces as httpx's own protocol error."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except DroppedConnection as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None
