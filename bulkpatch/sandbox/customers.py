"""The partner's customers as Partner Center lists them: a company profile for each customer the
sandbox holds, and the pages of `GET /v1/customers`.

"Get a list of customers" (https://learn.microsoft.com/partner-center/developer/
get-a-list-of-customers): `GET /v1/customers?size={size}` answers a Collection (`totalCount`,
`items` of Customer resources with `id` and `companyProfile` {`tenantId`, `domain`,
`companyName`}, `links`, `attributes.objectType`). "Manage customer accounts - Get customers"
(https://learn.microsoft.com/rest/api/partner-center/manage-customer-accounts/get-customers):
`size` is the most customers a page holds, a paged answer carries a continuation token, and
`seekOperation` asks for the next page. Partner Center's paged collections ("Get invoice line
items", same API) write it as `links.next`: the `uri` of the next page (`...&seekOperation=Next`)
with the header to send, `MS-ContinuationToken`. The sandbox pages exactly so.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from bulkpatch.errors import ApiError
from bulkpatch.sandbox import resources
from bulkpatch.sandbox.semantics import BAD_INPUT

DEFAULT_SIZE = 200  # not documented: the page size when a request gives none
CONTINUATION = "MS-ContinuationToken"
FIRST = (
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Adatum",
    "Litware",
    "Tailspin",
    "Wingtip",
    "Woodgrove",
)
SECOND = ("Traders", "Health", "Logistics", "Foods", "Legal", "Studios", "Energy", "Retail")
SUFFIX = ("Ltd", "Inc", "GmbH", "LLC", "SA", "BV", "Pty Ltd", "AB")


def company_name(customer_id: str) -> str:
    """A plausible company name, the same for the same id (a hex tag keeps names unique)."""
    r = resources.rng(customer_id.lower(), "company")
    tag = customer_id.replace("-", "")[:4].upper()
    return f"{r.choice(FIRST)} {r.choice(SECOND)} {tag} {r.choice(SUFFIX)}"


def customer(customer_id: str) -> dict[str, Any]:
    """A Customer resource as the list carries it."""
    name = company_name(customer_id)
    domain = "".join(ch for ch in name.lower() if ch.isalnum())[:24] + ".onmicrosoft.com"
    return {
        "id": customer_id,
        "companyProfile": {
            "tenantId": customer_id,
            "domain": domain,
            "companyName": name,
            "attributes": {"objectType": "CustomerCompanyProfile"},
        },
        "relationshipToPartner": "reseller",
        "attributes": {"objectType": "Customer"},
    }


def page(ids: list[str], query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
    """One page of the customer list, as the query and the continuation token ask."""
    size = _size(query.get("size"))
    start = 0
    if query.get("seekOperation", "").lower() == "next":
        start = _offset(headers.get(CONTINUATION.lower()))
    chosen = ids[start : start + size]
    links: dict[str, Any] = {"self": resources.link(f"/customers?size={size}")}
    if start + size < len(ids):
        links["next"] = {
            "uri": f"/customers?size={size}&seekOperation=Next",
            "method": "GET",
            "headers": [{"key": CONTINUATION, "value": _token(start + size)}],
        }
    return {
        "totalCount": len(chosen),
        "items": [customer(c) for c in chosen],
        "links": links,
        "attributes": {"objectType": "Collection"},
    }


def _size(text: str | None) -> int:
    if text is None:
        return DEFAULT_SIZE
    if not text.isdigit() or int(text) < 1:
        raise ApiError(400, BAD_INPUT, f"Invalid input: size must be a positive number: {text!r}.")
    return int(text)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"customers:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    """Where the page a continuation token names starts; a missing or forged token is 400."""
    try:
        kind, _, offset = base64.urlsafe_b64decode(token or "").decode().partition(":")
        if kind == "customers" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(
        400, BAD_INPUT, f"Invalid input: seekOperation=Next needs the {CONTINUATION} it was given."
    )
