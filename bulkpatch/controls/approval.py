"""Approval of a plan: when a profile requires it, what the approver reviews, the record kept in
the plan folder, and the checks a plan passes before apply sends it (README, "Controls").

A plan folder is the thing approved: its fingerprint (`RunFolder.plan_fingerprint`, over its
manifest's and plan file's bytes) is in the approval, so an edited plan is not the approved
one. The planner is the manifest's `planned_by`; the approver must be someone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from bulkpatch.errors import InputError
from bulkpatch.outcomes import PLAN_OUTCOMES
from bulkpatch.report.totals import Preview, preview, seat_totals
from bulkpatch.report.words import identity_words, plural
from bulkpatch.runs.folder import RunFolder
from bulkpatch.settings import Profile, duration


class Refused(InputError):
    """Apply will not send this plan: unapproved, rejected, changed, self-approved or too old
    (exit 2, nothing sent); the message is the one line the user reads."""


@dataclass(frozen=True)
class Policy:
    """A profile's approval settings: required or not, the thresholds, the maximum age."""

    required: bool = False
    cancellations: bool = False
    seat_decrease: bool = False
    seats_over: int | None = None
    max_age: timedelta = timedelta(hours=24)
    max_age_text: str = "24h"

    @classmethod
    def of(cls, profile: Profile) -> Policy:
        age = profile.get("approval_max_age")
        return cls(
            required=profile.get("approval") == "required",
            cancellations=bool(profile.get("approval_cancellations")),
            seat_decrease=bool(profile.get("approval_seat_decrease")),
            seats_over=profile.get("approval_seats_over"),
            max_age=duration(age),
            max_age_text=age,
        )

    @property
    def thresholds(self) -> bool:
        return self.cancellations or self.seat_decrease or self.seats_over is not None

    def reasons(self, entries: list[dict[str, Any]]) -> list[str]:
        """Why a plan of these entries needs approval (the thresholds it crosses, or
        `approval = "required"` when the profile sets none); empty: it needs none."""
        if not self.required:
            return []
        if not self.thresholds:
            return ['approval = "required"']
        if any("outcome" not in e for e in entries):  # a run started from a sheet: not assessed
            return ["a run started from a sheet has no assessed plan to hold to the thresholds"]
        seen = Review.of(entries)
        found = []
        cut = seen.cancellations + seen.preview.suspensions
        if self.cancellations and cut:
            found.append(f"{plural(cut, 'cancellation or suspension')} (approval_cancellations)")
        if self.seat_decrease and seen.removed:
            found.append(f"{plural(seen.removed, 'seat')} removed (approval_seat_decrease)")
        moved = seen.added + seen.removed
        if self.seats_over is not None and moved > self.seats_over:
            found.append(
                f"{plural(moved, 'seat')} changed, more than {self.seats_over} "
                "(approval_seats_over)"
            )
        return found


@dataclass
class Review:
    """What a plan will do, as the approver reads it: rows by outcome, seats added and removed
    per customer, cancellations and suspensions, renewal changes removed."""

    outcomes: dict[str, int]
    preview: Preview
    seats: pl.DataFrame  # per customer and offer: added, removed
    entries: list[dict[str, Any]]

    @classmethod
    def of(cls, entries: list[dict[str, Any]]) -> Review:
        outcomes = {o: sum(e.get("outcome") == o for e in entries) for o in PLAN_OUTCOMES}
        seats = seat_totals(entries).filter((pl.col("added") > 0) | (pl.col("removed") > 0))
        return cls(outcomes, preview(outcomes, entries), seats, entries)

    @property
    def cancellations(self) -> int:
        """Subscriptions and orders the plan cancels (the preview counts subscriptions)."""
        orders = sum(
            e.get("outcome") == "change"
            and e["change"]["kind"] == "orders"
            and (e.get("diffs") or {}).get("status", [None, None])[1] == "cancelled"
            for e in self.entries
        )
        return self.preview.cancellations + orders

    @property
    def changes(self) -> int:
        """The number the approver types: the changes the plan will send."""
        return self.outcomes["change"]

    @property
    def added(self) -> int:
        return int(self.seats["added"].sum() or 0)

    @property
    def removed(self) -> int:
        return int(self.seats["removed"].sum() or 0)

    def lines(self) -> list[str]:
        p = self.preview
        shown = [
            "Rows by outcome: " + ", ".join(f"{n} {o}" for o, n in self.outcomes.items()) + ".",
            f"Changes to send: {self.changes} for {plural(p.customers, 'customer')}.",
            f"Seats: {self.added} added, {self.removed} removed.",
        ]
        shown += [
            f"  customer {c}, {offer}: +{added} -{removed}"
            for c, offer, added, removed in self.seats.select(
                "customer_id", "offer", "added", "removed"
            ).iter_rows()
        ]
        shown += [
            f"Cancellations: {self.cancellations}; suspensions: {p.suspensions}.",
            f"Renewal changes removed: {plural(p.renewals_removed, 'subscription')}.",
        ]
        return shown

    def to_json(self) -> dict[str, Any]:
        p = self.preview
        return {
            "outcomes": self.outcomes,
            "changes": self.changes,
            "customers": p.customers,
            "seats_added": self.added,
            "seats_removed": self.removed,
            "seats": self.seats.select("customer_id", "offer", "added", "removed").to_dicts(),
            "cancellations": self.cancellations,
            "suspensions": p.suspensions,
            "renewal_changes_removed": p.renewals_removed,
        }


def record(
    folder: RunFolder,
    by: dict[str, Any],
    decision: str,
    required_by: list[str],
    how: str,
    reason: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The approval (or rejection) of the plan in `folder`, as written to its folder."""
    return {
        "decision": decision,
        "by": by,
        "at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "plan_fingerprint": folder.plan_fingerprint(),
        "planned_by": folder.manifest.get("planned_by"),
        "required_by": required_by,
        "how": how,
        "reason": reason,
    }


def same_person(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Two identities are one person (or one application): the same key. An unknown or
    anonymous one is never a second person."""
    if not a or not b:
        return True
    return a.get("key") == b.get("key") or a.get("name") is None or b.get("name") is None


def check(
    folder: RunFolder,
    policy: Policy,
    now: datetime | None = None,
    resuming: bool = False,
) -> dict[str, Any] | None:
    """The approval that lets `folder`'s plan be sent (None: none is needed), or `Refused`.
    A resume finishes a run already approved: the age is not held against it."""
    path, found = folder.path, folder.approval()
    if found and found.get("decision") == "rejected":
        raise Refused(
            f"{path}: was rejected by {identity_words(found.get('by'))} at {found.get('at')}"
            f" ({found.get('reason') or 'no reason given'}); nothing was sent. Fix the sheet "
            "and plan again."
        )
    reasons = policy.reasons(folder.read_plan())
    if not reasons:
        return None
    if not found:
        raise Refused(
            f"{path}: needs approval before it is sent ({'; '.join(reasons)}); nothing was "
            f"sent. A second person approves it with `bulkpatch approve {path}`."
        )
    who = identity_words(found.get("by"))
    if found.get("plan_fingerprint") != folder.plan_fingerprint():
        raise Refused(
            f"{path}: changed after {who} approved it (its plan or manifest is not the one "
            "approved); nothing was sent. Plan again and ask for approval again."
        )
    if same_person(found.get("by"), folder.manifest.get("planned_by")):
        raise Refused(
            f"{path}: was approved by {who}, who planned it; nothing was sent. A second "
            f"person must approve it (`bulkpatch approve {path}`)."
        )
    if not resuming:
        _fresh(folder, found, policy, now or datetime.now(UTC))
    return found


def _fresh(folder: RunFolder, found: dict[str, Any], policy: Policy, now: datetime) -> None:
    """A plan, and its approval, younger than `approval_max_age` (Partner Center moves on)."""
    for what, at in (
        ("its approval", found.get("at")),
        ("the plan", folder.manifest.get("planned_at")),
    ):
        try:
            moment = datetime.fromisoformat(str(at))
        except ValueError:
            moment = datetime.min.replace(tzinfo=UTC)
        if now - moment > policy.max_age:
            raise Refused(
                f"{folder.path}: {what} ({at}) is older than approval_max_age "
                f"({policy.max_age_text}); Partner Center moves on, so nothing was sent. Plan "
                "again and ask for approval again."
            )
