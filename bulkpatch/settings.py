"""Settings and profiles: every setting and its default stated once, merged in one place.

A team keeps its settings in `bulkpatch.toml` (the working folder, then the user's config
folder), one `[profiles.NAME]` table each: a target, sign-in details (the *name* of the
environment variable holding a secret, never the secret), rate limits and their scope,
concurrency and the application name. Precedence for every setting: command-line flag (or
keyword argument from Python), then environment variable, then profile, then default. The
library merges them (`resolve`), so a script gets exactly what the command line gets.
This module depends on nothing of bulkpatch's but its exception tree.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from bulkpatch.errors import InputError

FILE = "bulkpatch.toml"
SECRETS = {"secret", "client_secret", "password", "token", "access_token", "refresh_token"}


@dataclass(frozen=True)
class Key:
    """One key a profile may hold: its type, and where else it may come from."""

    type: type | tuple[type, ...] = str
    env: str = ""
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    maximum: int | None = None


def _setting(default: Any, env: str, help: str, **kw: Any) -> Any:
    """A user setting of `Settings`: its default, variable and help, all stated here."""
    kind = (int, float) if isinstance(default, float) or default is None else type(default)
    return field(default=default, metadata={"key": Key(kind, env, default, help=help, **kw)})


@dataclass
class Settings:
    """How hard and how carefully to talk to Partner Center.

    The first four are the user's (flag, environment, profile); the rest tune the engine.
    """

    # "API throttling guidance for partners calling Partner Center APIs"
    # (https://learn.microsoft.com/partner-center/developer/api-throttling-guidance): limits vary
    # by scenario, per partner tenant or per partner and customer tenant, with no number given
    # for these calls; 500 is bulkpatch's conservative default, not a documented limit.
    rate: float = _setting(
        500.0,
        "BULKPATCH_RATE",
        "Calls per minute for each of the subscription and order budgets (default 500: a "
        "conservative default, not a documented limit; Partner Center's throttling guidance "
        "gives none for these calls, so match your partner's real limit).",
    )
    order_rate: float | None = _setting(
        None, "BULKPATCH_ORDER_RATE", "Calls per minute for order calls (default: --rate)."
    )
    limit_scope: Literal["partner", "customer"] = _setting(
        "partner",
        "BULKPATCH_LIMIT_SCOPE",
        "Count the rate per partner or per customer.",
        choices=("partner", "customer"),
    )
    concurrency: int = _setting(
        8, "BULKPATCH_CONCURRENCY", "Calls in flight at most (1 to 64).", maximum=64
    )
    attempts: int = 6  # per call, for 5xx, 800082, timeouts and dropped connections
    # A 429 waits its Retry-After (none or unreadable: 1 s, doubling), at most retry_after_max
    # seconds; a call refused more than max_throttles times, or that would wait more than
    # throttle_patience seconds in all, stops the run (exit 3; a resume sends the rest).
    max_throttles: int = 30
    retry_after_max: float = 60.0
    throttle_patience: float = 300.0
    call_timeout: float = 60.0  # seconds for one attempt's whole answer (connect to last byte)
    max_answer_bytes: int = 64 * 1024 * 1024  # a larger answer is not read: it proves nothing
    poll_timeout: float = 60.0
    auth_streak: int = 5  # 401s (or 403s without a code) in a row that stop the run
    unreachable_streak: int = 5  # calls in a row with no answer at all (after their retries)
    backoff: float = 0.5
    headroom: float = 0.98  # pace just under the limit, never at it
    progress_every: float = 10.0  # seconds between progress lines when nobody watches a bar
    keep_renewal_changes: bool = False  # schedule again what a mid-term change removed


USER_SETTINGS: dict[str, Key] = {
    f.name: f.metadata["key"] for f in dataclasses.fields(Settings) if "key" in f.metadata
}
# Every key a profile may hold: where calls go, how to sign in, and the user settings.
KEYS: dict[str, Key] = {
    "target": Key(env="BULKPATCH_TARGET"),
    "api_url": Key(env="BULKPATCH_API_URL"),
    "auth": Key(
        default="token",
        choices=("token", "client_secret", "certificate", "device_code", "refresh_token"),
    ),
    "tenant_id": Key(),
    "client_id": Key(),
    "secret_env": Key(),
    "certificate": Key(),
    "certificate_thumbprint": Key(),
    "refresh_token_env": Key(),
    "authority": Key(env="BULKPATCH_AUTHORITY"),  # default: auth.AUTHORITY
    **USER_SETTINGS,
    "application": Key(default="bulkpatch"),
    # Four eyes (README, "Controls"): `required` makes apply send only a plan a second person
    # approved; with thresholds, only a plan that crosses one needs it.
    "approval": Key(default="off", choices=("off", "required")),
    "approval_cancellations": Key(bool, default=False),  # any cancellation or suspension
    "approval_seat_decrease": Key(bool, default=False),  # any seat removed
    "approval_seats_over": Key(int),  # more than this many seats added and removed in all
    "approval_max_age": Key(default="24h"),  # a plan or approval older than this is not sent
    "audit_log": Key(env="BULKPATCH_AUDIT_LOG"),  # default: one per partner tenant (data_dir)
}
DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Profile:
    """The settings a run uses, each from the first place that gives it."""

    name: str | None = None
    source: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, flag: Any = None) -> Any:
        """Flag, then environment, then profile, then default."""
        if flag is not None:
            return _coerce(key, flag, f"--{key.replace('_', '-')}")
        variable = KEYS[key].env
        if variable and os.environ.get(variable, "").strip():
            return _coerce(key, os.environ[variable].strip(), f"environment variable {variable}")
        return self.values.get(key, KEYS[key].default)

    def settings(self, base: Settings | None = None, **flags: Any) -> Settings:
        """The run's settings: `flags` (None: not given) over the environment, the profile and
        the defaults; a `base` Settings (a script's own tuning) replaces all but the flags."""
        if base is not None:
            return dataclasses.replace(base, **{k: v for k, v in flags.items() if v is not None})
        return Settings(**{key: self.get(key, flags.get(key)) for key in USER_SETTINGS})


def profile(chosen: str | Profile | None = None) -> Profile:
    """A Profile as given, or loaded by name (None: BULKPATCH_PROFILE or `default`)."""
    return chosen if isinstance(chosen, Profile) else load_profile(chosen)


def cache_dir() -> Path:
    """The user's cache folder for bulkpatch (BULKPATCH_CACHE_DIR overrides it)."""
    base = os.environ.get("BULKPATCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "bulkpatch"
    )
    return Path(base)


def data_dir() -> Path:
    """The user's data folder for bulkpatch, where the audit logs live by default
    (BULKPATCH_DATA_DIR overrides it)."""
    base = os.environ.get("BULKPATCH_DATA_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share", "bulkpatch"
    )
    return Path(base)


def duration(text: str, where: str = "approval_max_age") -> timedelta:
    """`24h`, `30m`, `90s`, `2d` as a duration, or one line saying what to write."""
    found = DURATION.match(str(text))
    if not found or int(found.group(1)) <= 0:
        raise InputError(
            f"{where}: {text!r} is not a duration; write a whole number and a unit, such as "
            "24h, 30m, 90s or 2d."
        )
    return timedelta(seconds=int(found.group(1)) * SECONDS[found.group(2)])


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "bulkpatch"


def find_file(cwd: Path | None = None) -> Path | None:
    for folder in (cwd or Path.cwd(), config_dir()):
        if (folder / FILE).is_file():
            return folder / FILE
    return None


def load_profile(name: str | None = None, cwd: Path | None = None) -> Profile:
    """The named profile (or `default` if the file has one); an empty one without a file."""
    name = name or os.environ.get("BULKPATCH_PROFILE") or None
    path = find_file(cwd)
    if path is None:
        if name:
            raise InputError(
                f"--profile {name}: no {FILE} in {cwd or Path.cwd()} or {config_dir()}."
            )
        return Profile()
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: is not valid TOML ({exc}).") from None
    profiles = data.get("profiles", {})
    for key in data:
        if key != "profiles":
            raise InputError(
                f"{path}, line {_line_of(text, key)}: unknown key {key!r}; "
                "settings go under [profiles.NAME]."
            )
    chosen = name or ("default" if "default" in profiles else None)
    if chosen is None:
        return Profile(source=path)
    if chosen not in profiles:
        raise InputError(
            f"{path}: has no profile {chosen!r}; its profiles are "
            f"{', '.join(sorted(profiles)) or '(none)'}."
        )
    values = profiles[chosen]
    for key, value in values.items():
        where = f"{path}, line {_line_of(text, key)}"
        if key in SECRETS:
            raise InputError(
                f"{where}: {key!r} would put a secret in the file; name the "
                "environment variable that holds it instead (secret_env, "
                "refresh_token_env)."
            )
        if key not in KEYS:
            raise InputError(
                f"{where}: unknown key {key!r} in profile {chosen!r}; known keys "
                f"are {', '.join(KEYS)}."
            )
        _coerce(key, value, where)
        if key == "approval_max_age":
            duration(value, f"{where}: approval_max_age")
    return Profile(chosen, path, dict(values))


def _coerce(key: str, value: Any, where: str) -> Any:
    """`value` as the type of `key`, or one line naming where it came from."""
    spec = KEYS[key]
    numeric = spec.type in ((int, float), int)
    if isinstance(value, str) and numeric:
        try:
            value = float(value) if spec.type == (int, float) else int(value)
        except ValueError:
            raise InputError(f"{where}: {key} must be a number, not {value!r}.") from None
    if not isinstance(value, spec.type) or (isinstance(value, bool) and spec.type is not bool):
        raise InputError(f"{where}: {key} must be a {_name(spec.type)}, not {value!r}.")
    if spec.choices and value not in spec.choices:
        raise InputError(f"{where}: {key} must be one of {', '.join(spec.choices)}, not {value!r}.")
    if numeric and value <= 0:
        raise InputError(f"{where}: {key} must be positive, not {value!r}.")
    if spec.maximum is not None and value > spec.maximum:
        raise InputError(f"{where}: {key} must be at most {spec.maximum}, not {value!r}.")
    return value


def _name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return "number"
    return {str: "text", int: "whole number", bool: "true or false"}[expected]


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=|\s*\[{re.escape(key)}\]", line):
            return number
    return 1
