"""The library API of the controls: approve or reject a plan (`approve_plan`), read and verify
the audit log (`audit_trail`), and what plan and apply call to be audited (`audited`) and to
send only an approved plan (`gate`). README, "Controls", says what they guard against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bulkpatch import settings as config
from bulkpatch.controls import approval, audit
from bulkpatch.controls.approval import Policy, Refused, Review
from bulkpatch.errors import InputError, StoppedError
from bulkpatch.report.stamp import partner_tenant, run_by
from bulkpatch.report.words import identity_words
from bulkpatch.runs.folder import RunFolder

if TYPE_CHECKING:
    from bulkpatch.network.target import Target


def log_of(profile: config.Profile, target: Target) -> Path:
    """The audit log of `target`'s partner tenant (a sandbox's own when it has none)."""
    from bulkpatch.network.target import place_name

    return audit.log_path(profile, partner_tenant(target) or place_name(target))


def audited(
    event: str,
    target: Target,
    profile: config.Profile,
    folder: RunFolder | None,
    command: str | None,
    now: datetime | None = None,
    **what: Any,
) -> dict[str, Any]:
    """Append one line to the audit log: when, who, what (the command, the target, the
    partner tenant, the run folder, its fingerprints) and `what` (counts, seats, reasons);
    the run folder keeps which line it wrote. A log that cannot be written is a
    `StoppedError`: the caller has not sent anything yet, or says what it sent."""
    path = log_of(profile, target)
    line = audit.append(
        path,
        {
            "event": event,
            "by": run_by(target),
            "command": command or "(from Python)",
            "target": target.name,
            "partner_tenant": partner_tenant(target),
            "run_folder": str(folder.path.resolve()) if folder else None,
            "sheet_sha256": folder.manifest.get("sha256") if folder else None,
            "plan_fingerprint": _fingerprint(folder),
            **what,
        },
        now,
    )
    if folder is not None:
        folder.write_audited(
            {"log": str(path.resolve()), "line": line["n"], "hash": line["hash"], "event": event}
        )
    return line


def _fingerprint(folder: RunFolder | None) -> str | None:
    try:
        return folder.plan_fingerprint() if folder else None
    except OSError:
        return None


def gate(
    folder: RunFolder,
    target: Target,
    profile: config.Profile,
    command: str | None,
    resuming: bool = False,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The approval that lets `folder`'s plan go (None: none needed); a refusal is written to
    the audit log, then raised (exit 2, nothing sent)."""
    try:
        return approval.check(folder, Policy.of(profile), now, resuming)
    except Refused as refused:
        _refuse(refused, target, profile, command, folder=folder, now=now)


def _refuse(
    refused: Refused,
    target: Target,
    profile: config.Profile,
    command: str | None,
    folder: RunFolder | None = None,
    now: datetime | None = None,
    **what: Any,
) -> NoReturn:
    """Write the refusal to the audit log, then raise it (saying so if the log refused too)."""
    try:
        audited("refused", target, profile, folder, command, now, reason=str(refused), **what)
    except StoppedError as fault:
        raise Refused(f"{refused} Also: {fault}.") from None
    raise refused


def no_sheet_when_required(
    profile: config.Profile, sheet: Path, target: Target, command: str | None
) -> None:
    """`apply SHEET` under a profile that requires approval: refused (and audited), saying
    how to get an approval."""
    if not Policy.of(profile).required:
        return
    refused = Refused(
        f"{sheet}: this profile requires approval before anything is sent, so a sheet is "
        f"not applied directly: plan it (`bulkpatch plan {sheet}`), have a second person "
        "approve the plan (`bulkpatch approve PLAN_DIR`), then `bulkpatch apply --plan "
        "PLAN_DIR`."
    )
    _refuse(refused, target, profile, command, sheet=str(sheet))


def approval_state(plan_dir: str | Path, profile: str | config.Profile | None) -> dict[str, Any]:
    """What the page's Confirm page says of a plan's approval: why it needs one (none: it
    needs none), and who approved or rejected it, when, and why (from its folder)."""
    chosen = config.profile(profile)
    try:
        folder = RunFolder.opened(plan_dir, None)
    except InputError:  # the folder went: sending it says so, in the run's own words
        return dict.fromkeys(("needed", "decision", "by", "at", "reason", "refused"))
    found = folder.approval() or {}
    try:
        approval.check(folder, Policy.of(chosen))
        refused = None
    except Refused as exc:
        refused = str(exc)
    return {
        "needed": Policy.of(chosen).reasons(folder.read_plan()),
        "decision": found.get("decision"),
        "by": identity_words(found.get("by")) if found else None,
        "at": found.get("at"),
        "reason": found.get("reason"),
        "refused": refused,
    }


def review_plan(plan_dir: str | Path) -> tuple[Review, dict[str, Any]]:
    """What a plan will do and who planned it: what an approver reads before deciding."""
    folder = RunFolder.opened(plan_dir, None)
    return Review.of(folder.read_plan()), folder.manifest.get("planned_by") or {}


# --- approve -------------------------------------------------------------------------------------


@dataclass
class Decision:
    """What `bulkpatch approve` recorded: the decision, the plan reviewed, the audit line."""

    folder: Path
    record: dict[str, Any]
    review: Review
    line: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": str(self.folder),
            **self.record,
            "review": self.review.to_json(),
            "audit_line": self.line.get("n"),
        }

    def words(self) -> str:
        r = self.record
        verb = "Approved" if r["decision"] == "approved" else "Rejected"
        why = f": {r['reason']}" if r.get("reason") else ""
        return (
            f"{verb} {self.folder} as {identity_words(r['by'])} at {r['at']} ({r['how']}){why}; "
            f"recorded in the plan folder and line {self.line.get('n')} of the audit log."
        )


def approve_plan(
    plan_dir: str | Path,
    *,
    confirm: Callable[[Review, dict[str, Any]], str] | None = None,
    reject: bool = False,
    reason: str | None = None,
    profile: str | config.Profile | None = None,
    command: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """Approve (or, with `reject`, reject) the plan in `plan_dir` as whoever is signed in to
    its target. `confirm(review, planner)` shows the plan and returns how the approver agreed
    (`typed the count`, `--yes ...`); it raises to stop. The planner cannot approve."""
    chosen = config.profile(profile)
    folder = RunFolder.opened(plan_dir, None)
    target = _target(folder, chosen)
    entries = folder.read_plan()
    if any("outcome" not in e for e in entries) or (folder.path / "journal.jsonl").exists():
        raise InputError(
            f"{folder.path}: is an apply's run folder, not a plan; approve the folder "
            "`bulkpatch plan` wrote."
        )
    review, planner, me = Review.of(entries), folder.manifest.get("planned_by"), run_by(target)
    if reject and not (reason or "").strip():
        raise InputError("--reject needs --reason TEXT: the planner reads why.")
    if not reject and approval.same_person(me, planner):
        _refuse(
            Refused(
                f"{folder.path}: was planned by {identity_words(planner)}, who is signed in "
                "now; a second person must approve it (sign in as them, then `bulkpatch "
                "approve`)."
            ),
            target,
            chosen,
            command,
            run_folder=str(folder.path.resolve()),
        )
    how = confirm(review, planner or {}) if confirm else "from Python"
    required = Policy.of(chosen).reasons(entries) or ["not required by the profile"]
    decision = "rejected" if reject else "approved"
    record = approval.record(folder, me, decision, required, how, reason, now)
    line = audited(
        "reject" if reject else "approve",
        target,
        chosen,
        None,
        command,
        now,
        run_folder=str(folder.path.resolve()),
        sheet_sha256=folder.manifest.get("sha256"),
        plan_fingerprint=record["plan_fingerprint"],
        planned_by=planner,
        required_by=required,
        reason=reason,
        counts=review.outcomes,
        seats_added=review.added,
        seats_removed=review.removed,
    )
    folder.write_approval({**record, "audit_line": line["n"], "audit_hash": line["hash"]})
    return Decision(folder.path, record, review, line)


def _target(folder: RunFolder, chosen: config.Profile) -> Target:
    from bulkpatch.network.target import resolve

    saved = folder.settings
    return resolve("sandbox" if saved["embedded"] else saved["target"], chosen)


# --- audit ---------------------------------------------------------------------------------------


@dataclass
class Trail:
    """The audit log as `bulkpatch audit` shows it: its lines, and where the chain breaks."""

    log: Path
    lines: list[dict[str, Any]]
    problems: list[audit.Problem]
    verified: bool
    total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "log": str(self.log),
            "lines": self.lines,
            "total_lines": self.total,
            "verified": self.verified,
            "holds": not self.problems,
            "problems": [p.to_json() for p in self.problems],
        }


def audit_trail(
    *,
    since: str | None = None,
    verify: bool = False,
    log: str | Path | None = None,
    target: str | None = None,
    profile: str | config.Profile | None = None,
    reports_base: str | Path = "reports",
) -> Trail:
    """The audit log of the profile's partner tenant (or `log`), its lines since `since`
    (`2026-12-01`), and with `verify` every break of the chain and every recent run folder
    whose line the log does not hold as written."""
    from bulkpatch.network.target import resolve

    chosen = config.profile(profile)
    path = Path(log) if log else log_of(chosen, resolve(target, chosen))
    day = _day(since)
    found, problems = audit.chain(audit.read(path))
    if verify:
        problems += audit.against_folders(path, found, Path(reports_base), len(found))
    return Trail(path, audit.since(found, day), problems if verify else [], verify, len(found))


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since {text!r} is not a date; write it as 2026-12-01.") from None
