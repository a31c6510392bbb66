"""bulkpatch: push spreadsheet changes to Microsoft Partner Center, safely and fast.

Pipeline: load -> check -> plan -> apply -> report, one module each; `catalog` holds the
field table they all read, and `api` the one-call functions behind each command.
"""

from bulkpatch.api import ApplyRun, CheckRun, PlanRun, apply_file, check_file, plan_file
from bulkpatch.errors import BulkpatchError, InputError, TerminalError, TransientError

__all__ = [
    "ApplyRun",
    "BulkpatchError",
    "CheckRun",
    "InputError",
    "PlanRun",
    "TerminalError",
    "TransientError",
    "apply_file",
    "check_file",
    "plan_file",
]
__version__ = "0.1.0"
