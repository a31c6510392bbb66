"""What an export hands back: the file it wrote, the customers and rows it read, the calls it
took, and what to do with the file next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkpatch.report.words import plural
from bulkpatch.runs.result import Run


@dataclass(kw_only=True)
class ExportRun(Run):
    """What an export read and wrote: the file, the customers, the rows, the calls it took."""

    target: str
    kind: str
    output: Path
    customers: int
    rows: int
    failed: dict[str, str]  # customer id -> why Partner Center refused its list
    calls: dict[str, int]  # PAGE (customer list pages), LIST (one per customer)
    throttled: int
    elapsed: float
    filters: dict[str, Any]
    template: bool = False  # `bulkpatch template`: the workbook with no rows, nothing read
    run_by: dict[str, Any] | None = None  # who read it (`network.target.identity`)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "customers": self.customers,
            "customers_failed": len(self.failed),
        }

    def summary(self) -> dict[str, Any]:
        total = sum(self.calls.values())
        return {
            "target": self.target,
            "kind": self.kind,
            "template": self.template,
            "run_by": self.run_by,
            "output": str(self.output),
            **super().summary(),
            "failed_customers": self.failed,
            "filters": self.filters,
            "calls": self.calls,
            "calls_total": total,
            "throttled_429": self.throttled,
            "elapsed_seconds": round(self.elapsed, 3),
            "next": self.next_step(),
        }

    def next_step(self) -> str:
        """What to do with the file: fill a template (its example row is on a workbook's
        Instructions sheet; a CSV has none), edit an export that has rows; an export of no
        rows has nothing to edit, and says why (customers not read, or no row matched)."""
        then = f"`bulkpatch check {self.output}` and `bulkpatch apply {self.output}`"
        if self.template:
            example = (
                f"a CSV has no example; `bulkpatch template {self.kind} --out FILE.xlsx` writes "
                "the workbook, whose Instructions sheet shows one"
                if self.output.suffix.lower() == ".csv"
                else "the Instructions sheet shows one"
            )
            return f"fill a row per {self.kind[:-1]} ({example}), then {then}"
        if self.rows:
            return f"edit the white columns, then {then}"
        if self.failed:
            return (
                "nothing to edit: the file has no rows, and "
                f"{plural(len(self.failed), 'customer')} could not be read "
                "(failed_customers says why)"
            )
        return "nothing to edit: the file has no rows (no row matched)"
