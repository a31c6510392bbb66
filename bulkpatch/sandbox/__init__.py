"""The built-in Partner Center look-alike: what `apply` talks to when no credentials are set,
and what every test of the engine trusts."""

from bulkpatch.sandbox.app import Sandbox
from bulkpatch.sandbox.config import SandboxConfig
from bulkpatch.sandbox.faults import DroppedConnection
from bulkpatch.sandbox.seed import SeedSpec
from bulkpatch.sandbox.transport import SandboxTransport

__all__ = ["DroppedConnection", "Sandbox", "SandboxConfig", "SandboxTransport", "SeedSpec"]
