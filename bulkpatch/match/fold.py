"""How names compare: folded (case, spaces, punctuation, accents), the same in Polars and Python.

"Contoso Ltd" and "contoso ltd." fold alike, so both customers are candidates and the row
stops: folding only ever adds candidates, it never guesses between them.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

_MARKS = r"\p{M}"
_NOT_WORD = r"[^\p{L}\p{N}]"


def fold(e: pl.Expr) -> pl.Expr:
    """A name as it is compared: accents gone, lower case, only letters and digits."""
    plain = e.str.normalize("NFKD").str.replace_all(_MARKS, "")
    return plain.str.to_lowercase().str.replace_all(_NOT_WORD, "")


def fold_text(text: str) -> str:
    """`fold` of one string (for the few rows whose message suggests a near miss)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", plain.lower())


def domain_key(e: pl.Expr) -> pl.Expr:
    """A domain as it is compared: lower case, blanks, a leading `@` or `www.` and a trailing
    dot gone (`@Contoso.com.` is `contoso.com`)."""
    d = e.str.strip_chars().str.to_lowercase().str.strip_prefix("@").str.strip_prefix("www.")
    return d.str.strip_suffix(".")


def names_offer_id(value: str, offer_id: str) -> bool:
    """Does `value` name the offer id `offer_id`: the same, or its first parts (`CFQ7TTC0L3PB`
    and `CFQ7TTC0L3PB:0001` name `CFQ7TTC0L3PB:0001:CFQ7TTC0KXG7`)? Case is ignored; matching
    (`subscriptions`) applies the same rule to whole columns."""
    want, held = value.strip().upper(), offer_id.strip().upper()
    return bool(want) and (held == want or held.startswith(want + ":"))
