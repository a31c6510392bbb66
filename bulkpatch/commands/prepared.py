"""What plan and apply share inside the command layer: the `Options` a public function's
keywords become, and the `Prepared` run (a sheet checked, matched and turned into changes, in
its run folder, against its target). Internal: scripts see the results (`commands.results`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkpatch import settings as config
from bulkpatch.catalog.fields import Kind
from bulkpatch.check.checker import Checked
from bulkpatch.plan.changes import Change
from bulkpatch.report.rows import Held
from bulkpatch.report.stamp import Stamp, now, stamp
from bulkpatch.runs.folder import RunFolder
from bulkpatch.runs.recover import Recovery
from bulkpatch.runs.result import add_counts
from bulkpatch.settings import Settings

if TYPE_CHECKING:  # the network side: imported when a run calls out (see `Prepared.session`)
    from bulkpatch.apply.session import Session, Shown, Watch
    from bulkpatch.network.target import Target


@dataclass
class Options:
    """What plan and apply are told besides the sheet: its worksheet and kind, the target and
    profile, where to write, the user settings (None: not given, so the environment, then the
    profile, then the default decide), a `settings` object for a script's own engine tuning,
    and the hooks a face (CLI, web page) uses to show progress and where calls go."""

    sheet: str | None = None
    kind: Kind | None = None
    target: str | None = None
    profile: str | config.Profile | None = None
    out: str | Path | None = None
    reports_base: str | Path = "reports"
    settings: Settings | None = None
    rate: float | None = None
    order_rate: float | None = None
    limit_scope: str | None = None
    concurrency: int | None = None
    notes: list[str] = field(default_factory=list)  # headers to keep as notes (near misses)
    accept_differences: bool = False  # send even when expected values differ from the live ones
    add_again: bool = False  # apply seat changes a finished run of the same sheet already added
    keep_renewal_changes: bool = False  # schedule again what a mid-term change removes
    all_or_nothing: bool = False  # apply: send only when no row is invalid or would be refused
    progress: str | bool | Watch = False  # "bar", "lines" (one every 10 s), or a page's Watch
    announce: Callable[[Prepared], None] | None = None  # hears the run before reads or writes
    command: str | None = None  # the command as run, for the reports (the CLI's, secrets hidden)

    def resolved(self) -> tuple[config.Profile, Settings]:
        """The profile, and the settings merged from every source."""
        chosen = config.profile(self.profile)
        flags = {k: getattr(self, k) for k in config.USER_SETTINGS}
        return chosen, chosen.settings(self.settings, **flags)

    def saved(self, resolved: Target) -> dict[str, Any]:
        """What decides what a run sends: kept in its manifest, part of its fingerprint."""
        return {
            "sheet": self.sheet,
            "kind": self.kind,
            "notes": self.notes or [],
            "target": self.target or resolved.base_url,
            "embedded": resolved.embedded,
            "accept_differences": self.accept_differences,
            "keep_renewal_changes": self.keep_renewal_changes,
            # kept only when asked, so a resume sends nothing either (and other runs' manifests,
            # and their fingerprints, stay as they were)
            **({"all_or_nothing": True} if self.all_or_nothing else {}),
        }


@dataclass
class Prepared:
    """A sheet checked and turned into changes, in its run folder, against its target."""

    folder: RunFolder
    target: Target
    parts: list[Checked]
    changes: list[Change]
    held: Held
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # resuming: may have landed
    recovery: Recovery = field(default_factory=Recovery)  # resuming: beyond the readable journal
    listed: dict[str, Any] = field(default_factory=dict)  # matching's list reads, by customer
    started: datetime = field(default_factory=now)

    def stamp(self, command: str | None) -> Stamp:
        """What this run's reports say they are, as of now."""
        f = self.folder
        return stamp(self.target, f.source, f.sha256, f.path, self.started, command)

    def session(self, settings: Settings, progress: Shown) -> Session:
        """Calls to this run's target with `settings`."""
        from bulkpatch.apply.session import Session

        return Session(self.target, self.folder.sheet, settings, progress, self.listed)

    def rows(self) -> dict[str, int]:
        """The sheet's rows by check outcome."""
        return add_counts([p.counts() for p in self.parts])
