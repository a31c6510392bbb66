"""The command line's options, each declared once: groups that several commands share, the
run settings' options made from `config.Settings`, and the sandbox's from `SandboxConfig`, so
help text and defaults never drift from the library; and how a command shows its output."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import typing
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bulkpatch.settings import USER_SETTINGS

T = TypeVar("T")
Command = Callable[..., T]


class SheetKind(StrEnum):
    """What the rows of a sheet describe."""

    subscriptions = "subscriptions"
    orders = "orders"


def option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def with_options(*groups: list[inspect.Parameter]) -> Callable[[Command], Command]:
    """Give a command the options of `groups`; it receives their values as `options`."""

    def decorate(command: Command) -> Command:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()]
        own = [p for p in own if p.name != "options"]
        extra = [p for group in groups for p in group]
        names = {p.name for p in extra}

        @functools.wraps(command)
        def wrapper(**given: Any) -> T:
            options = {
                k: v.value if isinstance(v, StrEnum) else v for k, v in given.items() if k in names
            }
            return command(**{k: v for k, v in given.items() if k not in names}, options=options)

        wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *extra]}
        return wrapper

    return decorate


VERBOSE = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")]
JSON = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
SHEET = Annotated[Path, typer.Argument(metavar="SHEET", help="CSV or Excel file.")]
SHEET_OPTIONS = [
    option("sheet", Annotated[str | None, typer.Option(help="Worksheet name in a workbook.")]),
    option(
        "kind",
        Annotated[
            SheetKind | None,
            typer.Option(help="What the rows describe (default: from the headers)."),
        ],
    ),
    option(
        "notes",
        Annotated[
            list[str] | None,
            typer.Option(
                "--note",
                metavar="HEADER",
                help="Keep this column as a note (carried, never sent), e.g. a header that "
                "looks like a field name but is not one (repeatable).",
            ),
        ],
    ),
    option(
        "out",
        Annotated[
            Path | None,
            typer.Option(help="Run folder (default: reports/<timestamp>-<sheet name>/)."),
        ],
    ),
]
PROFILE = Annotated[
    str | None,
    typer.Option(help="Profile from bulkpatch.toml (working folder, then ~/.config/bulkpatch/)."),
]
TARGET_OPTIONS = [
    option(
        "target",
        Annotated[
            str | None,
            typer.Option(
                help="sandbox (built in), production, or a URL such as a `bulkpatch sandbox`. "
                "Default: production when signed in (BULKPATCH_TOKEN or a profile), else the "
                "sandbox."
            ),
        ],
    ),
    option("profile", PROFILE),
]
SETTING_OPTIONS = [
    option(
        name,
        Annotated[
            {int: int, str: str}.get(key.type, float) | None,  # type: ignore[call-overload]
            typer.Option(
                f"--{name.replace('_', '-')}",
                help=key.help
                + (f" Default: {key.default}." if key.default is not None else "")
                + f" Environment: {key.env}.",
            ),
        ],
    )
    for name, key in USER_SETTINGS.items()
]


def sandbox_options() -> list[inspect.Parameter]:
    """One option per documented SandboxConfig field, its help and default from there."""
    from bulkpatch.sandbox.config import SandboxConfig

    hints = typing.get_type_hints(SandboxConfig)
    made = []
    for f in dataclasses.fields(SandboxConfig):
        if "help" not in f.metadata:
            continue
        meta = f.metadata
        kind = str | None if "parse" in meta or f.default is None else hints[f.name]
        kind = str if "choices" in meta else kind
        limits = {k: meta[k] for k in ("min", "max") if k in meta}
        info = typer.Option(help=meta["help"], metavar=meta.get("metavar"), **limits)
        made.append(option(f.name, Annotated[kind, info], f.default))
    return made


CHANGE_OPTIONS = [
    option(
        "accept_differences",
        Annotated[
            bool,
            typer.Option(
                "--accept-differences",
                help="Send rows even when Partner Center no longer holds what their expected "
                "columns (Current seats, Offer, ...) say; default: such rows are a conflict.",
            ),
        ],
        False,
    ),
    option(
        "add_again",
        Annotated[
            bool,
            typer.Option(
                "--add-again",
                help="Apply a sheet of seat changes (+2, -1) that a finished run already "
                "applied, adding the seats again.",
            ),
        ],
        False,
    ),
    option(
        "keep_renewal_changes",
        Annotated[
            bool,
            typer.Option(
                "--keep-renewal-changes",
                help="When a seat or billing change removes the changes scheduled for a "
                "subscription's renewal, schedule them again right after.",
            ),
        ],
        False,
    ),
]
OUTPUT_OPTIONS = [
    option("as_json", JSON, False),
    option(
        "quiet",
        Annotated[
            bool,
            typer.Option(
                "--quiet", help="No column mapping, no progress bar (nor progress lines)."
            ),
        ],
        False,
    ),
    option("verbose", VERBOSE, False),
]
RUN_OPTIONS = (TARGET_OPTIONS, SHEET_OPTIONS, CHANGE_OPTIONS, SETTING_OPTIONS, OUTPUT_OPTIONS)
PRECEDENCE_HELP = (
    "Settings come from the command-line flag, then the environment, then the profile, then "
    "the default."
)


@dataclasses.dataclass
class Output:
    """How a command shows itself: JSON or words, quiet or not, tracebacks or not."""

    as_json: bool
    quiet: bool
    verbose: bool

    @classmethod
    def of(cls, options: dict[str, Any]) -> Output:
        """Take the output options out of a command's `options` (the rest go to the library)."""
        return cls(*(options.pop(k) for k in ("as_json", "quiet", "verbose")))

    @property
    def progress(self) -> str | bool:
        """A bar in a terminal; unattended (CI, a log file), a line every 10 seconds."""
        if self.quiet:
            return False
        return "bar" if sys.stderr.isatty() else "lines"

    def show(self, run: Any, words: Callable[[Any], None]) -> None:
        """The run's summary as JSON, or in words."""
        typer.echo(json.dumps(run.summary())) if self.as_json else words(run)


# --- ui --------------------------------------------------------------------------------------

UI_HOST = Annotated[
    str,
    typer.Option(help="Address to listen on; anything but 127.0.0.1 opens the page to others."),
]
UI_PORT = Annotated[int, typer.Option(help="Port (0, the default, picks a free one).")]
NO_BROWSER = Annotated[
    bool, typer.Option("--no-browser", help="Print the address; do not open a browser.")
]
REPORTS = Annotated[Path, typer.Option("--reports", help="Folder the page's runs are written to.")]
