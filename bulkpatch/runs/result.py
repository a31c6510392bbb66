"""What every command hands back: its folder, the files it wrote, notes for the user, and the
same figures as plain data (`counts()`, `summary()`: what `--json` prints as it is).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkpatch.report.stamp import Stamp


@dataclass(kw_only=True)
class Run:
    """What every command returns: its folder, the files it wrote, and notes for the user."""

    folder: Path
    reports: list[Path]
    notes: list[str] = field(default_factory=list)
    stamp: Stamp | None = None  # what its reports say they are

    def counts(self) -> dict[str, int]:
        """Rows per outcome."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """The run as plain data (what `--json` prints)."""
        return {
            "report": self.stamp.to_json() if self.stamp else None,
            **self.counts(),
            "outcomes": self.counts(),  # every command's summary has it, apply's too
            "run_folder": str(self.folder),
            "reports": [str(r) for r in self.reports],
            "notes": self.notes,
        }


def add_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    """Counts per key, summed over several sheets."""
    total: Counter[str] = Counter()
    for one in counts:
        total.update(one)
    return dict(total)
