"""What a report says it is, on its first lines: where its changes went (the sandbox, production,
a URL) in words and colour, the partner tenant when known, the input file and its SHA-256, the
run folder, when it ran, bulkpatch's version, the command as run and who ran it. The Summary
sheet and `summary.json` open with it, so a sandbox result forwarded never passes for a
production one.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import shlex
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkpatch.report.words import identity_words

if TYPE_CHECKING:
    from bulkpatch.network.target import Target

# Where a run's calls went -> the Summary banner's (fill, font) colours.
COLOURS = {
    "sandbox": ("#DDEBF7", "#1F4E78"),
    "production": ("#C00000", "#FFFFFF"),
    "url": ("#FFEB9C", "#9C5700"),
    "none": ("#EDEDED", "#404040"),
}
SECRET_OPTION = re.compile(r"(?i)^--?[\w-]*(token|secret|password|key)[\w-]*(=|$)")
LOOKS_SECRET = re.compile(r"^eyJ[\w-]+\.[\w-]+\.")  # a JWT, wherever it was typed


class Digest:
    """The SHA-256 of a file, computed in a thread while bulkpatch loads and reads the sheet
    (hashlib lets go of the interpreter while it hashes, so a big sheet costs little wall time
    for it). `of` starts one, or finds the one already started for the same file: the CLI starts
    it before the command layer is imported, when the machine has a core to spare."""

    _started: dict[tuple[Path, int, int], Digest] = {}  # noqa: RUF012 (this process's digests)

    def __init__(self, path: Path) -> None:
        self.hex = ""
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    @classmethod
    def of(cls, path: Path) -> Digest | None:
        """The digest of `path` as it is now (None for what is not a file: a folder, a missing
        file; load says what is wrong with it)."""
        try:
            found = path.resolve().stat()
        except OSError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        key = (path.resolve(), found.st_size, found.st_mtime_ns)
        if key not in cls._started:
            cls._started[key] = cls(path)
        return cls._started[key]

    def _run(self, path: Path) -> None:
        try:
            self.hex = file_sha256(path)
        except OSError:  # gone or unreadable since: load says so; the report has no digest
            self.hex = ""

    def result(self) -> str:
        self._thread.join()
        return self.hex


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass
class Stamp:
    """The identity of one run's reports."""

    where: str  # sandbox, production, url, or none (a check reads nothing)
    target: str  # the same in words
    tenant: str | None
    input: Path
    sha256: str
    run_folder: Path
    started: datetime
    finished: datetime
    version: str
    command: str
    identity: dict[str, Any] | None = None  # who ran it (`run_by`)

    def to_json(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "target": self.target,
            "partner_tenant": self.tenant,
            "run_by": self.identity,
            "input": self.input.name,
            "input_path": str(self.input),
            "input_sha256": self.sha256,
            "run_folder": str(self.run_folder),
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds"),
            "bulkpatch_version": self.version,
            "command": self.command,
        }

    def lines(self) -> dict[str, str]:
        """The Summary sheet's opening lines: label -> text."""
        unknown = "none (a sandbox)" if self.where in ("sandbox", "none") else "not known"
        return {
            "Target": self.target,
            "Partner tenant": self.tenant or unknown,
            "Input file": self.input.name,
            "Input SHA-256": self.sha256,
            "Run folder": str(self.run_folder),
            "Started": moment(self.started),
            "Finished": moment(self.finished),
            "bulkpatch version": self.version,
            "Command": self.command,
            "Run by": identity_words(self.identity),
        }


def now() -> datetime:
    """This moment in the machine's own time zone (reports say which)."""
    return datetime.now().astimezone()


def stamp(
    target: Target | None,
    source: Path,
    sha256: str,
    folder: Path,
    started: datetime,
    command: str | None,
    identity: dict[str, Any] | None = None,
) -> Stamp:
    """The stamp of a run that ends now; `identity`: who ran it (default: who the target's
    calls go out as, or the computer's account for a check)."""
    from bulkpatch import __version__

    where, words = place(target)
    return Stamp(
        where,
        words,
        partner_tenant(target),
        source,
        sha256,
        folder.resolve(),
        started,
        now(),
        __version__,
        command or "(from Python)",
        identity or run_by(target),
    )


def run_by(target: Target | None) -> dict[str, Any]:
    """Who runs a command against `target`: its sign-in's identity; a check, which signs in to
    nothing, is run by the computer's account."""
    if target is None:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no user name in the environment nor the user database
            name = "unknown"
        return {"kind": "local", "name": name, "key": f"local:-:{name}".lower()}
    from bulkpatch.network.target import identity

    return identity(target)


def place(target: Target | None) -> tuple[str, str]:
    """Where the calls went, as a word and as a sentence a manager reads."""
    if target is None:
        return "none", "Check only: nothing was read from or sent to Partner Center"
    return placed(target.where, target.base_url, embedded=target.embedded)


# What a sandbox does to Partner Center, in the tense of who reads it: a report tells of a run
# done, the web page of runs to come.
TENSES = {"past": "changed", "present": "changes", "future": "will change"}


def placed(where: str, url: str, tense: str = "past", embedded: bool = False) -> tuple[str, str]:
    """`where` calls to `url` go (`sandbox`, `production` or `url`, as `target.where` decides
    it), and the sentence saying so."""
    nothing = f"nothing in Partner Center {TENSES[tense]}"
    if embedded:
        return "sandbox", f"SANDBOX (built-in): {nothing}"
    if where == "production":
        return "production", f"PRODUCTION: Partner Center itself ({url})"
    if where == "sandbox":
        return "sandbox", f"SANDBOX at {url}: {nothing}"
    return "url", f"{url} (not Partner Center's production address)"


def retold(words: str, tense: str) -> str:
    """A stamp's sentence (`Stamp.target`) in another tense."""
    return words.replace(
        f"in Partner Center {TENSES['past']}", f"in Partner Center {TENSES[tense]}"
    )


def partner_tenant(target: Target | None) -> str | None:
    """The partner tenant from the signed-in token's claims or the profile, when known."""
    if target is None or target.embedded:  # check calls nothing; the sandbox has no tenant
        return None
    from bulkpatch.errors import BulkpatchError
    from bulkpatch.network.auth import BearerAuth

    if not isinstance(target.auth, BearerAuth):
        return None
    try:
        return target.auth.provider.status().get("tenant")
    except BulkpatchError:
        return None


def moment(when: datetime) -> str:
    """`2026-11-21 16:05:12 +01:00 (CET)`: local time with its offset and zone name."""
    offset = when.strftime("%z")
    return f"{when:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]} ({when.tzname()})"


def command_line(argv: list[str]) -> str:
    """The command as typed, with the value of any option named like a secret (and anything
    that looks like a token) replaced by `***`."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next or LOOKS_SECRET.match(arg):
            shown.append("***")
            hide_next = False
            continue
        found = SECRET_OPTION.match(arg)
        if found and found.group(2) == "=":
            arg = arg.split("=", 1)[0] + "=***"
        hide_next = bool(found) and found.group(2) == ""
        shown.append(arg)
    return shlex.join(["bulkpatch", *shown])
