"""bulkpatch: push spreadsheet changes to Microsoft Partner Center, safely and fast.

Pipeline: load -> check -> plan -> apply -> report, one module each; `catalog` holds the
field table they all read, and `api` the one-call functions behind each command.
"""

from bulkpatch.api import CheckRun, check_file
from bulkpatch.errors import BulkpatchError, InputError, TerminalError, TransientError

__all__ = [
    "BulkpatchError",
    "CheckRun",
    "InputError",
    "TerminalError",
    "TransientError",
    "check_file",
]
__version__ = "0.1.0"
