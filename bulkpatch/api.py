"""The library API: one function per command, each running the pipeline stages in order.

Notebooks and scripts call these; the CLI is a thin layer over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulkpatch import report
from bulkpatch.catalog import Kind
from bulkpatch.check import OUTCOMES, Checked, check
from bulkpatch.load import load


@dataclass
class CheckRun:
    """What a dry-run check found, and where its report files are."""

    source: Path
    folder: Path
    parts: list[Checked]
    reports: list[Path]
    notes: list[str]

    def counts(self) -> dict[str, int]:
        """Rows per outcome over every checked sheet."""
        return {o: sum(p.counts()[o] for p in self.parts) for o in OUTCOMES}

    def summary(self) -> dict[str, object]:
        """The run as plain data (what `--json` prints)."""
        counts = self.counts()
        return {
            "input": str(self.source),
            "rows": sum(counts.values()),
            **counts,
            "sheets": [
                {
                    "sheet": p.sheet.sheet_name,
                    "kind": p.sheet.kind,
                    "rows": p.sheet.frame.height,
                    **p.counts(),
                    "problems_by_rule": p.rule_counts(),
                }
                for p in self.parts
            ],
            "run_folder": str(self.folder),
            "reports": [str(r) for r in self.reports],
            "notes": self.notes,
        }


def check_file(
    path: str | Path,
    *,
    sheet: str | None = None,
    kind: Kind | None = None,
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
    xlsx: bool = True,
) -> CheckRun:
    """Load and check a sheet, then write `check.csv` and `check.xlsx` into the run folder."""
    source = Path(path)
    parts = [check(s) for s in load(source, sheet=sheet, kind=kind)]
    folder = Path(out) if out else report.run_folder(Path(reports_base), source)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for part in parts:
        name = "check.csv" if len(parts) == 1 else f"check-{part.sheet.kind}.csv"
        headers, frame = report.result_frame(part)
        report.write_csv(folder / name, headers, frame)
        written.append(folder / name)
    notes = []
    if xlsx and report.write_check_xlsx(folder / "check.xlsx", parts):
        written.append(folder / "check.xlsx")
    elif xlsx:
        notes.append("check.xlsx was not written: the sheet has more rows than Excel can open.")
    return CheckRun(source, folder, parts, written, notes)
