"""The sandbox's knobs in one dataclass: its state, auth, rate limits, latency and the shares of
faults. Each field's metadata (`_knob`) is what `bulkpatch sandbox --help` shows and how its
text is read, so the command's options are generated from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Limit = tuple[int, float]  # requests per window of seconds
# The sample sheets: the repository's `samples/`, installed as the package `bulkpatch.samples`
# (pyproject.toml), so an editable install finds the checkout's and a wheel carries its own.
# pip installs a wheel as files, so they are a folder on disk either way.
SAMPLES = Path(str(resources.files("bulkpatch.samples")))


@dataclass
class SeedSpec:
    """Where the sandbox's first state comes from: sheets, a synthetic size, or both."""

    sheets: list[Path] = field(default_factory=list)
    synthetic: tuple[int, int] | None = None

    @classmethod
    def samples(cls) -> SeedSpec:
        """The default: everything the sample sheets (`samples/`) name."""
        found = sorted(p for p in SAMPLES.glob("*") if p.suffix in (".csv", ".xlsx"))
        return cls(sheets=found)


def _knob(default: Any, help: str, **cli: Any) -> Any:
    """A SandboxConfig field with the words `bulkpatch sandbox --help` shows for it."""
    return field(default=default, metadata={"help": help, **cli})


def parse_limit(text: str) -> Limit:
    """`500/60` is 500 calls per 60 seconds; a bare `500` is per minute."""
    calls, _, seconds = text.partition("/")
    try:
        limit = (int(calls), float(seconds or 60))
    except ValueError:
        raise ValueError(f"{text!r} is not CALLS/SECONDS, e.g. 500/60") from None
    if limit[0] < 1 or limit[1] <= 0:
        raise ValueError(f"{text!r}: calls and seconds must be positive")
    return limit


SHARE = {"min": 0.0, "max": 1.0}


@dataclass
class SandboxConfig:
    """Every knob of the sandbox; faults are shares of calls, drawn from `random_seed`."""

    db: str = ":memory:"  # the SQLite file holding the state (`bulkpatch sandbox --db`)
    seed: SeedSpec = field(default_factory=SeedSpec.samples)
    token: str | None = _knob(None, "Accept only this bearer token (default: any).")
    rate_limit: Limit | None = _knob(  # noqa: RUF009 (a dataclass field with metadata)
        None,
        "Limit on subscription calls (GET, list, PATCH), e.g. 500/60.",
        parse=parse_limit,
        metavar="CALLS/SECONDS",
    )
    order_rate_limit: Limit | None = _knob(  # noqa: RUF009 (as above)
        None,
        "Limit on order calls (default: as --rate-limit).",
        parse=parse_limit,
        metavar="CALLS/SECONDS",
    )
    limit_scope: Literal["partner", "customer"] = _knob(
        "partner", "Count the limit per partner or per customer.", choices=("partner", "customer")
    )
    latency_ms: float = _knob(0.0, "Added to every call.", min=0)
    accepted_share: float = _knob(0.0, "Share of PATCHes answered 202 Accepted.", **SHARE)
    accepted_delay: float = _knob(1.0, "Seconds before a 202 change shows.", min=0)
    fail_share: float = _knob(0.0, "Share of calls answered 500/503 (nothing applied).", **SHARE)
    conflict_share: float = _knob(
        0.0, "Share of calls answered 400 800082 (not ready to be updated).", **SHARE
    )
    drop_share: float = _knob(
        0.0, "Share of calls whose connection is cut after the work is done.", **SHARE
    )
    slow_share: float = _knob(0.0, "Share of calls answered only after --slow-seconds.", **SHARE)
    slow_seconds: float = _knob(60.0, "How long a slow call takes.", min=0)
    fixed_auto_renew_share: float = _knob(
        0.0,
        "Share of legacy subscriptions whose auto-renew flag cannot be changed: the PATCH "
        "answers 200 and the flag stays (Partner-Center-PowerShell issue 115).",
        **SHARE,
    )
    random_seed: int = _knob(0, "Seed for every fault drawn.")

    def __post_init__(self) -> None:
        if self.order_rate_limit is None:
            self.order_rate_limit = self.rate_limit
