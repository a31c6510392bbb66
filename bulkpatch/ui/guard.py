"""What keeps the local page to the person who started it: the Host header (no DNS
rebinding), a one-time token that becomes a session cookie, a CSRF token on every POST,
headers that forbid inline script, framing and MIME sniffing, and a bound on what a request
may send.

A page on another site can make the browser send requests to 127.0.0.1; without the cookie
(SameSite=Strict, so never sent from another site) or the CSRF token it gets nothing done.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "bulkpatch_session"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say `Origin: null`
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the guard turns away: its status and the line the user reads."""

    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status, self.line = status, line


@dataclass
class Session:
    """The page's secrets: the token printed once, the cookie it becomes, the CSRF token."""

    hosts: frozenset[str]  # Host headers this server answers to: 127.0.0.1:PORT, localhost:PORT
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    cookie: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    used: bool = False  # the printed token opens one browser session, once

    def admit(self, request: Request) -> Response | None:
        """None for a request to serve; else the answer that turns it away (or trades the
        printed token for the cookie, and drops it from the address bar)."""
        if request.headers.get("host", "") not in self.hosts:
            return PlainTextResponse("This page answers only at the address it printed.", 421)
        given = request.query_params.get("token")
        if given is not None:
            if self.used or not secrets.compare_digest(given, self.token):
                return PlainTextResponse(
                    "This address was used already, or its token is wrong: start "
                    "`bulkpatch ui` again for a new one.",
                    403,
                )
            self.used = True
            moved = RedirectResponse(request.url.path, status_code=303)
            moved.set_cookie(COOKIE, self.cookie, httponly=True, samesite="strict", path="/")
            return moved
        if not secrets.compare_digest(request.cookies.get(COOKIE, ""), self.cookie):
            return PlainTextResponse(
                "Open the address `bulkpatch ui` printed (it carries the access token).", 403
            )
        return None

    def check_form(self, request: Request, form: FormData) -> None:
        """A POST must come from our own page: its Origin (when sent) is ours, and it carries
        the CSRF token the page was rendered with."""
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] not in self.hosts:
            raise Refused(403, "This form was sent from another site.")
        sent = form.get("csrf")
        if not isinstance(sent, str) or not secrets.compare_digest(sent, self.csrf):
            raise Refused(403, "This form has expired: reload the page and send it again.")


class BodyLimit:
    """A request body is counted as it streams in and refused once it passes `most` bytes,
    whatever its Content-Length said (or without one: a chunked upload): a 60 MB upload is
    never read whole, into memory or a temporary file. The refusal is raised where the page
    reads the body, so the page it gets is the usual one."""

    def __init__(self, app: ASGIApp, most: int, line: str) -> None:
        self.app, self.most, self.line = app, most, line

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.most:
                raise Refused(413, self.line)
            return message

        await self.app(scope, counted, send)


class Guard(BaseHTTPMiddleware):
    """Every request passes `Session.admit`; every answer carries the safety headers."""

    def __init__(self, app, session: Session) -> None:
        super().__init__(app)
        self.session = session

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = self.session.admit(request) or await call_next(request)
        response.headers.update(HEADERS)
        return response
