"""One run of a sheet at a time: a run holds its sheet while it sends, so a second run of the
same sheet started meanwhile (a second upload on the page, a second terminal, a resume) is
refused with the run that holds it, before it reads or sends anything.

Two runs of one sheet at once would both read the same seats and both send: a seat change
(`+2`) would be added twice, and each run's results and undo sheet would tell only its own
half. The ledger (`runs.ledger`) stops the same seat changes once a run has applied them; this
stops them while it applies them. A sheet is known by its content (a copy or a second upload
is the same sheet), and the hold is a lock file in the user's cache folder that the system
lets go of when the process ends, so `kill -9` never leaves a stale one.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import IO

from bulkpatch import portable
from bulkpatch.errors import InputError, os_cause
from bulkpatch.settings import cache_dir

HELD = "sending"  # the cache folder's subfolder of holds, one file per sheet ever sent


class Claim:
    """The hold of one run on its sheet, until `release`."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def name(self, folder: Path) -> None:
        """Say which run holds the sheet: a run refused for it names this folder."""
        self.say(f"the run in {folder.resolve()} (process {os.getpid()})")

    def say(self, holder: str) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(holder)
        self._handle.flush()

    def release(self) -> None:
        portable.unlock(self._handle)  # before the close: Windows asks for it (`portable`)
        self._handle.close()


def claim(sha256: str, sheet: Path) -> Claim:
    """Hold the sheet whose content is `sha256` for this run; InputError naming the run that
    holds it already."""
    path = cache_dir() / HELD / f"{sha256[:32]}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        cause = os_cause(exc)
        raise InputError(f"{path}: cannot be written ({cause}); nothing was sent.") from None
    try:
        portable.lock(handle)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        handle.close()
        raise InputError(
            f"{sheet}: {holder} is sending this sheet's changes now; nothing was sent. Wait "
            "for it to finish and read its results: send again only what they leave to do."
        ) from None
    held = Claim(handle)
    started = f"{datetime.now():%H:%M:%S}"
    held.say(f"another run (process {os.getpid()}, started at {started})")  # until it has a folder
    return held
