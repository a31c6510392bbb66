"""Serve a sandbox over real HTTP with uvicorn (what `bulkpatch sandbox` runs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from bulkpatch import portable
from bulkpatch.errors import InputError
from bulkpatch.sandbox.app import Sandbox
from bulkpatch.sandbox.config import SandboxConfig, SeedSpec


def configure(
    options: dict[str, Any], db: Path, seed_from: list[Path], size: str | None
) -> tuple[SandboxConfig, bool]:
    """A SandboxConfig from the command line's text, and whether to seed it anew (a seed
    given on the command line replaces the state in `db`)."""
    values = {"db": str(db)}
    for f in dataclasses.fields(SandboxConfig):
        text = options.get(f.name)
        if f.name not in options:
            continue
        if "choices" in f.metadata and text not in f.metadata["choices"]:
            choices = " or ".join(f.metadata["choices"])
            raise InputError(f"--{f.name.replace('_', '-')} is {choices}, not {text!r}.")
        try:
            values[f.name] = f.metadata["parse"](text) if "parse" in f.metadata and text else text
        except ValueError as exc:
            raise InputError(f"--{f.name.replace('_', '-')}: {exc}.") from None
    synthetic = _size(size) if size else None
    spec = SeedSpec(sheets=seed_from, synthetic=synthetic)
    seeded = bool(seed_from or synthetic)
    return SandboxConfig(**values, seed=spec if seeded else SeedSpec.samples()), seeded


def _size(text: str) -> tuple[int, int]:
    try:
        customers, per = (int(p) for p in text.split(","))
    except ValueError:
        raise InputError(f"--seed {text!r} is not CUSTOMERS,SUBSCRIPTIONS, e.g. 40,50.") from None
    return customers, per


def serve(
    config: SandboxConfig, host: str, port: int, reseed: bool, announce: Callable[[str], None]
) -> None:
    """Bind first (so port 0 picks a free port we can print), then serve until interrupted."""
    sandbox = Sandbox(config, reseed=reseed)
    try:
        # a long backlog: connections made as soon as the address is printed wait, not fail
        sock = portable.listening_socket(host, port, backlog=128)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another "
            "--port, or --port 0 for any free one."
        ) from None
    bound = sock.getsockname()[1]
    announce(f"http://{host}:{bound}")
    server = uvicorn.Server(uvicorn.Config(sandbox.app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
