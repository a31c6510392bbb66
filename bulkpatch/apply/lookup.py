"""The reads a match needs: the customer list, paged, once a run; one subscription list per
customer, kept for the read-modify-write reads so no customer's list is read twice.

"Get a list of customers" (https://learn.microsoft.com/partner-center/developer/
get-a-list-of-customers) pages the customers (`network.calls.customer_pages`); "Get all of a
customer's subscriptions" (https://learn.microsoft.com/partner-center/developer/
get-all-of-a-customer-s-subscriptions): `GET /v1/customers/{id}/subscriptions`, a Collection.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from typing import TYPE_CHECKING, Any

from bulkpatch.apply.answer import collection
from bulkpatch.errors import StoppedError
from bulkpatch.network.calls import Caller, Reply, customer_pages
from bulkpatch.network.target import client

if TYPE_CHECKING:
    from bulkpatch.apply.session import Session

PAGE_SIZE = 100  # customers per page, as export asks ("Get a list of customers": `size`)


def read_customers(session: Session) -> list[dict[str, Any]]:
    """Every customer of the partner (Customer resources); StoppedError when the list could
    not be read: a row cannot be matched against part of it."""
    return asyncio.run(_customers(session))


def read_lists(session: Session, ids: list[str]) -> dict[str, Reply]:
    """Each customer's subscription list reply, by customer id (lower case)."""
    return asyncio.run(_lists(session, ids)) if ids else {}


def _client(session: Session) -> Any:
    """The session's client; the built-in sandbox also holds the samples' customers (as
    `bulkpatch export` reads it), so a sheet naming them by name finds them."""
    if not session.target.embedded:
        return session.client()
    from bulkpatch.sandbox.config import SeedSpec

    seed = [*SeedSpec.samples().sheets, session.seed]
    return client(session.target, seed=seed, connections=session.settings.concurrency)


async def _customers(session: Session) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    async with _client(session) as http:
        caller = Caller(http, session.settings, None)
        async for reply in customer_pages(caller, PAGE_SIZE):
            listed, why = collection(reply.body, "customer") if reply.status == 200 else ([], "")
            if reply.status != 200 or why:
                seen = why or f"HTTP {reply.status}: {reply.message or 'no answer'}"
                raise StoppedError(
                    f"could not read the customer list to match names ({seen}). Nothing was sent."
                )
            items += listed
        if caller.stopped:
            raise StoppedError(f"could not read the customer list: {caller.stopped}.")
    return items


async def _lists(session: Session, ids: list[str]) -> dict[str, Reply]:
    """The lists, kept for the whole run. Each reply read is frozen (`gc.freeze`) until all
    are in: otherwise every full collection walks again all that was read so far, which took
    longer than the reading (100,000 subscriptions: 8 s, 3.4 s frozen)."""
    found: dict[str, Reply] = {}
    pending = iter(ids)
    try:
        async with _client(session) as http:
            caller = Caller(http, session.settings, None)

            async def reader() -> None:
                for customer in pending:
                    path = f"/v1/customers/{customer}/subscriptions"
                    found[customer.lower()] = await caller.call(
                        "subscriptions", "LIST", "GET", path, customer, str(uuid.uuid4())
                    )
                    gc.freeze()

            readers = max(1, session.settings.concurrency // 2)
            await asyncio.gather(*(reader() for _ in range(readers)))
    finally:
        gc.unfreeze()
    return found


def listed_items(replies: dict[str, Reply]) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """The subscriptions each list holds, and why a list could not be read (by customer)."""
    items, unread = {}, {}
    for customer, reply in replies.items():
        listed, why = collection(reply.body, "subscription") if reply.status == 200 else ([], "")
        if reply.status == 200 and not why:
            items[customer] = listed
        else:
            unread[customer] = why or f"HTTP {reply.status}: {reply.message or 'no answer'}"
    return items, unread
