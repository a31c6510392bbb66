"""Serve the page with uvicorn: bind first (port 0 picks a free one we can print), print the
address with its one-time token, open the browser, serve until Ctrl-C."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from bulkpatch import portable
from bulkpatch.errors import InputError
from bulkpatch.ui.app import make_app
from bulkpatch.ui.guard import Session
from bulkpatch.ui.jobs import Jobs

LOOPBACK = "127.0.0.1"
RUN_ENDS = 120  # seconds a stopped run may take to finish its calls in flight and its files


def serve(
    host: str = LOOPBACK,
    port: int = 0,
    browser: bool = True,
    reports: str | Path = "reports",
    max_upload_mb: float = 50,
    say: Callable[[str], None] = print,
    profile: str | None = None,
) -> None:
    """Serve `bulkpatch ui` on `host:port` until interrupted; `say` hears the lines to print."""
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    session = Session(hosts=allowed_hosts(host, bound))
    app = make_app(session, Path(reports), int(max_upload_mb * 1024 * 1024), profile)
    shown = LOOPBACK if _loopback(host) else host
    url = f"http://{shown}:{bound}/?token={session.token}"
    if not _loopback(host):
        say(
            f"Warning: listening on {host}, not only this machine: anyone who can reach it and "
            "learns the address below can use the page. Plain http: not encrypted."
        )
    say(f"bulkpatch ui: open {url}")
    say("The address works once, in one browser. Ctrl-C stops the page.")
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = _Server(config, app.state.jobs, say)
    if browser:
        threading.Thread(target=_open_when_up, args=(server, url), daemon=True).start()
    # uvicorn stops on Ctrl-C, then raises it again for the caller: here that is the end.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    app.state.jobs.wait(RUN_ENDS)
    say("bulkpatch ui stopped.")


class _Server(uvicorn.Server):
    """uvicorn's server, whose Ctrl-C first stops the runs under way as it stops `apply`:
    their calls in flight finish and their journals are kept, to resume."""

    def __init__(self, config: uvicorn.Config, jobs: Jobs, say: Callable[[str], None]) -> None:
        super().__init__(config)
        self.jobs, self.say = jobs, say

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        for folder in map(Path.resolve, self.jobs.stop_runs()):
            self.say(
                f"Stopping the run in {folder}: calls on their way finish, the rest is not "
                f"sent. Resume it on the page, or with `bulkpatch apply --resume {folder}`."
            )
        super().handle_exit(sig, frame)


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host headers the page answers to: loopback names, and `host` when given."""
    names = {LOOPBACK, "localhost"} | ({host} if not _loopback(host) else set())
    return frozenset(f"{n}:{port}" for n in names)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _listen(host: str, port: int) -> socket.socket:
    try:
        return portable.listening_socket(host, port, backlog=64)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port, or leave "
            "it out for any free one."
        ) from None


def _open_when_up(server: uvicorn.Server, url: str) -> None:
    """Open the default browser once the server answers (it would show an error before)."""
    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)
