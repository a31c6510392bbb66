"""What every page shows besides its rows: where its runs go and who is signed in (the top of
the page), and the progress pushed to a plan's, a run's or an export's page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from bulkpatch.errors import BulkpatchError
from bulkpatch.report.stamp import retold
from bulkpatch.ui.jobs import Job


async def pushed(job: Job) -> AsyncIterator[str]:
    """Server-sent events: the work's figures every half second while it runs, then `done`."""
    work = job.work
    while work is not None and work.running:
        yield f"data: {json.dumps(work.shown())}\n\n"
        await asyncio.sleep(0.5)
    yield "event: done\ndata: {}\n\n"


def banner(job: Job | None) -> dict[str, str] | None:
    """Where the job's latest run points, in words (as its reports say it); the style sheet
    colours it as the reports' Summary banner is coloured."""
    run = next(
        (job.stages[s] for s in ("results", "plan", "check") if job and s in job.stages), None
    )
    if run is not None and run.stamp is not None:
        said = {"where": run.stamp.where, "words": run.stamp.target, "tenant": run.stamp.tenant}
    elif job is not None and job.where:  # a run folder opened again, before its run ends
        said = job.where
    else:
        return None
    # The reports say what a run did; the page says where its runs go, in the present.
    return {**said, "words": retold(said["words"], "present")}


def signed_in(profile: str | None) -> str:
    """Who production calls go out as, in the words of `bulkpatch auth status` (never a
    token), or who the sandboxes see: read again on every page, so a sign-in in a terminal
    shows at once."""
    from bulkpatch.network.auth import Credentials, TokenProvider, in_words, sandbox_status
    from bulkpatch.settings import load_profile

    try:
        status = TokenProvider(Credentials.of(load_profile(profile))).status()
    except BulkpatchError as exc:
        return f"Not signed in: {exc}"
    if status["method"] == "token" and not status["set"]:
        sandbox = sandbox_status()
        if sandbox["signed_in"]:
            return (
                f"Not signed in to Partner Center; signed in to the sandboxes as {sandbox['who']}."
            )
        return "Not signed in to Partner Center (the sandbox needs no sign-in)."
    return in_words(status)
