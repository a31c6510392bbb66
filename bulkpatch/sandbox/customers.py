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

"Customer resources" (https://learn.microsoft.com/partner-center/developer/customer-resources):
the Customer resource carries `customDomains` (a list of strings, the customer's custom
domains) beside `companyProfile`. A customer seeded from a sheet has the company name and
domain the sheet gives it (`Customer`, `Domain` columns), else names drawn from its id; the
sandbox seeded with sheets also holds a look-alike of the first sample customer ("Contoso Ltd."
beside "Contoso Ltd", another domain), so matching by name shows its refusal.
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


# The look-alike the sheet-seeded sandbox holds: a second "Contoso Ltd", with a dot and its own
# domains, and one subscription of an offer the first one has too.
LOOKALIKE_ID = "c0a7c0de-5e1d-4c1d-9a1e-0d0c0b0a0901"
LOOKALIKE = ("Contoso Ltd.", "contosoltdeu.onmicrosoft.com", ("contoso.eu",))
LOOKALIKE_OFFER = "Microsoft 365 E3"


def customer(
    customer_id: str,
    name: str | None = None,
    domain: str | None = None,
    custom: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """A Customer resource as the list carries it: `name` and `domain` as given, else drawn
    from the id; `custom`: its custom domains (`customDomains`)."""
    name = name or company_name(customer_id)
    slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24]
    return {
        "id": customer_id,
        "companyProfile": {
            "tenantId": customer_id,
            "domain": domain or f"{slug}.onmicrosoft.com",
            "companyName": name,
            "attributes": {"objectType": "CustomerCompanyProfile"},
        },
        "customDomains": list(custom),
        "relationshipToPartner": "reseller",
        "attributes": {"objectType": "Customer"},
    }


def page(
    ids: list[str],
    query: dict[str, str],
    headers: dict[str, str],
    profiles: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One page of the customer list, as the query and the continuation token ask;
    `profiles`: the Customer resources seeded with names (by id), the others drawn."""
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
        "items": [(profiles or {}).get(c) or customer(c) for c in chosen],
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
