"""Serve a sandbox over real HTTP with uvicorn (what `bulkpatch sandbox` runs)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from bulkpatch.errors import InputError
from bulkpatch.sandbox.app import Sandbox, SandboxConfig


def serve(
    config: SandboxConfig, host: str, port: int, reseed: bool, announce: Callable[[str], None]
) -> None:
    """Bind first (so port 0 picks a free port we can print), then serve until interrupted."""
    sandbox = Sandbox(config, reseed=reseed)
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP; with Nagle on, every small answer waits 40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another "
            "--port, or --port 0 for any free one."
        ) from None
    bound = sock.getsockname()[1]
    announce(f"http://{host}:{bound}")
    server = uvicorn.Server(uvicorn.Config(sandbox.app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
