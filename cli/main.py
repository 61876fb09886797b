"""The operator command line: ``collections …`` (console script) and
``python starter.py …`` are this one app.

Settings are read once, in the app's callback; a bad value is one line and
exit 2. Exit codes: 0 done (or a duplicate: nothing changed), 1 rejected or
failed, 2 bad arguments (also an unknown account for status/show).
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import os
import sys
from pathlib import Path

import typer
from typer import rich_utils
from typer._click import exceptions as click_errors
from typer.main import get_command

from cli import admin, cases, desk, errors, events, ingest, lab, operators, render, screen, tasks
from cli import audit as audit_cli  # collections audit (SPEC §9)
from cli.session import Session
from support.settings import SettingsError

EPILOG = ("Settings come from the environment (`collections settings` shows them).  Exit codes: 0 done or "
          "duplicate, 1 rejected or failed, 2 bad arguments.  Help on one command: collections COMMAND --help")

app = typer.Typer(
    name="collections", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Operate collections cases: ingest events, emit one event of each type, inspect cases.", epilog=EPILOG,
)
for part in (ingest.app, cases.app, events.app, admin.app, screen.app, operators.app, tasks.app, desk.app):
    app.add_typer(part)
app.add_typer(lab.app, rich_help_panel=lab.PANEL)  # collections lab population|run|train
app.add_typer(audit_cli.app)  # collections audit [--database URL]


@app.callback()
def start(ctx: typer.Context) -> None:
    """Read the settings once for every command (not for --help)."""
    session = ctx.ensure_object(Session)
    if session.help_only:
        return
    try:
        session.load()
    except SettingsError as e:
        render.error(f"{ctx.command_path}: error: {e}")
        raise typer.Exit(errors.USAGE) from None


def prog_name() -> str:
    return "starter.py" if Path(sys.argv[0]).name == "starter.py" else "collections"


def _usage_error(e: click_errors.ClickException) -> int:
    """A parser error: usage, one line saying what is wrong (with a suggestion), where help is."""
    if isinstance(e, click_errors.NoArgsIsHelpError):
        return e.exit_code  # the help is printed already
    message = e.format_message()
    if isinstance(e, click_errors.NoSuchOption) and e.possibilities:
        best = difflib.get_close_matches(e.option_name, list(e.possibilities), n=1, cutoff=0)  # the closest only
        message = f"{e.message}. Did you mean {best[0]}?"
    ctx = getattr(e, "ctx", None)
    console = render.stderr()
    if ctx is not None:
        console.print(ctx.get_usage())
        console.print(f"Try '{ctx.command_path} --help' for help.")
    render.error(f"Error: {message}")
    return e.exit_code


async def main(argv: list[str] | None = None) -> int:
    """Run one command line; its exit code. (Awaitable: tests and embedders run it on their loop.)"""
    if render.no_color():
        rich_utils.COLOR_SYSTEM = None  # help pages too
    args = list(sys.argv[1:] if argv is None else argv)
    session = Session(help_only="--help" in args)
    try:
        result = get_command(app).main(args=args, prog_name=prog_name(), standalone_mode=False, obj=session)
    except click_errors.ClickException as e:
        return _usage_error(e)
    except typer.Abort:
        render.error("aborted")
        return errors.FAILED
    if inspect.isawaitable(result):
        return await result
    return result if isinstance(result, int) else errors.OK


def run(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(main(argv))
    except KeyboardInterrupt:
        render.error("interrupted")
        return errors.INTERRUPTED


def exit_now(code: int) -> None:
    """Exit without interpreter teardown: the Temporal client's Core threads can
    abort a finalizing interpreter (temporalio/sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def console() -> None:
    """The ``collections`` console script."""
    exit_now(run())
