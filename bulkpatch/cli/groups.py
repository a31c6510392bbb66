"""The CLI's command groups: `bulkpatch auth` (sign in, who, sign out) and `bulkpatch sandbox`
(serve the sandbox over HTTP, or reset the built-in one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from bulkpatch.cli.options import JSON, PROFILE, VERBOSE, sandbox_options, with_options
from bulkpatch.cli.run import run_job

# --- auth ----------------------------------------------------------------------------------------

auth_app = typer.Typer(
    help="Sign in to Partner Center, see who is signed in, sign out.", no_args_is_help=True
)


def _provider(profile: str | None):
    from bulkpatch.network.auth import Credentials, TokenProvider
    from bulkpatch.settings import load_profile

    return TokenProvider(Credentials.of(load_profile(profile)))


SANDBOX_AS = Annotated[
    str | None,
    typer.Option(
        "--sandbox-as",
        metavar="NAME",
        help="Sign in to the sandboxes (built-in and `bulkpatch sandbox`) as this person, for "
        "demos and tests; a sandbox sign-in is nothing real (README, Controls).",
    ),
]


@auth_app.command("login")
def auth_login(
    profile: PROFILE = None, sandbox_as: SANDBOX_AS = None, verbose: VERBOSE = False
) -> None:
    """Sign in with the profile's method (device code shows a code to enter in a browser)."""
    from bulkpatch.network.auth import in_words, sandbox_login

    if sandbox_as is not None:
        status = run_job(verbose, lambda: sandbox_login(sandbox_as))
    else:
        status = run_job(
            verbose, lambda: _provider(profile).login(lambda message: typer.echo(message, err=True))
        )
    typer.echo(in_words(status))


@auth_app.command("status")
def auth_status(profile: PROFILE = None, as_json: JSON = False, verbose: VERBOSE = False) -> None:
    """Who is signed in, to which tenant, and until when (never the token); and who the
    sandboxes see, when no Partner Center sign-in is set."""
    from bulkpatch.network.auth import in_words, sandbox_status

    status = run_job(verbose, lambda: _provider(profile).status(), as_json)
    sandbox = sandbox_status() if status["method"] == "token" and not status["set"] else None
    if sandbox and sandbox["signed_in"]:
        status["sandbox"] = sandbox
    if as_json:
        typer.echo(json.dumps(status))
    else:
        typer.echo(in_words(status))
        if "sandbox" in status:
            typer.echo(in_words(sandbox))
    raise typer.Exit(0 if status["signed_in"] or "sandbox" in status else 1)


@auth_app.command("logout")
def auth_logout(profile: PROFILE = None, verbose: VERBOSE = False) -> None:
    """Forget the cached tokens of the profile, and the sandbox sign-in."""
    from bulkpatch.network.auth import sandbox_logout

    removed = run_job(verbose, lambda: _provider(profile).logout())
    removed = sandbox_logout() or removed
    typer.echo("Signed out: cached tokens removed." if removed else "No cached tokens to remove.")


# --- sandbox -------------------------------------------------------------------------------------


sandbox_app = typer.Typer(
    help="Serve the Partner Center sandbox over HTTP, or reset the built-in one "
    "(`bulkpatch sandbox reset`)."
)


@sandbox_app.callback(invoke_without_command=True)
@with_options(sandbox_options())
def sandbox(
    ctx: typer.Context,
    options: dict[str, Any],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8765,
    db: Annotated[Path, typer.Option(help="SQLite file holding the state across restarts.")] = Path(
        "bulkpatch-sandbox.db"
    ),
    seed_from: Annotated[
        list[Path] | None,
        typer.Option("--seed-from", help="Seed every id this sheet names (repeatable)."),
    ] = None,
    seed: Annotated[
        str | None,
        typer.Option(
            "--seed", metavar="N,M", help="Seed N synthetic customers with M subscriptions each."
        ),
    ] = None,
    verbose: VERBOSE = False,
) -> None:
    """Serve the built-in Partner Center sandbox over HTTP (on 127.0.0.1 by default)."""
    if ctx.invoked_subcommand is not None:
        return
    from bulkpatch.sandbox.serve import configure, serve

    def job() -> None:
        config, reseed = configure(options, db, seed_from or [], seed)
        serve(config, host, port, reseed=reseed, announce=_serving(db))

    run_job(verbose, job)


@sandbox_app.command("reset")
def sandbox_reset(as_json: JSON = False, verbose: VERBOSE = False) -> None:
    """Forget the built-in sandbox's state: the next run seeds it afresh from its sheet."""
    from bulkpatch.commands.apply import reset_sandbox

    done = run_job(verbose, reset_sandbox, as_json)
    if as_json:
        typer.echo(json.dumps(done))
    elif done["existed"]:
        typer.echo(
            f"Reset the built-in sandbox: removed {done['state']}; the next run seeds it "
            "afresh from its sheet."
        )
    else:
        typer.echo(
            f"The built-in sandbox holds no state yet ({done['state']}); the next run seeds "
            "it from its sheet."
        )


def _serving(db: Path) -> Callable[[str], None]:
    def announce(url: str) -> None:
        typer.echo(
            f"Sandbox serving on {url} (state in {db}). Nothing here reaches Partner Center."
        )
        typer.echo(f"Use it with: bulkpatch apply SHEET --target {url}   (Ctrl-C stops it)")

    return announce
