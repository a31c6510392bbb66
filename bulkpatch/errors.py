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


class ApiError(TerminalError):
    """Partner Center refused a call (a 4xx other than throttling), with its error code."""

    def __init__(self, status: int, code: int, description: str) -> None:
        super().__init__(f"{status} {code}: {description}")
        self.status, self.code, self.description = status, code, description

    def body(self) -> dict[str, object]:
        """The error body Partner Center sends for this refusal."""
        return {
            "code": self.code,
            "description": self.description,
            "data": [],
            "source": "PartnerFD",
        }
