"""Which catalog field a sheet's header names, and which one a header that names none was meant
to be (a near miss): load refuses a near miss rather than carry a typo as a note.
"""

from __future__ import annotations

import re

from bulkpatch.catalog import COLUMNS, normalize_header, spellings
from bulkpatch.field import Kind

_AS_OFFER = (
    "it may be an offer's name or its id. To have Partner Center's offer checked, call the "
    "column 'Offer name' or 'Offer ID'"
)
# Everyday words that could name several fields: never settable, read as notes, and the mapping
# says how to write what the user may have meant.
AMBIGUOUS: dict[str, str] = {
    "name": "it may be a customer's or a product's name. To rename, call the column "
    "'Friendly name'",
    "offer": _AS_OFFER,
    "product": _AS_OFFER,
    "enddate": "it may be the term's end or a renewal date. Call the column 'Commitment end "
    "date' (checked against Partner Center) or 'Next term end date' (a renewal instruction)",
}


def near_miss(kind: Kind, header: str) -> str | None:
    """The known spelling an unknown `header` was probably meant to be, or None.

    A near miss is the same letters with other separators (`Auto/renew`), the same words in
    another order, or one typo (two in a long header): `Quantitiy`, `Auto renw`. A header
    whose words are a part of a known spelling (`Customer` for `Customer ID`) is another word,
    not a typo.
    """
    words = _words(header)
    squashed = "".join(words)
    if len(squashed) < 4 or normalize_header(header) in AMBIGUOUS:
        return None
    # (typos, words more or fewer, written in another style, spelling): the smallest wins
    best: tuple[int, int, bool, str] | None = None
    for f in COLUMNS[kind]:
        for spelling in spellings(f):
            known = _words(spelling)
            if squashed == "".join(known) or sorted(words) == sorted(known):
                return _display(spelling)
            if set(words) < set(known):
                continue
            limit = 1 if min(len(squashed), len("".join(known))) < 10 else 2
            distance = _distance(squashed, "".join(known), limit)
            style = (" " in spelling) != (" " in header.strip())
            rank = (distance, abs(len(known) - len(words)), style, _display(spelling))
            if distance <= limit and (best is None or rank[:3] < best[:3]):
                best = rank
    return best[3] if best else None


def _words(text: str) -> list[str]:
    """`autoRenewEnabled`, `Auto renew enabled` and `auto_renew-enabled` are the same words."""
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", text)]


def _display(spelling: str) -> str:
    """A spelling as a header would show it: `auto renew` -> `Auto renew`."""
    return spelling[:1].upper() + spelling[1:] if spelling.islower() else spelling


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance (insert, delete, replace, swap two neighbours); anything above `limit`
    comes back as `limit + 1`, early."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]
