"""The one exception tree of bulkpatch.

Bad rows are data (the issues table), not exceptions. These classes are for what stops a
command or a call: terminal errors end it with a one-line message, transient ones may be retried.
"""

from __future__ import annotations

import errno


class BulkpatchError(Exception):
    """Base of every error bulkpatch raises on purpose; its text is a complete user message."""


class TerminalError(BulkpatchError):
    """Retrying cannot help: the command stops and says why."""


class InputError(TerminalError):
    """The input sheet cannot be used at all (unreadable, not a sheet, columns missing): exit 2."""


class StoppedError(TerminalError):
    """A run stopped by a fault outside the sheet (the run folder cannot be written): exit 3,
    which never means "nothing sent"."""


class FolderFault(StoppedError):
    """A run folder that could not be written: where, why, and how many changes were
    applied before it stopped (None: the run had not started sending)."""

    def __init__(self, folder: object, exc: OSError, applied: int | None = None) -> None:
        self.folder, self.exc, self.applied = folder, exc, applied
        if applied is None:
            then = "nothing was sent"
        else:
            then = (
                f"{applied} changes were applied before it stopped. Fix that, then "
                f"`bulkpatch apply --resume {folder}` finishes the run: nothing applied is "
                "sent twice, and the results are written"
            )
        super().__init__(f"{folder}: cannot be written ({os_cause(exc)}); {then}.")

    def after(self, applied: int) -> FolderFault:
        """The same fault, told after `applied` changes were applied."""
        return FolderFault(self.folder, self.exc, applied)


def os_cause(exc: OSError) -> str:
    """What went wrong on this machine, in plain words."""
    words = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the folder is read-only",
        errno.EACCES: "there is no permission to write there",
        errno.EPERM: "there is no permission to write there",
        errno.ENOENT: "the folder was removed",
        errno.EFBIG: "a file grew past the size this system allows",
    }
    return words.get(exc.errno or 0, exc.strerror or type(exc).__name__)


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


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Unsent(Exception):
    """Not an error but a signal inside a run: a write the run stopped before sending (it
    waited for its slot, and Stop or Ctrl-C came first). Its change stays without a result,
    so the run reports it not sent and a resume sends it."""
