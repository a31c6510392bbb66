"""The page's routes: Start (upload, recent runs) -> Check -> Plan -> Confirm -> Results.

Each step calls the command-layer function the CLI calls (`check_file`, `plan_file`,
`apply_file`) into run folders of its own, so what the page did can be resumed or read from
the command line. The page only shows what those runs returned and wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bulkpatch.check.checker import Checked
from bulkpatch.commands.api import check_file, plan_file
from bulkpatch.commands.apply import apply_file
from bulkpatch.commands.controls import approval_state, approve_plan, review_plan
from bulkpatch.commands.matching import counted, stopped
from bulkpatch.commands.results import PlanRun
from bulkpatch.errors import BulkpatchError
from bulkpatch.export.read import export_file
from bulkpatch.outcomes import MEANING
from bulkpatch.report.stamp import retold
from bulkpatch.report.words import identity_words
from bulkpatch.ui.guard import BodyLimit, Guard, Refused, Session
from bulkpatch.ui.jobs import (
    SHEETS,
    Job,
    Jobs,
    export_options,
    finished,
    folder_reports,
    folder_state,
    in_progress,
    left_to_send,
    page,
    recent,
    run_folder,
    sliced,
)
from bulkpatch.ui.shown import banner, pushed, signed_in

TARGETS = ("sandbox", "production")
NEXT = {"plan": "plan", "results": "results", "export": "export"}  # the page a stage ends on
FORM_ROOM = 64 * 1024  # what a multipart form adds around the file
_env = Environment(
    loader=PackageLoader("bulkpatch.ui", "templates"), autoescape=select_autoescape()
)

PAGE = "bulkpatch ui (the page)"  # how the reports and the audit log name the page's runs


def make_app(
    session: Session, reports: Path, max_upload: int = 50 * 1024 * 1024, profile: str | None = None
) -> Starlette:
    """The page's application: `session` holds its secrets and allowed hosts; runs are
    written under `reports`, signed in with `profile`; a sheet over `max_upload` bytes is
    refused."""
    jobs = Jobs(reports, profile)
    web = _Web(session, jobs, max_upload)
    routes = [
        Route("/", web.start),
        Route("/upload", web.upload, methods=["POST"]),
        Route("/jobs/{job}/check", web.check),
        Route("/jobs/{job}/plan", web.plan, methods=["GET", "POST"]),
        Route("/jobs/{job}/confirm", web.confirm),
        Route("/jobs/{job}/apply", web.apply, methods=["POST"]),
        Route("/jobs/{job}/run", web.running),
        Route("/jobs/{job}/events", web.events),
        Route("/jobs/{job}/stop", web.stop, methods=["POST"]),
        Route("/jobs/{job}/resume", web.resume, methods=["POST"]),
        Route("/jobs/{job}/results", web.results),
        Route("/jobs/{job}/export", web.exported),
        Route("/jobs/{job}/files/{stage}/{name}", web.download),
        Route("/export", web.export, methods=["POST"]),
        Route("/runs/{run}", web.run_folder),
        Route("/runs/{run}/resume", web.resume_folder, methods=["POST"]),
        Route("/runs/{run}/approve", web.approve, methods=["GET", "POST"]),
        Route("/runs/{run}/files/{name}", web.run_file),
        Mount("/static", StaticFiles(packages=[("bulkpatch.ui", "static")]), name="static"),
    ]
    too_large = f"The sheet is larger than {_mb(max_upload)}: split it."
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Guard, session=session),
            Middleware(BodyLimit, most=max_upload + FORM_ROOM, line=too_large),
        ],
        exception_handlers={Refused: web.refused, BulkpatchError: web.failed},
    )
    app.state.jobs = jobs
    return app


class _Web:
    """The endpoints, sharing the session, the jobs and the upload limit."""

    def __init__(self, session: Session, jobs: Jobs, max_upload: int) -> None:
        self.session, self.jobs, self.max_upload = session, jobs, max_upload

    def render(self, name: str, status: int = 200, job: Job | None = None, **context) -> Response:
        who = signed_in(self.jobs.profile)
        context.update(csrf=self.session.csrf, job=job, banner=banner(job), who=who)
        return HTMLResponse(_env.get_template(name).render(**context), status_code=status)

    # --- errors ---------------------------------------------------------------------------------

    async def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return self.render("error.html", exc.status, message=exc.line)

    async def failed(self, request: Request, exc: Exception) -> Response:
        """A run the command layer refused: the same one line the CLI prints."""
        return self.render("error.html", 400, message=str(exc), job=self._job(request, False))

    # --- helpers --------------------------------------------------------------------------------

    def _job(self, request: Request, needed: bool = True) -> Job | None:
        job = self.jobs.get(request.path_params.get("job", ""))
        if job is None and needed:
            raise Refused(404, "This page does not know that sheet: upload it again.")
        return job

    async def _form(self, request: Request) -> FormData:
        """The POSTed form, only when it carries this session's CSRF token and is within the
        upload limit: a size declared over it is refused before any of it is read, and the
        body is counted as it comes (`BodyLimit`), a chunked one without a size too."""
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > self.max_upload + FORM_ROOM:
            raise Refused(413, f"The sheet is larger than {_mb(self.max_upload)}: split it.")
        form = await request.form(max_files=1, max_fields=8)
        self.session.check_form(request, form)
        return form

    # --- pages ----------------------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        runs = await run_in_threadpool(recent, self.jobs.base)
        for run in runs:  # a plan the profile holds back: waiting, approved or rejected
            if run["state"] == "planned":
                said = await run_in_threadpool(
                    approval_state, self.jobs.base / run["name"], self.jobs.profile
                )
                run["state"] = said["decision"] or ("waiting" if said["needed"] else "planned")
        return self.render(
            "start.html", runs=runs, limit=_mb(self.max_upload), sheets=SHEETS, targets=TARGETS
        )

    async def upload(self, request: Request) -> Response:
        form = await self._form(request)
        item = form.get("sheet")
        if not isinstance(item, UploadFile) or not item.filename:
            raise Refused(400, "Choose a sheet (CSV or Excel) first.")
        if Path(item.filename).suffix.lower() not in SHEETS:
            raise Refused(
                400, f"{item.filename}: choose a CSV or Excel file ({', '.join(SHEETS)})."
            )
        data = await item.read(self.max_upload + 1)
        if len(data) > self.max_upload:
            raise Refused(413, f"The sheet is larger than {_mb(self.max_upload)}: split it.")
        job = self.jobs.new(item.filename, data)
        try:
            job.stages["check"] = await run_in_threadpool(
                check_file, job.sheet, out=job.folder, reports_base=self.jobs.base
            )
        except Exception as exc:  # the sheet is not kept: nothing was done with it
            await run_in_threadpool(self.jobs.drop, job)
            said = str(exc) if isinstance(exc, BulkpatchError) else f"unexpected error: {exc!r}"
            raise Refused(400, said.replace(str(job.sheet), job.name)) from None
        return RedirectResponse(f"/jobs/{job.id}/check", status_code=303)

    async def check(self, request: Request) -> Response:
        job = self._job(request)
        part = _part(job, request)
        checked = job.parts[part]
        rows = _rows(job, "check", request, part)
        at = rows["headers"].index("row")
        shown = {int(r[at]) for r in rows["rows"]}  # only this page's rows are marked
        issues = checked.issues.filter(pl.col("row").is_in(shown))
        marks = {(r, c): m for r, c, m in issues.select("row", "column", "message").iter_rows()}
        rows["cells"] = [
            [(v, marks.get((int(r[at]), h))) for h, v in zip(rows["headers"], r, strict=True)]
            for r in rows["rows"]
        ]
        return self.render(
            "check.html",
            job=job,
            run=job.stages["check"],
            mapping=checked.sheet.mapping(),
            part=part,
            rows=rows,
            targets=TARGETS,
        )

    async def plan(self, request: Request) -> Response:
        job = self._job(request)
        if request.method == "POST":
            form = await self._form(request)
            target = form.get("target")
            if target not in TARGETS:
                raise Refused(400, "Choose where to plan: the sandbox or production.")
            out = job.next_folder("plan")
            self._start(
                job, "plan", out, plan_file, path=job.sheet, out=out, target=target, command=PAGE
            )
            return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)
        if job.running or "plan" not in job.stages:  # a plan under way shows its progress
            return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)
        plan = job.stages["plan"]
        assert isinstance(plan, PlanRun)
        return self._rows_page(
            job,
            "plan",
            request,
            matching=_matching(plan.prepared.parts[_part(job, request)], request),
            seats=plan.seats.rows(named=True),
            warned=sum(bool(e.get("warnings")) for e in plan.entries),
            meaning=MEANING,
        )

    async def confirm(self, request: Request, wrong: str = "") -> Response:
        job = self._job(request)
        if job.running or "plan" not in job.stages:
            return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)
        plan = job.stages["plan"]
        approved = await run_in_threadpool(approval_state, plan.folder, self.jobs.profile)
        return self.render(
            "confirm.html",
            400 if wrong else 200,
            job=job,
            approval=approved,
            changes=plan.counts().get("change", 0),
            production=plan.stamp.where == "production",
            sent="results" in job.stages,  # this plan's run: a new plan makes a new one
            sending_to=retold(plan.stamp.target, "future"),
            wrong=wrong,
        )

    async def apply(self, request: Request) -> Response:
        job = self._job(request)
        form = await self._form(request)
        plan = job.stages.get("plan")
        if plan is None:
            raise Refused(409, "Plan the sheet before running it.")
        changes = plan.counts().get("change", 0)
        if "results" in job.stages or not changes:
            raise Refused(409, "This plan has nothing (more) to send: plan the sheet again.")
        if plan.stamp.where == "production" and form.get("typed", "").strip() != str(changes):
            return await self.confirm(request, f"Type {changes} to send to production.")
        out = job.next_folder("results")
        target = job.target
        whole = form.get("all_or_nothing") == "1"  # the checkbox: --all-or-nothing
        self._start(
            job,
            "results",
            out,
            apply_file,
            plan_dir=plan.folder,
            out=out,
            target=target,
            command=PAGE,
            all_or_nothing=whole,
        )
        return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)

    async def running(self, request: Request) -> Response:
        """The plan or run under way (its figures pushed by the server; without script the
        page reloads itself each second), then its page, or why it stopped."""
        job = self._job(request)
        work = job.work
        if work is None:
            return RedirectResponse(f"/jobs/{job.id}/check", status_code=303)
        if work.running:
            return self.render("progress.html", job=job, work=work, shown=work.shown())
        if work.failure:
            return self.render("error.html", 400, job=job, message=work.failure)
        return RedirectResponse(f"/jobs/{job.id}/{NEXT[work.stage]}", status_code=303)

    async def events(self, request: Request) -> Response:
        """The progress pushed to its page (server-sent events): done, by outcome, calls per
        minute and time left every half second while it runs, then `done`."""
        return StreamingResponse(pushed(self._job(request)), media_type="text/event-stream")

    async def stop(self, request: Request) -> Response:
        """Stop the run as Ctrl-C stops `apply`: calls in flight finish, the rest is not sent,
        and the Results page offers to resume it."""
        job = self._job(request)
        await self._form(request)
        if job.work and job.work.running and job.work.stage == "results":
            job.work.watch.stop()
        return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)

    async def resume(self, request: Request) -> Response:
        """Send what an interrupted run did not send, in its own folder (as `--resume`)."""
        job = self._job(request)
        form = await self._form(request)
        run = job.stages.get("results")
        if run is None:
            raise Refused(409, "There is no run of this sheet to resume.")
        folder = run.folder
        await _confirmed(folder, form, self.jobs.profile)
        self._start(job, "results", folder, apply_file, resume_dir=folder, target=job.target)
        return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)

    async def resume_folder(self, request: Request) -> Response:
        """Resume a run folder from the Start page's list (begun here, or by the CLI)."""
        folder = self._folder(request)
        await _confirmed(folder, await self._form(request), self.jobs.profile)
        job = await run_in_threadpool(self.jobs.reopened, folder)
        self._start(job, "results", folder, apply_file, resume_dir=folder)
        return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)

    async def export(self, request: Request) -> Response:
        """Export what Partner Center holds (the Start page's form) into a workbook to edit."""
        form = await self._form(request)
        options = export_options(form, TARGETS)
        job = self.jobs.export()
        self._start(job, "export", job.folder, export_file, out=job.sheet, **options)
        return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)

    async def exported(self, request: Request) -> Response:
        job = self._job(request)
        if "export" not in job.stages:
            return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)
        return self.render("export.html", job=job, run=job.stages["export"])

    async def results(self, request: Request) -> Response:
        job = self._job(request)
        if job.running:
            return RedirectResponse(f"/jobs/{job.id}/run", status_code=303)
        if "results" not in job.stages:
            return RedirectResponse(f"/jobs/{job.id}/confirm", status_code=303)
        run = job.stages["results"]
        left = None
        if run.interrupted:  # type: ignore[attr-defined]
            left = await run_in_threadpool(left_to_send, run.folder, self.jobs.profile)
        return self._rows_page(job, "results", request, left=left)

    async def download(self, request: Request) -> Response:
        job = self._job(request)
        found = job.file(request.path_params["stage"], request.path_params["name"])
        if found is None or not found.is_file():
            raise Refused(404, "This run wrote no such file.")
        return FileResponse(found, filename=found.name)

    async def run_folder(self, request: Request) -> Response:
        """A run folder from the Start page's list: its state and its reports."""
        folder = self._folder(request)
        state = folder_state(folder)
        left = (
            await run_in_threadpool(left_to_send, folder, self.jobs.profile)
            if state == "interrupted"
            else None
        )
        files = folder_reports(folder)
        busy = await run_in_threadpool(in_progress, folder) if state == "running" else None
        summed = state in ("applied", "interrupted") and (folder / "summary.json").is_file()
        did = await run_in_threadpool(finished, folder) if summed else None
        return self.render(
            "run.html", folder=folder, state=state, files=files, left=left, busy=busy, did=did
        )

    async def approve(self, request: Request) -> Response:
        """A plan waiting for approval: what it will do, then approve it (the number of
        changes typed) or reject it with a reason, as whoever this page is signed in as."""
        folder = self._folder(request)
        review, planner = await run_in_threadpool(review_plan, folder)
        wrong = ""
        if request.method == "POST":
            form = await self._form(request)
            reject = form.get("decision") == "reject"
            if reject or form.get("typed", "").strip() == str(review.changes):
                done = await run_in_threadpool(
                    lambda: approve_plan(
                        folder,
                        confirm=lambda *_: "rejected" if reject else "typed the count on the page",
                        reject=reject,
                        reason=form.get("reason") or None,
                        profile=self.jobs.profile,
                        command=PAGE,
                    )
                )
                return self.render("approve.html", folder=folder, done=done.words(), review=review)
            wrong = f"Type {review.changes} to approve this plan."
        state = await run_in_threadpool(approval_state, folder, self.jobs.profile)
        return self.render(
            "approve.html",
            400 if wrong else 200,
            folder=folder,
            review=review,
            planner=identity_words(planner),
            state=state,
            wrong=wrong,
            done="",
        )

    async def run_file(self, request: Request) -> Response:
        folder = self._folder(request)
        name = request.path_params["name"]
        found = next((p for p in folder_reports(folder) if p.name == name), None)
        if found is None:
            raise Refused(404, "This run folder holds no such report.")
        return FileResponse(found, filename=found.name)

    def _folder(self, request: Request) -> Path:
        folder = run_folder(self.jobs.base, request.path_params["run"])
        if folder is None:
            raise Refused(404, "No such run folder.")
        return folder

    # --- shared ---------------------------------------------------------------------------------

    def _start(self, job: Job, stage: str, folder: Path, work: Callable, **options) -> None:
        """Start a plan, a run or an export of `job` (one at a time), writing under the
        page's reports folder."""
        mine = {"reports_base": self.jobs.base, "profile": self.jobs.profile}
        if not job.start(stage, folder, work, **mine, **options):
            raise Refused(409, "This sheet is being planned or sent already: wait for it.")

    def _rows_page(self, job: Job, stage: str, request: Request, **context) -> Response:
        part = _part(job, request)
        rows = _rows(job, stage, request, part)
        rows["cells"] = [[(v, None) for v in r] for r in rows["rows"]]
        run = job.stages[stage]
        return self.render(f"{stage}.html", job=job, run=run, part=part, rows=rows, **context)


async def _confirmed(folder: Path, form: FormData, profile: str | None) -> None:
    """A resume that sends to a real Partner Center needs the number of changes left typed,
    as a first run does."""
    left = await run_in_threadpool(left_to_send, folder, profile)
    if left["real"] and form.get("typed", "").strip() != str(left["pending"]):
        raise Refused(400, f"Type {left['pending']} to send the changes left to production.")


def _part(job: Job, request: Request) -> int:
    """Which of the job's sheets the page shows (`?sheet=`, a workbook's sheets from 0)."""
    return _int(request.query_params.get("sheet"), 0, len(job.parts) - 1)


def _matching(part: Checked, request: Request) -> dict[str, Any] | None:
    """What the Plan page shows of a sheet's matching (None: its rows had their ids): rows by
    how they were matched, and a page (`?choices=`) of the rows it stopped, as `--json`'s
    `matching` carries them."""
    if part.found is None:
        return None
    stops = stopped(part)
    shown, number, pages = sliced(stops, _int(request.query_params.get("choices"), 1))
    return {
        "counts": counted(part),
        "rows": shown.to_dicts(),
        "total": stops.height,
        "number": number,
        "pages": pages,
    }


def _rows(job: Job, stage: str, request: Request, part: int) -> dict[str, Any]:
    outcome = request.query_params.get("outcome") or None
    shown = page(job.rows(stage, part), outcome, _int(request.query_params.get("page"), 1))
    return {**shown, "outcome": outcome or "", "stage": stage}


def _int(text: str | None, low: int, high: int | None = None) -> int:
    value = int(text) if text and text.isdigit() else low
    return max(low, value if high is None else min(value, high))


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB"
