"""bulkpatch: push spreadsheet changes to Microsoft Partner Center, safely and fast.

The public API: one function per command (`check_file`, `plan_file`, `apply_file`,
`export_file`, `template_file`), the result each returns, the settings, and the errors. The
stages are folders (README, "Layout"). Names are imported on first use, so `bulkpatch check`
does not pay for the network and sign-in stack.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ApplyRun": "bulkpatch.commands.results",
    "CheckRun": "bulkpatch.commands.results",
    "PlanRun": "bulkpatch.commands.results",
    "ExportRun": "bulkpatch.export.result",
    "apply_file": "bulkpatch.commands.apply",
    "check_file": "bulkpatch.commands.api",
    "export_file": "bulkpatch.export.read",
    "template_file": "bulkpatch.export.read",
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
