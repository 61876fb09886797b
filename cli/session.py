"""What every command shares: the settings (read once, in the app's callback),
the Temporal client and the database, and the way a command's coroutine runs.

Commands are plain functions that return :func:`launch` of their coroutine:
inside :func:`cli.main.main` (an event loop is running) the coroutine is
handed back and awaited there; called any other way (``app()``, Typer's
test runner) it runs here on a loop of its own and exits with its code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import typer
from temporalio.client import Client

from cli import errors
from db.session import Database
from support.logs import configure_logging
from support.settings import Settings, load_settings
from support.temporal import connect


@dataclass
class Session:
    help_only: bool = False  # `… --help`: nothing to load
    _settings: Settings | None = None
    _client: Client | None = field(default=None, repr=False)

    def load(self) -> Settings:
        """Read the environment (once). A bad value raises SettingsError (one line)."""
        if self._settings is None:
            self._settings = load_settings()
            configure_logging(self._settings.log_level or "ERROR")  # the CLI reports outcomes itself
        return self._settings

    @property
    def settings(self) -> Settings:
        return self.load()

    @property
    def loaded(self) -> Settings | None:
        """The settings if they have been read (error messages name the Temporal address)."""
        return self._settings

    async def client(self) -> Client:
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client

    @asynccontextmanager
    async def database(self) -> AsyncIterator[Database]:
        """The database, opened and answering (else :class:`~cli.errors.Failed` with one line)."""
        async with Database(self.settings.database_url) as db:
            await errors.check_database(db)
            yield db


def session_of(ctx: typer.Context) -> Session:
    return ctx.find_object(Session) or ctx.ensure_object(Session)


def prog_of(ctx: typer.Context) -> str:
    return ctx.command_path or "collections"


def launch(ctx: typer.Context, work: Coroutine[Any, Any, int | None]) -> Any:
    """Hand a command's coroutine to the running loop, or run it here (see module doc)."""
    session = session_of(ctx)
    guarded = errors.guarded(work, session.loaded, prog_of(ctx))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise typer.Exit(asyncio.run(guarded)) from None
    return guarded
