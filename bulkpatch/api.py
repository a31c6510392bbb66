"""The library API: one function per command, each running the pipeline stages in order.

Notebooks and scripts call these; the CLI is a thin layer over them. `check_file` lives here;
the plan and apply runs, which need the network stack, live in `bulkpatch.run`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bulkpatch import report
from bulkpatch.catalog import Kind
from bulkpatch.check import Checked, check
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
        return add_counts([p.counts() for p in self.parts])

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
    folder = folder_for(out, reports_base, source)
    tables = [report.table(p.sheet, p.outcomes, p.issues) for p in parts]
    written = write_csvs(folder, "check", parts, tables)
    notes = []
    if xlsx:
        summary = [
            ("Outcome", add_counts([p.counts() for p in parts])),
            ("Problem (rule)", add_counts([p.rule_counts() for p in parts])),
            ("Sheet", {p.sheet.label: p.sheet.frame.height for p in parts}),
        ]
        if report.write_workbook(folder / "check.xlsx", tables, summary):
            written.append(folder / "check.xlsx")
        else:
            notes.append("check.xlsx was not written: the sheet has more rows than Excel can open.")
    return CheckRun(source, folder, parts, written, notes)


# --- shared helpers ------------------------------------------------------------------------------


def folder_for(out: str | Path | None, base: str | Path, source: Path) -> Path:
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)
    return report.run_folder(Path(base), source)


def write_csvs(
    folder: Path, stem: str, parts: list[Checked], tables: list[report.Table]
) -> list[Path]:
    written = []
    for part, t in zip(parts, tables, strict=True):
        name = f"{stem}.csv" if len(parts) == 1 else f"{stem}-{part.sheet.kind}.csv"
        report.write_csv(folder / name, t.headers, t.frame)
        written.append(folder / name)
    return written


def add_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for one in counts:
        total.update(one)
    return dict(total)
