"""What happened to one change: its `Result` (the columns of the result sheet and the values
read before it, for undo), and how a change ends without being applied: kept back by the
assessment, refused or unanswered by Partner Center, or found landed after an interruption.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bulkpatch.network.calls import Reply
from bulkpatch.outcomes import Outcome
from bulkpatch.plan.assess import Assessment, assess
from bulkpatch.plan.changes import Change, copied, describe

READ_FAILED = "reading it failed: "  # a change whose resource could not be read first


@dataclass
class Result:
    """What happened to one change: the columns of the result sheet and the undo values."""

    outcome: Outcome
    http_status: int | None = None
    error_code: int | None = None
    error_message: str = ""
    diffs: dict[str, Any] = field(default_factory=dict)  # field -> (before, after)
    request_id: str = ""
    correlation_id: str = ""
    attempts: int = 0
    elapsed_ms: int = 0
    before: dict[str, Any] = field(default_factory=dict)
    offer: str = ""  # the offer read before the change: seat totals per offer

    @property
    def changes(self) -> str:
        """What the change sets, in the API's names (reports put it in the sheet's words)."""
        return describe(self.diffs)

    def to_json(self) -> dict[str, Any]:
        # What `asdict` gives, without its per-field machinery (a journal line per change).
        return {**vars(self), "before": copied(self.before), "diffs": copied(self.diffs)}


def landed(intent: dict[str, Any]) -> Result:
    """A change whose intent was journaled and whose target now holds: it landed before the
    run was interrupted (its answer was never journaled)."""
    diffs = {k: (b, intent["after"].get(k)) for k, b in intent["before"].items()}
    return Result(
        "ok",
        diffs=diffs,
        error_message="applied before the interruption",
        request_id=intent["request_id"],
        before=intent["before"],
    )


def unsent(assessment: Assessment) -> Result:
    """A change the assessment keeps back: already done, in conflict with the sheet's expected
    values, or bound to be refused."""
    if assessment.verdict == "no_change":
        return Result("no_change")
    return Result(
        "conflict" if assessment.verdict == "conflict" else "failed",
        error_code=assessment.code,
        diffs=dict(assessment.merged.diffs),
        error_message=f"not sent: {assessment.reason}",
    )


def failed(reply: Reply, prefix: str = "") -> Result:
    """A call that ended without the change: `failed`, or `not_sent` when it never reached
    Partner Center's business logic.

    A 401 (or a 403 without a code), a 429 the run stopped on, or a read that got no answer
    at all: the row is `not_sent` (journaled so), and a resume sends it again.
    """
    if reply.token_refused:
        return Result(
            "not_sent",
            reply.status,
            reply.code,
            f"not sent: Partner Center refused the token (HTTP {reply.status}"
            + (f": {reply.message})" if reply.message else ")"),
            correlation_id=reply.correlation_id,
            attempts=reply.attempts,
        )
    if reply.status == 429:  # refused before any business logic ran, past a bounded wait
        return Result(
            "not_sent",
            429,
            reply.code,
            "not sent: Partner Center kept answering 429 (too many requests) and the run "
            "stopped; a resume sends it",
            correlation_id=reply.correlation_id,
            attempts=reply.attempts,
        )
    if reply.status is None and prefix == READ_FAILED:  # no write was tried: a resume sends it
        return Result(
            "not_sent",
            error_message=f"not sent: Partner Center could not be reached ({reply.message})",
            correlation_id=reply.correlation_id,
            attempts=reply.attempts,
        )
    return Result(
        "failed",
        reply.status,
        reply.code,
        prefix + reply.message,
        correlation_id=reply.correlation_id,
        attempts=reply.attempts,
    )


def planned(change: Change, current: dict | Reply, now: datetime) -> dict[str, Any]:
    """A plan entry: the change, what was read, the assessment's verdict, the body to send,
    before and after of every field it changes, and why it would not go or what it removes."""
    entry: dict[str, Any] = {"change": change.to_json(), "method": "PATCH", "path": change.path}
    if isinstance(current, Reply):
        return {
            **entry,
            "outcome": "would_fail",
            "error": READ_FAILED + current.message,
            "error_code": current.code,
        }
    assessment = assess(change, current, now)
    merged = assessment.merged
    entry.update(
        body=merged.body,
        before=current,
        diffs={k: list(v) for k, v in merged.diffs.items()},
        outcome=assessment.verdict,
    )
    if assessment.reason:
        entry.update(error=assessment.reason, error_code=assessment.code)
    if assessment.warnings:
        entry.update(warnings=assessment.warnings)
    return entry
