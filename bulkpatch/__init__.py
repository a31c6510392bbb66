"""bulkpatch: push spreadsheet changes to Microsoft Partner Center, safely and fast.

Pipeline: load -> check -> plan -> apply -> report, one module each (with its helpers beside
it); `catalog` holds the field table they all read; `commands` holds the one-call function
behind each command. Names are imported on first use, so `bulkpatch check` does not pay for the
network and sign-in stack.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ApplyRun": "bulkpatch.commands.api",
    "CheckRun": "bulkpatch.commands.api",
    "PlanRun": "bulkpatch.commands.api",
    "ExportRun": "bulkpatch.export.result",
    "apply_file": "bulkpatch.commands.api",
    "check_file": "bulkpatch.commands.api",
    "export_file": "bulkpatch.commands.api",
    "template_file": "bulkpatch.commands.api",
    "plan_file": "bulkpatch.commands.api",
    "Settings": "bulkpatch.settings",
    "BulkpatchError": "bulkpatch.errors",
    "InputError": "bulkpatch.errors",
    "TerminalError": "bulkpatch.errors",
    "TransientError": "bulkpatch.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "__version__":  # stated once, in pyproject.toml; read on demand (20 ms)
        from importlib import metadata

        return metadata.version("bulkpatch")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bulkpatch' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
