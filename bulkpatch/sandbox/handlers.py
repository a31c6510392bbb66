"""What each resource route does once a call is let through: read a subscription or an order,
list the customers, a customer's subscriptions or orders, PATCH either (with 202 Accepted for
some subscription PATCHes).
The rules of a PATCH are `semantics`'; this module is their HTTP side."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bulkpatch.errors import ApiError
from bulkpatch.sandbox import customers, resources, semantics
from bulkpatch.sandbox.config import SandboxConfig
from bulkpatch.sandbox.store import Store


def error(refusal: ApiError) -> JSONResponse:
    """A refusal as Partner Center answers it: its status and its error body."""
    return JSONResponse(refusal.body(), status_code=refusal.status)


def unversioned(path: str) -> str:
    """`/v1/customers/...` as Partner Center's links write it: `/customers/...`."""
    parts = path.split("/", 2)
    return "/" + parts[2] if len(parts) > 2 and parts[1].startswith("v") else path


class ResourceHandlers:
    """The handlers of the resource routes, mixed into `Sandbox`, whose state they use."""

    config: SandboxConfig
    store: Store
    counts: Counter[str]
    applied_per_resource: Counter[str]

    async def _get_subscription(self, request: Request) -> Response:
        found = self._read("subscriptions", request)
        return found if isinstance(found, Response) else JSONResponse(found)

    async def _get_eligibilities(self, request: Request) -> Response:
        """ "Transition a new commerce subscription" (https://learn.microsoft.com/partner-center/
        developer/transition-a-new-commerce-subscription): GET .../subscriptions/{id}/
        transitionEligibilities?eligibilityType=... answers a Collection of
        TransitionEligibility; the sandbox knows the scheduled type."""
        found = self._read("subscriptions", request)
        if isinstance(found, Response):
            return found
        if request.query_params.get("eligibilityType", "").lower() != "scheduled":
            return error(ApiError(400, semantics.BAD_INPUT, "Invalid input: eligibilityType."))
        return _collection(request, resources.scheduled_eligibilities(found))

    async def _get_order(self, request: Request) -> Response:
        found = self._read("orders", request)
        return found if isinstance(found, Response) else JSONResponse(found)

    async def _list_subscriptions(self, request: Request) -> Response:
        """A customer's subscriptions; with `mpn_id`, those that partner provided ("Get a
        customer's subscriptions by PartnerID", https://learn.microsoft.com/partner-center/
        developer/get-all-subscriptions-by-partner: `?mpn_id={mpn-id}`)."""
        customer = request.path_params["customer_id"]
        items = self.store.list("subscriptions", customer, time.time())
        if items is None:  # an unknown customer: 403 20002 ("Partner Center REST error codes")
            return _no_relationship(customer)
        mpn = request.query_params.get("mpn_id")
        if mpn is not None:
            items = [i for i in items if str(i.get("partnerId") or "").lower() == mpn.lower()]
        return _collection(request, items)

    async def _list_orders(self, request: Request) -> Response:
        """ "Get all of a customer's orders" (https://learn.microsoft.com/partner-center/
        developer/get-all-of-a-customer-s-orders): `GET /v1/customers/{id}/orders`, a
        Collection of Order resources; a customer without orders has an empty one."""
        customer = request.path_params["customer_id"]
        if customer.lower() not in self.store.customers():
            return _no_relationship(customer)
        return _collection(request, self.store.list("orders", customer, time.time()) or [])

    async def _list_customers(self, request: Request) -> Response:
        """A page of the partner's customers (see `customers` for the documented paging)."""
        try:
            found = customers.page(
                self.store.customers(),
                dict(request.query_params),
                dict(request.headers),
                self.store.profiles(),
            )
        except ApiError as refusal:
            return error(refusal)
        return JSONResponse(found)

    async def _patch_subscription(self, request: Request) -> Response:
        if_match = request.headers.get("if-match")
        return await self._patch(
            request,
            "subscriptions",
            lambda cur, body, now: semantics.patch_subscription(
                cur,
                body,
                if_match,
                now,
                auto_renew_fixed=self._auto_renew_fixed(cur),
                co_term=lambda: self._ends(request.path_params["customer_id"], cur["id"]),
            ),
        )

    def _ends(self, customer: str, sid: str) -> list[str]:
        """The commitment end dates of the customer's other subscriptions."""
        others = self.store.list("subscriptions", customer, time.time()) or []
        return [
            str(o["commitmentEndDate"])
            for o in others
            if o.get("commitmentEndDate") and o["id"].lower() != sid.lower()
        ]

    def _auto_renew_fixed(self, sub: dict[str, Any]) -> bool:
        share = self.config.fixed_auto_renew_share
        legacy = "etag" in (sub.get("attributes") or {})
        return legacy and resources.rng(sub["id"].lower(), "auto-renew fixed").random() < share

    async def _patch_order(self, request: Request) -> Response:
        customer = request.path_params["customer_id"]

        def subscription(sid: str) -> dict[str, Any] | None:
            return self.store.get("subscriptions", customer, sid, time.time()) if sid else None

        def change(cur: dict, body: Any, now: datetime) -> dict:
            return semantics.patch_order(cur, body, now, subscription)

        return await self._patch(request, "orders", change)

    def _read(self, kind: str, request: Request) -> dict[str, Any] | Response:
        customer, rid = request.path_params["customer_id"], request.path_params["rid"]
        found = self.store.get(kind, customer, rid, time.time())
        if found is None:
            code = (
                semantics.SUBSCRIPTION_NOT_FOUND
                if kind == "subscriptions"
                else semantics.ORDER_NOT_FOUND
            )
            noun = "Subscription" if kind == "subscriptions" else "Order"
            return error(
                ApiError(404, code, f"{noun} {rid} was not found for customer {customer}.")
            )
        return found

    async def _patch(
        self, request: Request, kind: str, change: Callable[[dict, Any, datetime], dict]
    ) -> Response:
        current = self._read(kind, request)
        if isinstance(current, Response):
            return current
        try:
            body = json.loads(await request.body())
            new = change(current, body, datetime.now(UTC))
        except json.JSONDecodeError:
            return error(ApiError(400, semantics.BAD_INPUT, "Invalid input: the body is not JSON."))
        except ApiError as refusal:
            return error(refusal)
        customer = request.path_params["customer_id"]
        if new != current:
            self.counts["applied"] += 1
            self.applied_per_resource[new["id"]] += 1
        draw = random.Random(f"{self.config.random_seed}:{request.headers.get('ms-requestid')}:202")
        # 202 only for subscriptions: the order PATCH documents 200 (reference/update-order).
        accepted = kind == "subscriptions" and draw.random() < self.config.accepted_share
        if new != current and accepted:
            self.counts["accepted"] += 1
            self.store.save(
                kind, customer, new, visible_at=time.time() + self.config.accepted_delay
            )
            # The Location is relative to the versioned base, as Partner Center writes it
            # ("Change the quantity of a subscription"): `/customers/{c}/subscriptions/{s}`.
            return Response(status_code=202, headers={"Location": unversioned(request.url.path)})
        self.store.save(kind, customer, new)
        return JSONResponse(new)


def _no_relationship(customer: str) -> JSONResponse:
    """A customer the partner does not serve: 403 20002 ("Partner Center REST error codes")."""
    return error(
        ApiError(
            403,
            semantics.NO_RELATIONSHIP,
            f"The partner ID {resources.PARTNER_ID} has no commerce relationship with "
            f"the customer ID {customer}.",
        )
    )


def _collection(request: Request, items: list[dict[str, Any]]) -> JSONResponse:
    """A customer's resources as Partner Center lists them: a Collection."""
    return JSONResponse(
        {
            "totalCount": len(items),
            "items": items,
            "links": {"self": resources.link(unversioned(request.url.path))},
            "attributes": {"objectType": "Collection"},
        }
    )
