"""The one exception tree of bulkpatch.

Bad rows are data (the issues table), not exceptions. These classes are for what stops a
command or a call: terminal errors end it with a one-line message, transient ones may be retried.
"""

from __future__ import annotations


class BulkpatchError(Exception):
    """Base of every error bulkpatch raises on purpose; its text is a complete user message."""


class TerminalError(BulkpatchError):
    """Retrying cannot help: the command stops and says why."""


class InputError(TerminalError):
    """The input sheet cannot be used at all (unreadable, not a sheet, columns missing): exit 2."""


class TransientError(BulkpatchError):
    """A passing failure (throttling, a dropped connection): the same call may succeed later."""
