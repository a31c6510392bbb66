"""Four eyes (README, "Controls"): two sandbox identities, one plans and the other approves;
apply sends only an approved, unchanged, fresh plan approved by someone else; every step is a
line of a hash-chained audit log that `bulkpatch audit --verify` checks.

The real CLI against the built-in sandbox, each test in its own cache, data and working
folders (conftest's `own_cache`; the working folder holds the profile, bulkpatch.toml)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest
from conftest import SAMPLES, Page, followed, job_of, planned

from bulkpatch.commands.controls import approve_plan
from bulkpatch.controls import approval
from bulkpatch.controls.approval import Policy
from bulkpatch.runs.folder import RunFolder
from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport
from bulkpatch.sandbox import identity as sandbox_identity
from bulkpatch.settings import load_profile

SAMPLE = SAMPLES / "month-end.xlsx"
CUSTOMER = "05e2378a-d57e-57ef-9870-17ffaf155ec0"
SUBSCRIPTION = "b797f887-0b05-5bdc-b014-682b55effab0"  # 7 seats, active, as seeded
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


@pytest.fixture(autouse=True)
def own_config(tmp_path, monkeypatch) -> None:
    """No user's own bulkpatch.toml: the working folder's (tmp_path) is the only profile."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    monkeypatch.delenv("BULKPATCH_SANDBOX_USER", raising=False)
    monkeypatch.delenv("BULKPATCH_TOKEN", raising=False)
    monkeypatch.delenv("BULKPATCH_AUDIT_LOG", raising=False)


def profile(tmp_path: Path, **keys: object) -> None:
    lines = ["[profiles.default]"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    (tmp_path / "bulkpatch.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def signed_in(monkeypatch, name: str) -> None:
    """The next commands run as `name`, signed in to the sandbox."""
    monkeypatch.setenv("BULKPATCH_SANDBOX_USER", name)


def sheet(tmp_path: Path, name: str, column: str, value: str) -> Path:
    path = tmp_path / f"{name}.csv"
    path.write_text(
        f"Customer ID,Subscription ID,{column}\n{CUSTOMER},{SUBSCRIPTION},{value}\n",
        encoding="utf-8",
    )
    return path


def audit_lines(cli, *args: str) -> tuple[int, dict]:
    done = cli("audit", "--json", *args)
    return done.returncode, json.loads(done.stdout)


def test_plan_as_one_person_approve_as_another_then_apply(cli, tmp_path, monkeypatch):
    profile(tmp_path, approval="required")
    signed_in(monkeypatch, ALICE)
    planned = cli("plan", SAMPLE, "--out", "plan", "--quiet")
    assert "Approval needed" in planned.stdout and "bulkpatch approve" in planned.stdout
    manifest = json.loads((tmp_path / "plan" / "run.json").read_text())
    assert manifest["planned_by"]["name"] == ALICE

    refused = cli("apply", "--plan", "plan", "--out", "early", "--quiet")
    assert refused.returncode == 2
    assert "needs approval" in refused.stderr and "nothing was sent" in refused.stderr
    assert not (tmp_path / "early").exists()

    own = cli("approve", "plan", "--yes")
    assert own.returncode == 2
    assert f"planned by {ALICE}" in own.stderr and "second person" in own.stderr

    signed_in(monkeypatch, BOB)
    approved = cli("approve", "plan", "--yes", "--json")
    assert approved.returncode == 0, approved.stderr
    said = json.loads(approved.stdout)
    assert said["decision"] == "approved" and said["by"]["name"] == BOB
    assert said["how"].startswith("--yes")  # a pipeline's step, recorded as such
    assert said["planned_by"]["name"] == ALICE
    entries = RunFolder.opened(tmp_path / "plan", None).read_plan()
    changes = sum(e["outcome"] == "change" for e in entries)
    assert said["review"]["changes"] == changes > 0
    seats = csv.DictReader((tmp_path / "plan" / "plan-seats.csv").open(encoding="utf-8-sig"))
    added = sum(int(row["added"]) for row in seats)
    assert said["review"]["seats_added"] == added > 0  # as the plan's own seat table says
    assert said["required_by"] == ['approval = "required"']

    signed_in(monkeypatch, ALICE)
    applied = cli("apply", "--plan", "plan", "--out", "run", "--quiet", "--json")
    assert applied.returncode == 0, applied.stderr
    summary = json.loads(applied.stdout)
    assert summary["outcomes"]["ok"] >= changes  # every approved change went (a row each)
    assert summary["outcomes"]["failed"] == summary["outcomes"]["not_sent"] == 0
    assert summary["report"]["run_by"]["name"] == ALICE
    book = openpyxl.load_workbook(tmp_path / "run" / "results.xlsx")
    lines = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}
    assert lines["Run by"] == f"{ALICE} (sandbox sign-in)"

    code, trail = audit_lines(cli, "--verify")
    assert code == 0 and trail["holds"]
    events = [(line["event"], line["by"]["name"]) for line in trail["lines"]]
    assert events == [
        ("plan", ALICE),
        ("refused", ALICE),
        ("refused", ALICE),
        ("approve", BOB),
        ("apply", ALICE),
        ("applied", ALICE),
    ]
    assert trail["lines"][3]["plan_fingerprint"] == trail["lines"][0]["plan_fingerprint"]
    assert trail["lines"][4]["approved_by"]["name"] == BOB
    assert trail["lines"][5]["counts"] == summary["outcomes"]
    assert trail["lines"][5]["seats_added"] == added


def approved_plan(cli, tmp_path, monkeypatch, sheet_path: Path = SAMPLE) -> Path:
    """A plan made by Alice and approved by Bob, under `approval = "required"`."""
    profile(tmp_path, approval="required")
    signed_in(monkeypatch, ALICE)
    cli("plan", sheet_path, "--out", "plan", "--quiet")
    signed_in(monkeypatch, BOB)
    assert cli("approve", "plan", "--yes").returncode == 0
    signed_in(monkeypatch, ALICE)
    return tmp_path / "plan"


def test_a_plan_changed_after_its_approval_is_not_sent(cli, tmp_path, monkeypatch):
    plan = approved_plan(cli, tmp_path, monkeypatch)
    text = (plan / "plan.jsonl").read_text()
    (plan / "plan.jsonl").write_text(text.replace('"quantity": 35', '"quantity": 85', 1))
    refused = cli("apply", "--plan", plan, "--out", "run", "--quiet")
    assert refused.returncode == 2
    assert f"changed after {BOB} (sandbox sign-in) approved it" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_an_approval_older_than_the_maximum_age_is_not_sent(cli, tmp_path, monkeypatch):
    profile(tmp_path, approval="required", approval_max_age="30m")
    signed_in(monkeypatch, ALICE)
    cli("plan", SAMPLE, "--out", "plan", "--quiet")
    signed_in(monkeypatch, BOB)
    then = datetime.now(UTC) - timedelta(minutes=31)  # approved 31 minutes ago
    approve_plan(tmp_path / "plan", confirm=lambda review, planner: "test", now=then)
    signed_in(monkeypatch, ALICE)
    refused = cli("apply", "--plan", "plan", "--out", "run", "--quiet")
    assert refused.returncode == 2
    assert "older than approval_max_age (30m)" in refused.stderr
    # the same approval, held against a clock 20 minutes after it, is fresh enough
    folder = RunFolder.opened(tmp_path / "plan", None)
    policy = Policy.of(load_profile(cwd=tmp_path))
    found = approval.check(folder, policy, now=then + timedelta(minutes=20))
    assert found["by"]["name"] == BOB


def test_a_rejected_plan_is_not_sent_and_the_planner_reads_why(cli, tmp_path, monkeypatch):
    profile(tmp_path, approval="required")
    signed_in(monkeypatch, ALICE)
    cli("plan", SAMPLE, "--out", "plan", "--quiet")
    signed_in(monkeypatch, BOB)
    no_reason = cli("approve", "plan", "--reject")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    rejected = cli("approve", "plan", "--reject", "--reason", "Fabrikam is leaving in March")
    assert rejected.returncode == 0 and "Rejected" in rejected.stdout
    signed_in(monkeypatch, ALICE)
    refused = cli("apply", "--plan", "plan", "--out", "run", "--quiet")
    assert refused.returncode == 2
    assert f"rejected by {BOB}" in refused.stderr
    assert "Fabrikam is leaving in March" in refused.stderr
    assert not (tmp_path / "run").exists()


def test_an_approval_written_by_the_planner_is_refused(cli, tmp_path, monkeypatch):
    profile(tmp_path, approval="required")
    signed_in(monkeypatch, ALICE)
    cli("plan", SAMPLE, "--out", "plan", "--quiet")
    folder = RunFolder.opened(tmp_path / "plan", None)
    alice = folder.manifest["planned_by"]
    forged = approval.record(folder, alice, "approved", ["by hand"], "typed", None)
    folder.write_approval(forged)  # the right fingerprint, the wrong person
    refused = cli("apply", "--plan", "plan", "--out", "run", "--quiet")
    assert refused.returncode == 2
    assert f"approved by {ALICE} (sandbox sign-in), who planned it" in refused.stderr


def test_a_sheet_is_not_applied_directly_when_approval_is_required(cli, tmp_path, monkeypatch):
    profile(tmp_path, approval="required")
    signed_in(monkeypatch, ALICE)
    refused = cli("apply", SAMPLE, "--out", "run", "--quiet")
    assert refused.returncode == 2
    assert "plan it" in refused.stderr and "bulkpatch approve PLAN_DIR" in refused.stderr
    assert not (tmp_path / "run").exists()
    assert [line["event"] for line in audit_lines(cli)[1]["lines"]] == ["refused"]


def test_thresholds_decide_which_plans_need_approval(cli, tmp_path, monkeypatch):
    profile(tmp_path, approval="required", approval_seat_decrease=True)
    signed_in(monkeypatch, ALICE)
    up = sheet(tmp_path, "up", "Seat change", "+3")
    cli("plan", up, "--out", "up-plan", "--quiet")
    sent = cli("apply", "--plan", "up-plan", "--out", "up-run", "--quiet", "--json")
    assert sent.returncode == 0, sent.stderr  # more seats: no threshold crossed
    assert json.loads(sent.stdout)["outcomes"]["ok"] == 1

    down = sheet(tmp_path, "down", "Seat change", "-2")  # within the 3 seats still refundable
    planned = cli("plan", down, "--out", "down-plan", "--quiet", "--json")
    assert json.loads(planned.stdout)["needs_approval"] == [
        "2 seats removed (approval_seat_decrease)"
    ]
    refused = cli("apply", "--plan", "down-plan", "--out", "down-run", "--quiet")
    assert refused.returncode == 2 and "approval_seat_decrease" in refused.stderr


def test_each_threshold_counts_what_it_names(cli, tmp_path, monkeypatch):
    signed_in(monkeypatch, ALICE)
    cli("plan", sheet(tmp_path, "suspend", "Status", "suspended"), "--out", "s", "--quiet")
    cli("plan", SAMPLE, "--out", "m", "--quiet")  # seats added, orders cancelled
    suspend = RunFolder.opened(tmp_path / "s", None).read_plan()
    month = RunFolder.opened(tmp_path / "m", None).read_plan()
    on_cut = Policy(required=True, cancellations=True)
    assert on_cut.reasons(suspend) == ["1 cancellation or suspension (approval_cancellations)"]
    changed = [e for e in month if e["outcome"] == "change"]
    cut = sum(e["diffs"].get("status", [0, 0])[1] in ("cancelled", "suspended") for e in changed)
    moved = sum(abs(b - a) for e in changed for b, a in [e["diffs"].get("quantity", [0, 0])])
    assert cut >= 2 and moved >= 2  # the sample cancels orders and adds seats
    assert on_cut.reasons(month) == [f"{cut} cancellation or suspensions (approval_cancellations)"]
    over_less = Policy(required=True, seats_over=moved - 1)
    assert over_less.reasons(month) == [
        f"{moved} seats changed, more than {moved - 1} (approval_seats_over)"
    ]
    assert Policy(required=True, seats_over=moved).reasons(month) == []
    assert Policy(required=True, seat_decrease=True).reasons(month) == []  # it only adds
    assert Policy(required=False, cancellations=True).reasons(suspend) == []


def test_the_audit_chain_names_an_edited_line_and_a_removed_one(cli, tmp_path, monkeypatch):
    approved_plan(cli, tmp_path, monkeypatch)
    applied = cli("apply", "--plan", "plan", "--out", "reports/run", "--quiet")
    assert applied.returncode == 0, applied.stderr
    code, trail = audit_lines(cli, "--verify")
    assert code == 0 and trail["total_lines"] == 4
    log = Path(trail["log"])
    good = log.read_text().splitlines(keepends=True)

    edited = good.copy()
    edited[1] = edited[1].replace(BOB, "mallory@contoso.com")  # who approved, rewritten
    log.write_text("".join(edited))
    code, trail = audit_lines(cli, "--verify")
    assert code == 1
    assert [(p["line"], p["message"]) for p in trail["problems"]] == [
        (2, "line 2 was edited: it no longer matches its own hash")
    ]
    words = cli("audit", "--verify")
    assert words.returncode == 1 and "line 2 was edited" in words.stderr

    log.write_text("".join(good[:1] + good[2:]))  # the approval removed
    code, trail = audit_lines(cli, "--verify")
    assert code == 1
    assert [p["line"] for p in trail["problems"]] == [2]
    assert "the chain breaks at line 2" in trail["problems"][0]["message"]
    assert "written as line 3" in trail["problems"][0]["message"]

    log.write_text("".join(good[:3]))  # the last line cut: the chain holds, the folder knows
    code, trail = audit_lines(cli, "--verify", "--reports", "reports")
    assert code == 1
    assert [p["line"] for p in trail["problems"]] == [4]
    assert "run folder" in trail["problems"][0]["message"]

    log.write_text("".join(good))
    assert audit_lines(cli, "--verify", "--reports", "reports")[0] == 0
    assert audit_lines(cli, "--since", "2999-01-01")[1]["lines"] == []


def test_an_apply_whose_audit_line_cannot_be_written_sends_nothing(cli, tmp_path, monkeypatch):
    signed_in(monkeypatch, ALICE)
    up = sheet(tmp_path, "up", "Quantity", "9")
    cli("plan", up, "--out", "plan", "--quiet")
    (tmp_path / "not-a-folder").write_text("a file where the log's folder should be")
    profile(tmp_path, audit_log=str(tmp_path / "not-a-folder" / "audit.jsonl"))
    stopped = cli("apply", "--plan", "plan", "--out", "run", "--quiet")
    assert stopped.returncode == 3
    assert "audit log" in stopped.stderr and "nothing was sent" in stopped.stderr
    assert not (tmp_path / "run" / "journal.jsonl").exists()
    profile(tmp_path)
    again = cli("plan", up, "--out", "again", "--quiet", "--json")
    assert json.loads(again.stdout)["outcomes"]["change"] == 1  # Partner Center unchanged


def test_auth_status_shows_the_sandbox_sign_in(cli, monkeypatch):
    assert cli("auth", "login", "--sandbox-as", "carol@contoso.com").returncode == 0
    status = cli("auth", "status")
    assert status.returncode == 0
    assert "Signed in to the sandboxes as carol@contoso.com" in status.stdout
    said = json.loads(cli("auth", "status", "--json").stdout)
    assert said["sandbox"]["identity"]["name"] == "carol@contoso.com"
    assert "eyJ" not in status.stdout + json.dumps(said)  # never the token
    signed_in(monkeypatch, BOB)  # the variable wins over the kept sign-in
    assert "as bob@contoso.com" in cli("auth", "status").stdout


@pytest.mark.anyio
async def test_the_sandbox_refuses_a_token_it_did_not_sign():
    sandbox = Sandbox(SandboxConfig())
    transport = SandboxTransport(sandbox.app)
    ours = sandbox_identity.issue(ALICE, sandbox_identity.signing_key())
    forged = sandbox_identity.issue(ALICE, b"someone else's key")
    expired = sandbox_identity.issue(ALICE, sandbox_identity.signing_key(), now=0)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:

        async def status(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return (await client.get("/v1/customers", headers=headers)).status_code

        assert await status(ours) == 200
        assert await status(forged) == 401
        assert await status(expired) == 401
        assert await status("any other token") == 200  # as before: a stand-in for any sign-in


def test_the_page_names_the_approver_and_sends_nothing_unapproved(cli, tmp_path, monkeypatch):

    profile(tmp_path, approval="required")
    monkeypatch.chdir(tmp_path)  # the page reads the working folder's profile, as the CLI does
    signed_in(monkeypatch, ALICE)
    page = Page(tmp_path / "reports").sign_in()
    job = job_of(page.upload(SAMPLE, name="month-end.xlsx"))
    planned(page, job)
    confirm = page.client.get(f"/jobs/{job}/confirm")
    assert f"signed in to the sandboxes as {ALICE}" in confirm.text
    assert "Not sent:" in confirm.text and "needs approval" in confirm.text
    assert 'id="run"' not in confirm.text  # no button to send it
    refused = followed(page, page.post(f"/jobs/{job}/apply"))
    assert refused.status_code == 400 and "needs approval" in refused.text

    plan = page.client.app.state.jobs.get(job).stages["plan"].folder
    listed = page.client.get("/").text
    assert f'href="/runs/{plan.name}/approve" class="approve">waiting</a>' in listed
    own = page.post(f"/runs/{plan.name}/approve", decision="approve", typed="1")
    assert own.status_code == 400  # the planner's own approval: refused, whatever is typed

    signed_in(monkeypatch, BOB)  # the second person, on their own page, same reports folder
    other = Page(tmp_path / "reports").sign_in()
    review = other.client.get(f"/runs/{plan.name}/approve")
    assert f'Planned by <b id="planner">{ALICE} (sandbox sign-in)</b>' in review.text
    changes = RunFolder.opened(plan, None).read_plan()
    count = sum(e["outcome"] == "change" for e in changes)
    assert f"Changes to send: {count}" in review.text
    mistyped = other.post(f"/runs/{plan.name}/approve", decision="approve", typed=str(count + 1))
    assert mistyped.status_code == 400 and f"Type {count} to approve" in mistyped.text
    done = other.post(f"/runs/{plan.name}/approve", decision="approve", typed=str(count))
    assert f"Approved {plan} as {BOB}" in done.text
    assert "approved" in other.client.get("/").text

    signed_in(monkeypatch, ALICE)
    confirm = page.client.get(f"/jobs/{job}/confirm")
    assert f"Approved by {BOB} (sandbox sign-in) at" in confirm.text and 'id="run"' in confirm.text
    sent = followed(page, page.post(f"/jobs/{job}/apply"))
    assert sent.url.path == f"/jobs/{job}/results"
    code, trail = audit_lines(cli, "--verify", "--reports", "reports")
    assert code == 0
    assert [line["event"] for line in trail["lines"]][-3:] == ["approve", "apply", "applied"]
    assert trail["lines"][-3]["command"] == "bulkpatch ui (the page)"


def test_a_rejection_on_the_page_is_what_the_planner_reads(cli, tmp_path, monkeypatch):

    profile(tmp_path, approval="required")
    monkeypatch.chdir(tmp_path)
    signed_in(monkeypatch, ALICE)
    cli("plan", SAMPLE, "--out", "reports/plan", "--quiet")
    signed_in(monkeypatch, BOB)
    page = Page(tmp_path / "reports").sign_in()
    done = page.post("/runs/plan/approve", decision="reject", reason="Too many seats for Contoso")
    assert f"Rejected {tmp_path / 'reports' / 'plan'} as {BOB}" in done.text
    signed_in(monkeypatch, ALICE)
    refused = cli("apply", "--plan", "reports/plan", "--out", "run", "--quiet")
    assert refused.returncode == 2 and "Too many seats for Contoso" in refused.stderr
