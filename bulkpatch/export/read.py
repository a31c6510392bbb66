"""Export: what Partner Center holds now, as rows a sheet can be made of (README, "`bulkpatch
export`").

Which customers: the ones named, the ones a sheet names, or every customer of the partner,
read page by page from `GET /v1/customers`. Then one list call per customer (its subscriptions
or its orders), paced, retried and counted by the same `Caller` as apply, so the export costs
exactly one call per customer page plus one per customer. A refused token, a service that
cannot be reached or a customer list that cannot be read stops the export: half an export
looks whole. The rows (`export_rows`) and the file (`workbook`) come after, from what was read.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bulkpatch.apply.session import Progress, Shown
from bulkpatch.catalog.fields import Kind, header_index, normalize_header
from bulkpatch.errors import FolderFault, InputError, StoppedError
from bulkpatch.load.headers import HEADER_SEARCH, cell_text
from bulkpatch.network.calls import Caller, Reply, customer_pages
from bulkpatch.network.target import Target, client
from bulkpatch.settings import Settings

if TYPE_CHECKING:
    from bulkpatch.apply.session import Watch
    from bulkpatch.export.result import ExportRun
    from bulkpatch.settings import Profile

PAGE_SIZE = 100  # customers per page of `GET /v1/customers` ("Get a list of customers": `size`)
GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})\}?$")
NAME_HEADERS = {"customer", "company", "customername", "companyname"}
# Which budget each call is paced under: the customer list has no documented limit of its own,
# so it shares the subscription calls' (the sandbox counts it there too).
BUDGET = {"subscriptions": "subscriptions", "orders": "orders"}


@dataclass(frozen=True)
class Customer:
    """A customer to export: its tenant id and, when known, its company name."""

    id: str
    name: str = ""


@dataclass
class Read:
    """What the export read: each customer's resources (in the order met), the customers whose
    list Partner Center refused (with why), and the calls it took."""

    customers: list[Customer] = field(default_factory=list)
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    seconds: float = 0.0  # from the first call to the last answer (not the client's set-up)


def customer_ids(given: list[str]) -> list[Customer]:
    """`--customer ID` values: tenant ids (GUIDs, braces allowed), each once."""
    made: dict[str, Customer] = {}
    for text in given:
        match = GUID.match(text.strip())
        if not match:
            raise InputError(f"--customer {text!r}: is not a customer id (a tenant id, a GUID).")
        made.setdefault(match[1].lower(), Customer(match[1].lower()))
    return list(made.values())


def customers_in(path: str | Path) -> list[Customer]:
    """The customers a sheet names: any sheet with a Customer ID column (headers matched as
    `load` matches them), and their names from a `Customer` or `Company` column if it has one."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"--customers {source}: no such file.")
    for grid in _grids(source):
        found = _customers_of(source, grid)
        if found is not None:
            return found
    raise InputError(
        f"--customers {source}: no sheet has a Customer ID column (the customers' tenant ids)."
    )


def _grids(source: Path) -> list[Any]:
    from bulkpatch.load.csv_file import csv_grid
    from bulkpatch.load.excel_file import excel_grids
    from bulkpatch.load.reader import EXCEL_SUFFIXES

    if source.suffix.lower() in EXCEL_SUFFIXES:
        return [g.grid for g in excel_grids(source, None, None).grids]
    return [csv_grid(source)[0]]


def _customers_of(source: Path, grid: Any) -> list[Customer] | None:
    """The customers of one grid, or None when no row of its top is a Customer ID header."""
    spelt = {n for n, f in header_index("subscriptions").items() if f.name == "customer_id"}
    for top, row in enumerate(grid.head(HEADER_SEARCH).iter_rows()):
        headers = [normalize_header(cell_text(c)) for c in row]
        if not spelt & set(headers):
            continue
        at = next(i for i, h in enumerate(headers) if h in spelt)
        named = next((i for i, h in enumerate(headers) if h in NAME_HEADERS), None)
        made: dict[str, Customer] = {}
        for n, cells in enumerate(grid.slice(top + 1).iter_rows(), start=top + 2):
            text = cell_text(cells[at])
            if not text:
                continue
            match = GUID.match(text)
            if not match:
                raise InputError(
                    f"--customers {source}: row {n}: {text!r} is not a customer id (a GUID)."
                )
            name = cell_text(cells[named]) if named is not None else ""
            made.setdefault(match[1].lower(), Customer(match[1].lower(), name))
        return list(made.values())
    return None


async def read(
    target: Target,
    settings: Settings,
    kind: Kind,
    chosen: list[Customer] | None,
    page_size: int = PAGE_SIZE,
    progress: Shown = False,
    reseller: str | None = None,
) -> Read:
    """Read every chosen customer's subscriptions (or orders); `chosen` None: every customer
    of the partner, page by page; `reseller`: only the subscriptions that indirect reseller
    provided. Raises StoppedError when the export cannot be complete."""
    found = Read()
    queue: asyncio.Queue[Customer | None] = asyncio.Queue()
    shown = Progress(0, "customer", progress, settings.progress_every)
    # A full collection walks every object alive, the imported modules' too: about 60 ms in
    # which no call goes out. Frozen, those are skipped; unfrozen when the read is done.
    gc.freeze()
    try:
        async with shown, _client(target, settings) as http:
            caller = Caller(http, settings, None)
            shown.calls = lambda: sum(caller.calls.values())
            started = time.monotonic()
            async with asyncio.TaskGroup() as group:
                workers = [
                    group.create_task(_lists(caller, kind, queue, found, shown, reseller))
                    for _ in range(settings.concurrency)
                ]
                if chosen is None:
                    await _pages(caller, page_size, queue, found, shown)
                else:
                    shown.grow(len(chosen))
                    for one in chosen:
                        found.customers.append(one)
                        queue.put_nowait(one)
                for _ in workers:
                    queue.put_nowait(None)
            found.seconds = time.monotonic() - started
    finally:
        gc.unfreeze()
    found.calls.update({op: n for (_, op), n in caller.calls.items()})
    found.throttled = caller.throttled
    if caller.stopped:
        raise StoppedError(f"the export stopped: {caller.stopped}; no file was written.")
    return found


def _client(target: Target, settings: Settings) -> Any:
    """The run's HTTP client; the built-in sandbox holds what `bulkpatch sandbox` holds."""
    seed = None
    if target.embedded:
        from bulkpatch.sandbox.config import SeedSpec

        seed = SeedSpec.samples().sheets
    return client(target, seed=seed, connections=settings.concurrency)


async def _pages(
    caller: Caller, size: int, queue: asyncio.Queue, found: Read, shown: Progress
) -> None:
    """Page through the customer list (`customer_pages`) and queue every customer met."""
    async for reply in customer_pages(caller, size):
        if reply.status != 200 or not isinstance(reply.body, dict):
            caller.stop(_why(reply, "the customer list could not be read"))
            return
        items = reply.body.get("items") or []
        shown.grow(len(items))
        for item in items:
            profile = item.get("companyProfile") or {}
            one = Customer(str(item.get("id", "")).lower(), profile.get("companyName") or "")
            found.customers.append(one)
            queue.put_nowait(one)


async def _lists(
    caller: Caller,
    kind: Kind,
    queue: asyncio.Queue,
    found: Read,
    shown: Progress,
    reseller: str | None = None,
) -> None:
    """A worker: one list call per queued customer: "Get a customer's subscriptions"
    (https://learn.microsoft.com/partner-center/developer/get-all-of-a-customer-s-subscriptions,
    `GET /v1/customers/{id}/subscriptions`) or "Get all of a customer's orders"
    (https://learn.microsoft.com/partner-center/developer/get-all-of-a-customer-s-orders,
    `GET /v1/customers/{id}/orders`), each a Collection of the customer's resources. For one
    indirect reseller, "Get a customer's subscriptions by PartnerID" (https://learn.microsoft.
    com/partner-center/developer/get-all-subscriptions-by-partner): `GET /v1/customers/{id}/
    subscriptions?mpn_id={partner id}`, the subscriptions that partner provided."""
    while (one := await queue.get()) is not None:
        if caller.stopped:
            continue
        path = f"/v1/customers/{one.id}/{kind}"
        if reseller and kind == "subscriptions":
            path += f"?mpn_id={quote(reseller)}"
        reply = await caller.call(BUDGET[kind], "LIST", "GET", path, one.id, str(uuid.uuid4()))
        if reply.status == 200 and isinstance(reply.body, dict):
            found.items[one.id] = list(reply.body.get("items") or [])
            shown.counts["ok"] += 1
        elif reply.token_refused or reply.status is None:
            caller.stop(_why(reply, f"the {kind} of customer {one.id} could not be read"))
        else:  # a business answer about this customer only (20002: no relationship, ...)
            found.failed[one.id] = _why(reply, f"Partner Center refused the list of its {kind}")
            shown.counts["failed"] += 1
        shown.read(1)


def _why(reply: Reply, what: str) -> str:
    """One line: the token refused, the service unreachable, or what Partner Center said."""
    if reply.token_refused:
        return f"Partner Center refused the token (HTTP {reply.status}); check the credentials"
    if reply.status is None:
        return f"Partner Center could not be reached ({reply.message})"
    code = f" {reply.code}" if reply.code is not None else ""
    return f"{what} (HTTP {reply.status}{code}: {reply.message})"


# --- the command ----------------------------------------------------------------------------


def export_file(
    *,
    customers: list[str] | None = None,
    customers_sheet: str | Path | None = None,
    all_customers: bool = False,
    kind: Kind = "subscriptions",
    statuses: list[str] | None = None,
    offer: str | None = None,
    renewing_within: str | None = None,
    reseller: str | None = None,
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
    page_size: int | None = None,
    target: str | None = None,
    profile: str | Profile | None = None,
    settings: Settings | None = None,
    rate: float | None = None,
    order_rate: float | None = None,
    limit_scope: str | None = None,
    concurrency: int | None = None,
    progress: str | bool | Watch = False,
) -> ExportRun:
    """Read what Partner Center holds and write it as a sheet to edit, check and apply.

    Customers: `customers` (tenant ids), `customers_sheet` (a sheet with a Customer ID
    column) or `all_customers` (every customer, read page by page). Where calls go and how
    fast (`target`, `profile`, `rate`, ...) are merged as for apply: the keyword, then the
    environment, then the profile, then the default.
    """
    from bulkpatch import settings as config
    from bulkpatch.export import book as export_book
    from bulkpatch.export import rows as export_rows
    from bulkpatch.export.result import ExportRun
    from bulkpatch.network.target import identity, resolve

    chosen = _chosen(customers, customers_sheet, all_customers)
    if kind not in ("subscriptions", "orders"):
        raise InputError(f"--kind {kind!r}: export writes subscriptions or orders.")
    if kind == "orders" and renewing_within is not None:
        raise InputError("--renewing-within applies to subscriptions (their commitment end date).")
    if kind == "orders" and reseller:
        raise InputError("--reseller applies to subscriptions (their partnerId).")
    today = datetime.now(UTC).date()
    filters = export_rows.Filters(
        tuple(statuses or ()), offer, export_rows.window_days(renewing_within, today), reseller
    )
    path = _export_path(out, reports_base)
    chosen_profile = config.profile(profile)
    merged = chosen_profile.settings(
        settings, rate=rate, order_rate=order_rate, limit_scope=limit_scope, concurrency=concurrency
    )
    where = resolve(target, chosen_profile)
    found = asyncio.run(
        read(where, merged, kind, chosen, page_size or PAGE_SIZE, progress, reseller)
    )
    frame = export_rows.frame(kind, found, filters, today)
    try:
        export_book.write(path, kind, export_rows.headers(kind), frame, today.isoformat())
    except OSError as exc:
        raise FolderFault(path.parent, exc) from None
    return ExportRun(
        folder=path.parent,
        reports=[path],
        notes=_notes(found, kind, named=chosen is not None),
        target=where.name,
        kind=kind,
        output=path,
        customers=len(found.customers),
        rows=frame.height,
        failed=found.failed,
        calls=dict(found.calls),
        throttled=found.throttled,
        elapsed=found.seconds,
        filters=filters.to_json(),
        run_by=identity(where),
    )


def template_file(
    kind: Kind = "subscriptions",
    out: str | Path | None = None,
    reports_base: str | Path = "reports",
) -> ExportRun:
    """The export's workbook with no rows (an example row on its Instructions sheet): for a
    sheet built from other sources, with the same columns, dropdowns and checks."""
    import polars as pl

    from bulkpatch.export import book as export_book
    from bulkpatch.export import rows as export_rows
    from bulkpatch.export.result import ExportRun

    if kind not in ("subscriptions", "orders"):
        raise InputError(f"template {kind!r}: write subscriptions or orders.")
    path = _export_path(out, reports_base, f"template-{kind}")
    headers = export_rows.headers(kind)
    empty = pl.DataFrame(schema={h: pl.String for h in headers})
    try:
        export_book.write(path, kind, headers, empty, "")
    except OSError as exc:
        raise FolderFault(path.parent, exc) from None
    return ExportRun(
        folder=path.parent,
        reports=[path],
        target="",
        kind=kind,
        output=path,
        customers=0,
        rows=0,
        failed={},
        calls={},
        throttled=0,
        elapsed=0.0,
        filters={},
        template=True,
    )


def _notes(found: Read, kind: Kind, named: bool) -> list[str]:
    """The customers Partner Center refused, and why the Customer column is empty for those
    named by id: the company name is on the customer list's pages ("Get a list of customers":
    `companyProfile.companyName`), which a named customer skips, and not on a subscription or
    an order ("Subscription resources", https://learn.microsoft.com/partner-center/developer/
    subscription-resources, has no customer name); "Get a customer by ID" would cost one more
    call per customer, which the export does not spend."""
    notes = [f"customer {c}: {why}" for c, why in found.failed.items()]
    blank = sum(named and not c.name and bool(found.items.get(c.id)) for c in found.customers)
    if blank:
        notes.append(
            f"the Customer column is empty for {blank} customer{'s' * (blank != 1)} named by id: "
            f"Partner Center's list of a customer's {kind} carries no company name, and reading "
            "it would cost one more call per customer; a --customers sheet with a Customer "
            "column names them, and --all reads them from its customer pages"
        )
    return notes


def _chosen(
    customers: list[str] | None, sheet: str | Path | None, every: bool
) -> list[Customer] | None:
    """The customers to export (None: every customer of the partner)."""
    if sum((bool(customers), sheet is not None, every)) != 1:
        raise InputError(
            "choose the customers with one of --all, --customer ID or --customers SHEET."
        )
    if every:
        return None
    return customer_ids(customers) if customers else customers_in(sheet)


def _export_path(out: str | Path | None, base: str | Path, name: str = "export") -> Path:
    """`out` (.xlsx or .csv), or a new `<base>/<timestamp>-<name>.xlsx`; its folder made."""
    if out is not None:
        path = Path(out)
        if path.suffix.lower() not in (".xlsx", ".csv"):
            raise InputError(f"--out {path}: name an .xlsx or a .csv file.")
    else:
        stem = Path(base) / f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
        path, n = stem.with_suffix(".xlsx"), 2
        while path.exists():
            path, n = stem.with_name(f"{stem.name}-{n}.xlsx"), n + 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderFault(path.parent, exc) from None
    return path
