"""What a resume makes of what the readable journal does not tell: damaged lines, and the undo
sheets an earlier attempt of the run wrote.

Nothing in a damaged line is trusted; it is named by number, with the changes its bytes still
name. A change with no readable record (no result, no intent) is read again in Partner Center
before anything is decided, as one with an intent and no answer is; its values before come from
the earlier undo sheet when that has its rows. Whatever the resume finds, the earlier sheet's
rows of a change it cannot rebuild are kept as they were: a resume never writes an undo sheet
with fewer changes than the one it replaces. A seat change that a damaged line may have
recorded, whose total no earlier sheet gives, is not sent (whether its seats were added is not
known); a change Partner Center already holds is `no_change`, and says this run may have
applied it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkpatch.outcomes import APPLIED
from bulkpatch.plan.changes import Change
from bulkpatch.report import undo
from bulkpatch.report.words import plural
from bulkpatch.runs.folder import JOURNAL, UNDO
from bulkpatch.runs.journal import Damage, Replay

if TYPE_CHECKING:  # the network side (see `commands`)
    from bulkpatch.apply.outcome import Result

SHOWN = 5  # damaged lines named one by one in the notes (summary.json lists every one)


@dataclass
class Recovery:
    """What a resume found beyond the readable journal, and what it did with it."""

    damaged: list[Damage] = field(default_factory=list)
    sheets: dict[str, pl.DataFrame] = field(default_factory=dict)  # the earlier undo sheets
    unread: list[str] = field(default_factory=list)  # earlier undo sheets that could not be read
    kept: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # their rows kept
    recovered: set[str] = field(default_factory=set)  # intents rebuilt from those rows
    held: list[str] = field(default_factory=list)  # seat changes not sent: added or not, unknown
    unrecorded: set[str] = field(default_factory=set)  # read again with nothing to go on
    unknown: list[str] = field(default_factory=list)  # held already: this run's doing or not

    def lines(self, key: str) -> str:
        """The damaged lines that may have been this change's record, in words ('' if none)."""
        numbers = [d.line for d in self.damaged if d.concerns(key)]
        if not numbers:
            return ""
        return f"{JOURNAL} line{'s' if len(numbers) > 1 else ''} " + ", ".join(map(str, numbers))

    def counts(self) -> dict[str, int]:
        """The Summary sheet's counts of it (none for a journal read whole)."""
        counts = {
            "lines that cannot be read": len(self.damaged),
            "changes kept from the earlier undo sheet": len(self.kept),
            "changes not known to be this run's": len(self.unknown),
            "seat changes not sent": len(self.held),
        }
        return counts if any(counts.values()) else {}

    def table(self) -> pl.DataFrame:
        """The damaged lines, one a row, for the Summary sheet."""
        return pl.DataFrame(
            {
                "line": [d.line for d in self.damaged],
                "problem": [d.problem for d in self.damaged],
                "changes it names": [", ".join(sorted(d.names)) for d in self.damaged],
            },
            schema={"line": pl.Int64, "problem": pl.String, "changes it names": pl.String},
        )

    def to_json(self) -> dict[str, Any]:
        """What `summary.json` and `--json` say of it."""
        return {
            "damaged_lines": [d.to_json() for d in self.damaged],
            "kept_from_earlier_undo": len(self.kept),
            "not_known_if_applied": len(self.unknown),
            "seat_changes_not_sent": len(self.held),
            "earlier_undo_unread": self.unread,
        }


def prepare(
    changes: list[Change],
    journaled: Replay,
    done: dict[str, dict[str, Any]],
    earlier: tuple[dict[str, pl.DataFrame], list[str]],
) -> tuple[Recovery, dict[str, dict[str, Any]]]:
    """Before a resume sends: for each change with no readable record, an intent rebuilt from
    the earlier undo sheet's rows when it has them (its values before, and a seat change's
    total); else a seat change that a damaged line may have recorded is held back (in `done`).
    Returns what was found and the rebuilt intents."""
    unrecorded = [c for c in changes if c.key not in done and c.key not in journaled.intents]
    recovery = Recovery(journaled.damaged, *earlier)
    found = undo.earlier(recovery.sheets, {c.key for c in unrecorded})
    intents = {}
    for change in unrecorded:
        intent = _intent(change, found[change.key]) if change.key in found else None
        if intent:
            intents[change.key] = intent
            recovery.recovered.add(change.key)
        elif change.delta is not None and (where := recovery.lines(change.key)):
            recovery.held.append(change.key)
            done[change.key] = {
                "outcome": "failed",
                "request_id": change.request_id,
                "error_message": (
                    f"not sent: {where} cannot be read and may have recorded this seat change, "
                    "so whether its seats were already added is not known (a seat change is "
                    "never sent twice); check its seats in Partner Center, then send the total "
                    "as Quantity"
                ),
            }
        else:
            recovery.unrecorded.add(change.key)
    return recovery, intents


def _intent(change: Change, rows: list[dict[str, str]]) -> dict[str, Any] | None:
    """An intent line as the earlier undo rows tell it (the values read before; a seat change's
    total from the seats before it), or None for a seat change whose seats they do not give."""
    before = undo.before(change, rows)
    after = {k: change.values[k] for k in before if k in change.values}
    if change.delta is not None:
        if not isinstance(before.get("quantity"), int):
            return None
        after["quantity"] = before["quantity"] + change.delta
    return {"request_id": change.request_id, "before": before, "after": after}


def settle(
    recovery: Recovery, per_change: list[tuple[Change, Result]]
) -> list[tuple[Change, Result]]:
    """After sending: the earlier undo sheet's rows of every change the resume cannot rebuild
    its own rows of are kept (a row whose values before come from them says so); a `no_change`
    with nothing to go on, that a damaged line may have recorded, says this run may have
    applied it (and that undo has no row for it)."""
    rebuilt = {c.key for c, r in per_change if r.outcome in APPLIED and r.before}
    wanted = {c.key for c, _ in per_change if c.key not in rebuilt or c.key in recovery.recovered}
    recovery.kept = undo.earlier(recovery.sheets, wanted)
    settled = []
    for change, result in per_change:
        told = _told(recovery, change, result)
        if told:
            result = replace(result, error_message=_joined(result.error_message, told))
        if told and change.key not in recovery.kept:
            recovery.unknown.append(change.key)
        settled.append((change, result))
    return settled


def _told(recovery: Recovery, change: Change, result: Result) -> str:
    """What a change's row says of what the journal did not tell ('' when it told all)."""
    lost, sheet = recovery.lines(change.key), UNDO[change.kind]
    if change.key in recovery.recovered:
        why = f"{lost} cannot be read" if lost else f"{JOURNAL} has no record of it"
        return f"{why}: its values before come from the earlier {sheet}, whose rows of it are kept"
    if change.key in recovery.kept:
        return f"an earlier attempt of this run applied it: {sheet} keeps its rows of it from then"
    if change.key in recovery.unrecorded and result.outcome == "no_change" and lost:
        return (
            f"Partner Center already holds it, but {lost} (which cannot be read) may have been "
            f"its record: whether this run applied it is not known, and {sheet} has no row for it"
        )
    return ""


def kept_rows(recovery: Recovery) -> dict[str, list[dict[str, str]]]:
    """The earlier undo rows kept, each noting why it comes from the earlier sheet."""
    why = "kept from the earlier undo sheet (this resume could not rebuild it from the journal)"
    return {
        key: [{**row, "Notes": _joined(row.get("Notes", ""), why)} for row in rows]
        for key, rows in recovery.kept.items()
    }


def notes(recovery: Recovery) -> list[str]:
    """What the resume tells the user of it (printed, in `--json` and the Summary)."""
    told = []
    if recovery.damaged:
        shown = "; ".join(f"line {d.line}: {d.problem}" for d in recovery.damaged[:SHOWN])
        more = len(recovery.damaged) - SHOWN
        rest = f"; and {more} more (summary.json lists each)" if more > 0 else ""
        cut = ", and this resume's lines start on a new line" if recovery.damaged[-1].cut else ""
        told.append(
            f"{JOURNAL} has {plural(len(recovery.damaged), 'line')} that cannot be read "
            f"({shown}{rest}). Nothing in them was trusted: each change they may have recorded "
            "was read again in Partner Center before anything was decided. The lines stay as "
            f"they are{cut}."
        )
    if recovery.kept:
        n = len(recovery.kept)
        told.append(
            f"The earlier undo sheet's rows of {plural(n, 'change')} are kept as they were: "
            f"this resume could not rebuild {'it' if n == 1 else 'them'} from {JOURNAL} (a resume "
            "never writes an undo sheet with fewer changes than the one it replaces)."
        )
    if recovery.unknown:
        told.append(
            f"{plural(len(recovery.unknown), 'change')} that Partner Center already holds may "
            "have been applied by this run (a line that cannot be read may have been the "
            "record): the values before are not known, so the undo sheet has no row for them; "
            "the results say which."
        )
    if recovery.held:
        told.append(
            f"{plural(len(recovery.held), 'seat change')} not sent: a line that cannot be read "
            "may have recorded it, so whether its seats were added is not known; the results "
            "say which, and what to do."
        )
    told += [
        f"The earlier {name} could not be read, so none of its rows were kept."
        for name in recovery.unread
    ]
    return told


def _joined(first: str, then: str) -> str:
    return f"{first}; {then}" if first else then
