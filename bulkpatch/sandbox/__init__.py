"""The built-in Partner Center look-alike: what `apply` talks to when no credentials are set,
and what every test of the engine trusts."""

from bulkpatch.sandbox.app import DroppedConnection, Sandbox, SandboxConfig, SandboxTransport
from bulkpatch.sandbox.seed import SeedSpec

__all__ = ["DroppedConnection", "Sandbox", "SandboxConfig", "SandboxTransport", "SeedSpec"]
