"""Stage 4, apply: send the changes, read-modify-write, under Partner Center's limits.

The only stage that touches the network, through one `httpx.AsyncClient` (the embedded sandbox
and tests plug in with an ASGI transport). Per customer: one read just before its writes (a list
call when it has several subscriptions), then each change merged into the fresh resource and
the full object PATCHed. Calls are paced evenly per budget (subscriptions, orders); a 429
pauses every worker; retries keep the change's MS-RequestId, a deliberate second attempt after
a business answer gets its own; every response is journaled. An answer counts only when it is
the resource asked for (`answer`), and what it shows is checked against what the sheet asked
before a row is `ok`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from bulkpatch.apply.answer import collection, unproven
from bulkpatch.apply.outcome import READ_FAILED, Result, failed, landed, unsent
from bulkpatch.apply.verify import unmet
from bulkpatch.errors import Unsent
from bulkpatch.network.calls import Caller, Recorder, Reply, attempt_id, same_origin, versioned
from bulkpatch.plan import rules
from bulkpatch.plan.assess import NEXT_TERM, assess, renewal_day, scheduled_words
from bulkpatch.plan.changes import Change, Merged, merge
from bulkpatch.settings import Settings

STALE_ETAG = 2055
REACTIVATE = uuid.UUID("5e0f6a7b-8c9d-4e1f-a2b3-c4d5e6f7a8b9")
RESCHEDULE = uuid.UUID("2d8e4f60-1a3b-4c5d-9e7f-b1c2d3e4f5a6")


class Engine(Caller):
    """Applies changes through `client`; `results` fills in as changes finish.

    `intents` are the journal's intent lines of an interrupted run (by change key): a change
    whose target now holds was applied before the interruption, and is `ok` with the values
    read before it, so the undo sheet can put them back. `listed`: subscription list replies
    already read this run (matching, `lookup`), by customer id: its read, not read again.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        journal: Recorder | None,
        on_result: Callable[[Change, Result], None] | None = None,
        intents: dict[str, dict[str, Any]] | None = None,
        listed: dict[str, Reply] | None = None,
    ) -> None:
        super().__init__(client, settings, journal)
        self.on_result = on_result
        self.intents = intents or {}
        self.listed = listed or {}
        self.results: dict[str, Result] = {}

    # --- the run ---------------------------------------------------------------------------------

    async def run(self, changes: list[Change]) -> dict[str, Result]:
        """Apply every change: readers fetch each customer's state just ahead of the writers.

        One task group: a task that fails takes the others down with it, so a run never
        waits forever on a worker that is gone.
        """
        pending = _by_customer(changes)
        queue: asyncio.Queue[tuple[Change, dict | Reply] | None] = asyncio.Queue(
            maxsize=self.settings.concurrency
        )
        async with asyncio.TaskGroup() as group:
            for _ in range(self.settings.concurrency):
                group.create_task(self._worker(queue))
            readers = [
                group.create_task(self._reader(pending, queue))
                for _ in range(max(1, self.settings.concurrency // 2))
            ]
            group.create_task(self._close(readers, queue))
        return self.results

    async def _close(self, readers: list[asyncio.Task], queue: asyncio.Queue) -> None:
        """Once every reader is done, tell each worker there is no more work."""
        await asyncio.gather(*readers)
        for _ in range(self.settings.concurrency):
            await queue.put(None)

    async def read_all(
        self, changes: list[Change], on_read: Callable[[int], None] | None = None
    ) -> dict[str, dict | Reply]:
        """Current state for every change (what `plan` shows), read as `run` reads it;
        `on_read` hears how many changes each read covered."""
        pending, found = _by_customer(changes), {}

        async def reader() -> None:
            for group in pending:
                found.update({c.key: current for c, current in await self._read(group)})
                if on_read:
                    on_read(len(group))

        await asyncio.gather(*(reader() for _ in range(max(1, self.settings.concurrency // 2))))
        return found

    async def _reader(
        self,
        pending: Iterator[list[Change]],
        queue: asyncio.Queue[tuple[Change, dict | Reply] | None],
    ) -> None:
        for group in pending:
            if self.stopped:
                return
            for change, current in await self._read(group):
                await queue.put((change, current))

    async def _worker(self, queue: asyncio.Queue[tuple[Change, dict | Reply] | None]) -> None:
        while (item := await queue.get()) is not None:
            change, current = item
            if not self.stopped or isinstance(current, Reply):  # a refused read is a result
                try:
                    self._finish(change, await self._apply(change, current))
                except Unsent:  # stopped while it waited for its turn: nothing went out
                    continue

    def _finish(self, change: Change, result: Result) -> None:
        self.results[change.key] = result
        if self.journal:
            self.journal.write("result", change=change.key, **result.to_json())
        if self.on_result:
            self.on_result(change, result)

    async def _read(self, group: list[Change]) -> list[tuple[Change, dict | Reply]]:
        """Current state for a customer's changes, with the scheduled transition eligibilities
        of those whose renewal SKU or term changes (`rules.ELIGIBLE`)."""
        read = await self._read_state(group)
        return [
            (c, await self._eligibilities(c, cur) if isinstance(cur, dict) else cur)
            for c, cur in read
        ]

    async def _eligibilities(self, change: Change, current: dict[str, Any]) -> dict | Reply:
        """One documented call for a change that schedules another SKU or term at renewal, paced
        in the subscription budget like every call; others make none."""
        if change.kind != "subscriptions" or not rules.needs_eligibility(change.values, current):
            return current
        path = f"{change.path}/transitionEligibilities?eligibilityType=scheduled"
        reply = await self.call(
            "subscriptions", "ELIGIBILITY", "GET", path, change.customer_id, str(uuid.uuid4())
        )
        items, why = collection(reply.body, "eligibility item") if reply.status == 200 else ([], "")
        if reply.status != 200 or why:
            seen = f"Partner Center answered the scheduled transition eligibilities {why}".strip()
            return replace(reply, seen=seen) if why else reply
        return {**current, rules.ELIGIBLE: items}

    async def _read_state(self, group: list[Change]) -> list[tuple[Change, dict | Reply]]:
        """Current state for a customer's changes: one list call for several subscriptions."""
        first = group[0]
        known = (
            self.listed.get(first.customer_id.lower()) if first.kind == "subscriptions" else None
        )
        if known is not None or (first.kind == "subscriptions" and len(group) > 1):
            path = f"/v1/customers/{first.customer_id}/subscriptions"
            reply = known or await self.call(
                "subscriptions", "LIST", "GET", path, first.customer_id, str(uuid.uuid4())
            )
            if reply.status != 200:
                return [(c, reply) for c in group]
            listed, why = collection(reply.body, "subscription")
            if why:
                seen = f"Partner Center answered the list of customer {first.customer_id}'s "
                return [(c, replace(reply, seen=f"{seen}subscriptions {why}")) for c in group]
            items = {str(i.get("id", "")).lower(): i for i in listed}
            missing = Reply(
                404,
                {"code": 20003, "description": "The subscription was not found for this customer."},
                reply.correlation_id,
                1,
            )
            return [
                (c, _shown(c, reply, items[c.resource_id.lower()]))
                if c.resource_id.lower() in items
                else (c, missing)
                for c in group
            ]
        return [(c, await self._get(c)) for c in group]

    async def _get(self, change: Change) -> dict | Reply:
        """The resource as Partner Center holds it, or the Reply that does not show it."""
        reply = await self.call(
            change.kind, "GET", "GET", change.path, change.customer_id, str(uuid.uuid4())
        )
        return _shown(change, reply, reply.body) if reply.status == 200 else reply

    # --- one change ---------------------------------------------------------------------------

    async def _apply(self, change: Change, current: dict | Reply) -> Result:
        started = time.monotonic()
        result = await self._write(change, current)
        if isinstance(current, dict):
            result.offer = current.get("offerName") or current.get("offerId") or ""
        result.request_id = result.request_id or change.request_id
        result.elapsed_ms = round((time.monotonic() - started) * 1000)
        return result

    async def _write(self, change: Change, current: dict | Reply) -> Result:
        if isinstance(current, Reply):
            return failed(current, READ_FAILED)
        now = datetime.now(UTC)
        intent = self.intents.get(change.key)
        if intent and change.delta is not None and "quantity" in intent["after"]:
            # a seat change sent before the interruption: its total, never a second addition
            total = intent["after"]["quantity"]
            change = replace(change, values={**change.values, "quantity": total}, delta=None)
        assessment = assess(change, current, now)
        if assessment.verdict == "no_change" and intent:
            return landed(intent)
        if not assessment.sendable:
            return unsent(assessment)
        change, merged = assessment.change, assessment.merged
        first = not merged.reactivate_first  # a Stop may still keep this change from going out
        if merged.reactivate_first:  # Partner Center: a suspended subscription changes status alone
            current = await self._reactivate(change, current, now)
            if isinstance(current, Reply):
                return failed(current, "reactivating it first failed: ")
            merged = merge(change, current, now)
        request_id = change.request_id
        reply = await self._patch(change, current, merged, request_id, stoppable=first)
        if reply.status == 400 and reply.code == STALE_ETAG:  # changed meanwhile: read, retry once
            fresh = await self._get(change)
            if isinstance(fresh, Reply):
                return failed(fresh, "reading it again after a stale etag failed: ")
            again = assess(change, fresh, now)
            if not again.sendable:
                return unsent(again)
            merged = again.merged
            # "Partner Center REST request/response headers" (https://learn.microsoft.com/
            # partner-center/developer/headers): MS-RequestId stays the same across a timeout,
            # and is reset once a response (success or business failure) was received. The 2055
            # was a response, so the second attempt is a new call with its own id, derived from
            # the change and the attempt so that a resumed run sends the same one again.
            request_id = attempt_id(change.request_id, 2)
            reply = await self._patch(change, fresh, merged, request_id)
        result = await self._outcome(change, merged, reply)
        result.request_id = request_id
        if intent:  # what was read before the first attempt, for undo
            result.before = {**result.before, **intent["before"]}
        if result.outcome in ("ok", "accepted") and assessment.warnings:
            result.error_message = "; ".join(assessment.warnings)
            if self.settings.keep_renewal_changes:
                result.error_message = await self._reschedule(change, current)
        return result

    async def _reschedule(self, change: Change, current: dict[str, Any]) -> str:
        """Schedule again the renewal changes a mid-term change removed (asked for with
        `--keep-renewal-changes`): a second PATCH with its own MS-RequestId."""
        scheduled = current[NEXT_TERM]
        renewal = renewal_day(current)
        lost = f"the renewal changes for {renewal} were removed and could not be scheduled again"
        fresh = await self._get(change)
        if isinstance(fresh, Reply):
            return f"{lost}: {fresh.message}"
        step = replace(change, values={}, request_id=str(uuid.uuid5(RESCHEDULE, change.request_id)))
        body = {**fresh, NEXT_TERM: scheduled}
        merged = Merged(body, {NEXT_TERM: (fresh.get(NEXT_TERM), scheduled)})
        reply = await self._patch(step, fresh, merged, step.request_id)
        if reply.status not in (200, 202):
            return f"{lost}: {reply.message}"
        return (
            f"the renewal changes for {renewal} were removed and scheduled again as they were "
            f"({scheduled_words(scheduled)} at renewal; MS-RequestId {step.request_id})"
        )

    async def _reactivate(self, change: Change, current: dict, now: datetime) -> dict | Reply:
        """The status change on its own (its own MS-RequestId, derived from the change's)."""
        step = replace(
            change,
            values={"status": "active"},
            request_id=str(uuid.uuid5(REACTIVATE, change.request_id)),
        )
        merged = merge(step, current, now)
        reply = await self._patch(step, current, merged, step.request_id, stoppable=True)
        if reply.status not in (200, 202):
            return reply
        return await self._get(change)

    async def _patch(
        self,
        change: Change,
        current: dict,
        merged: Merged,
        request_id: str,
        stoppable: bool = False,
    ) -> Reply:
        """PATCH the full body, its intent journaled first: whatever moment the process dies,
        a change that may have landed is in the journal with the values read before it. When
        the intent cannot be written, nothing is sent. `stoppable`: see `Caller.call`."""
        if self.journal and not self.journal.write(
            "intent",
            change=change.key,
            request_id=request_id,
            before={k: b for k, (b, _) in merged.diffs.items()},
            after={k: a for k, (_, a) in merged.diffs.items()},
        ):
            return Reply(None, None, "", 0, error="the run folder could not be written")
        etag = (current.get("attributes") or {}).get("etag")
        return await self.call(
            change.kind,
            "PATCH",
            "PATCH",
            change.path,
            change.customer_id,
            request_id,
            body=merged.body,
            etag=etag,
            stoppable=stoppable,
        )

    async def _outcome(self, change: Change, merged: Merged, reply: Reply) -> Result:
        if reply.status not in (200, 202):
            refused = failed(reply)
            refused.diffs = dict(merged.diffs)
            return refused
        result = Result(
            "ok",
            reply.status,
            diffs=dict(merged.diffs),
            correlation_id=reply.correlation_id,
            attempts=reply.attempts,
            before={k: b for k, (b, _) in merged.diffs.items()},
        )
        if reply.status == 202:
            result.outcome, result.error_message = await self._poll(change, reply.location)
            return result
        # Verify what was written: a 200 whose resource does not show a target did not apply
        # it (legacy subscriptions whose auto-renew cannot be changed answer 200 and keep it:
        # Partner-Center-PowerShell issue 115,
        # https://github.com/microsoft/Partner-Center-PowerShell/issues/115). After a 202 the
        # poll does the same: `ok` only once the resource shows every target. A 200 that is not
        # the resource (empty, not JSON, another id) proves nothing: one more read decides.
        answered, shown = "Partner Center answered 200", reply.body
        if why := unproven(change, reply.body, lines=True):
            answered = f"Partner Center answered 200 {why}; read again, "
            shown = await self._get(change)
            if isinstance(shown, Reply):
                result.outcome = "failed"
                result.error_message = f"{answered}it failed: {shown.message}"
                return result
        if missed := unmet(change, shown):
            result.outcome = "failed"
            joined = " but " if not why else ""
            result.error_message = answered + joined + "; ".join(missed)
        elif why:
            result.error_message = answered + "it shows every change"
        return result

    async def _poll(self, change: Change, location: str | None) -> tuple[str, str]:
        """After 202: read the resource until the target values show, within the poll budget;
        the outcome, and what a user should know when it stays `accepted`.

        `Location` is relative to the versioned base ("Change the quantity of a subscription":
        `/customers/{c}/subscriptions/{s}` means `{base}/v1/customers/...`). One on another
        host or scheme is never followed. A poll answered 404 or 400 stops using it and reads
        the resource at its own path instead; an answer that is not the resource waits for
        the next.
        """
        if location and not same_origin(location, self.client.base_url):
            return "accepted", (
                f"Partner Center accepted it (202) but its Location points elsewhere "
                f"({location[:200]}), which bulkpatch never follows: not confirmed; apply the "
                "sheet again later to see whether it holds"
            )
        path = versioned(location, change.path) if location else change.path
        deadline, delay, note = time.monotonic() + self.settings.poll_timeout, 0.25, ""
        while time.monotonic() + delay < deadline and not self.stopped:
            await asyncio.sleep(delay)
            reply = await self.call(
                change.kind, "POLL", "GET", path, change.customer_id, str(uuid.uuid4())
            )
            if reply.status in (400, 404) and path != change.path:
                path = change.path
                continue
            if reply.status == 200:
                why = unproven(change, reply.body, lines=True)
                if not why and not unmet(change, reply.body):
                    return "ok", ""
                note = f"not confirmed: its last poll was answered {why}" if why else ""
            delay = min(delay * 1.6, 5.0)
        return "accepted", note


def _shown(change: Change, reply: Reply, body: Any) -> dict[str, Any] | Reply:
    """`body` (a 200's, or an item of a list) when it is the resource `change` names; else the
    Reply saying what Partner Center answered instead: the row fails, and nothing of that body
    is ever sent back."""
    why = unproven(change, body)
    return replace(reply, seen=f"Partner Center answered {why}") if why else body


def _by_customer(changes: list[Change]) -> Iterator[list[Change]]:
    """Changes grouped per customer and kind, in sheet order: each group is read once."""
    groups: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in changes:
        groups[(change.kind, change.customer_id.lower())].append(change)
    return iter(list(groups.values()))
