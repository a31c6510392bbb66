"""The built-in Partner Center look-alike: what `apply` talks to when no credentials are set,
and what every test of the engine trusts.

Names are imported on first use: the CLI reads SandboxConfig for its options on every command,
and the server (Starlette) and the transport (httpx) would add a fifth to `check`'s run time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkpatch.sandbox.app import Sandbox
    from bulkpatch.sandbox.config import SandboxConfig, SeedSpec
    from bulkpatch.sandbox.faults import DroppedConnection
    from bulkpatch.sandbox.transport import SandboxTransport

__all__ = ["DroppedConnection", "Sandbox", "SandboxConfig", "SandboxTransport", "SeedSpec"]
_HOMES = {
    "Sandbox": "app",
    "SandboxConfig": "config",
    "DroppedConnection": "faults",
    "SeedSpec": "config",
    "SandboxTransport": "transport",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
