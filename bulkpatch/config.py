"""Profiles: a team keeps its settings in one TOML file, `bulkpatch.toml`.

The file is looked for in the working folder, then in the user's config folder. Each
`[profiles.NAME]` table holds a target, sign-in details (the *name* of the environment variable
holding a secret, never the secret), rate limits and their scope, concurrency and the
application name. Precedence for every setting: command-line flag, then environment variable,
then profile, then default.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkpatch.auth import Credentials
from bulkpatch.errors import InputError

FILE = "bulkpatch.toml"
KEYS: dict[str, type | tuple[type, ...]] = {
    "target": str,
    "api_url": str,
    "auth": str,
    "tenant_id": str,
    "client_id": str,
    "secret_env": str,
    "certificate": str,
    "certificate_thumbprint": str,
    "refresh_token_env": str,
    "authority": str,
    "rate": (int, float),
    "order_rate": (int, float),
    "limit_scope": str,
    "concurrency": int,
    "application": str,
}
CHOICES = {
    "auth": ("token", "client_secret", "certificate", "device_code", "refresh_token"),
    "limit_scope": ("partner", "customer"),
}
ENVIRONMENT = {
    "target": "BULKPATCH_TARGET",
    "rate": "BULKPATCH_RATE",
    "order_rate": "BULKPATCH_ORDER_RATE",
    "limit_scope": "BULKPATCH_LIMIT_SCOPE",
    "concurrency": "BULKPATCH_CONCURRENCY",
    "api_url": "BULKPATCH_API_URL",
    "authority": "BULKPATCH_AUTHORITY",
}
DEFAULTS: dict[str, Any] = {
    "rate": 500.0,
    "limit_scope": "partner",
    "concurrency": 8,
    "application": "bulkpatch",
    "auth": "token",
    "authority": "https://login.microsoftonline.com",
}
SECRETS = {"secret", "client_secret", "password", "token", "access_token", "refresh_token"}


@dataclass
class Profile:
    """The settings a run uses, each from the first place that gives it."""

    name: str | None = None
    source: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, flag: Any = None) -> Any:
        """Flag, then environment, then profile, then default."""
        if flag is not None:
            return flag
        variable = ENVIRONMENT.get(key)
        if variable and os.environ.get(variable, "").strip():
            return _coerce(key, os.environ[variable].strip(), f"environment variable {variable}")
        return self.values.get(key, DEFAULTS.get(key))

    def credentials(self) -> Credentials:
        return Credentials(
            method=self.get("auth"),
            tenant_id=self.get("tenant_id") or "",
            client_id=self.get("client_id") or "",
            secret_env=self.get("secret_env") or "",
            certificate=self.get("certificate") or "",
            certificate_thumbprint=self.get("certificate_thumbprint") or "",
            refresh_token_env=self.get("refresh_token_env") or "",
            authority=self.get("authority"),
        )


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
    return Profile(chosen, path, dict(values))


def _coerce(key: str, value: Any, where: str) -> Any:
    expected = KEYS[key]
    if isinstance(value, str) and expected in ((int, float), int):
        try:
            value = float(value) if expected == (int, float) else int(value)
        except ValueError:
            raise InputError(f"{where}: {key} must be a number, not {value!r}.") from None
    if not isinstance(value, expected) or isinstance(value, bool):
        raise InputError(f"{where}: {key} must be a {_name(expected)}, not {value!r}.")
    if key in CHOICES and value not in CHOICES[key]:
        raise InputError(f"{where}: {key} must be one of {', '.join(CHOICES[key])}, not {value!r}.")
    if key in ("rate", "order_rate", "concurrency") and value <= 0:
        raise InputError(f"{where}: {key} must be positive, not {value!r}.")
    return value


def _name(expected: type | tuple[type, ...]) -> str:
    return "number" if isinstance(expected, tuple) else {str: "text", int: "whole number"}[expected]


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=|\s*\[{re.escape(key)}\]", line):
            return number
    return 1
