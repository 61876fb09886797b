"""Exit codes, and what an operator reads instead of a traceback.

Every command's coroutine runs through :func:`guarded`: a failure the
operator can act on (a service down, no schema yet, encrypted payloads
without the keys, a bad argument found late) becomes one line on stderr and
an exit code. Anything unforeseen is one line too; ``LOG_LEVEL=DEBUG`` adds
the traceback for whoever files the bug.
"""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from collections.abc import Awaitable

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from temporalio.service import RPCError, RPCStatusCode

from cli import render
from db.session import Database
from support.codec import PayloadKeyError
from support.settings import Settings, SettingsError

OK, FAILED, USAGE = 0, 1, 2
INTERRUPTED = 130


class UsageError(Exception):
    """A bad argument found by a command (not by the parser): exit 2."""


class Failed(Exception):
    """A command that could not do its job, with the reason: exit 1."""


def where(url: str) -> str:
    """A database URL for people: the SQLite file, or the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    return parsed.render_as_string(hide_password=True)


def _first_line(e: BaseException) -> str:
    """The gist of a driver's or Core's error: ``Connection refused`` rather than a transport dump."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e)
    quoted = re.search(r'message: "([^"]+)"', text)  # tonic's transport errors
    return quoted.group(1) if quoted else (text.splitlines()[0] if text else type(e).__name__)


UNOPENABLE = (DBAPIError, OperationalError, OSError, asyncio.TimeoutError)


def cannot_open(url: str, e: BaseException) -> Failed:
    """The one line for a database that cannot be opened or reached."""
    hint = " (does its directory exist? `collections migrate` creates the file)" if url.startswith("sqlite") else ""
    return Failed(f"cannot open the database ({where(url)}): {_first_line(e)}{hint}")


async def check_database(db: Database) -> None:
    """Open the database and ask it one question: an unopenable file or an
    unreachable server is one line (:class:`Failed`) before a command starts."""
    try:
        async with db.sessions() as s:
            await s.execute(text("SELECT 1"))
    except UNOPENABLE as e:
        raise cannot_open(db.url, e) from None


def _explain(e: BaseException, settings: Settings | None) -> tuple[str, int]:
    """(one line, exit code) for a failure; the catch-all says what it was."""
    if isinstance(e, UsageError | SettingsError | PayloadKeyError):
        return f"error: {e}", USAGE
    if isinstance(e, Failed):
        return str(e), FAILED
    if isinstance(e, KeyError) and "binary/encrypted" in str(e):
        return ("this case's payloads are encrypted: set COLLECTIONS_PAYLOAD_KEYS to the keys the worker uses",
                FAILED)
    if isinstance(e, DBAPIError | OperationalError):
        text = str(e.orig if getattr(e, "orig", None) is not None else e)
        if "no such table" in text or "does not exist" in text:
            return "the database has no schema yet: run `collections migrate` first", FAILED
        place = f" ({where(settings.database_url)})" if settings is not None else ""
        return f"database error{place}: {text.splitlines()[0] if text else type(e).__name__}", FAILED
    address = settings.temporal_address if settings is not None else "the configured address"
    if isinstance(e, RuntimeError) and "connect" in str(e).lower():
        return (f"cannot reach Temporal at {address}: {_first_line(e)} "
                "(is the server running? `make demo` starts one)", FAILED)
    if isinstance(e, RPCError) and e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return f"cannot reach Temporal at {address}: {e.message}", FAILED
    if isinstance(e, RPCError):
        return f"Temporal at {address} refused: {e.message}", FAILED
    if isinstance(e, OSError):
        return f"cannot reach a service: {e}", FAILED
    first = str(e).splitlines()[0] if str(e) else ""
    return f"unexpected {type(e).__name__}: {first} (LOG_LEVEL=DEBUG shows the traceback)", FAILED


def report(e: BaseException, settings: Settings | None, prog: str = "collections") -> int:
    """Print one line for ``e`` on stderr; return its exit code."""
    message, code = _explain(e, settings)
    if message.startswith("error: "):
        message = f"{prog}: {message}"
    render.error(message)
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        render.stderr().print("".join(traceback.format_exception(e)), markup=False, highlight=False)
    return code


async def guarded(work: Awaitable[int | None], settings: Settings | None, prog: str = "collections") -> int:
    """Await a command; its exit code, or one line and a code for a failure."""
    try:
        code = await work
    except KeyboardInterrupt:
        render.error("interrupted")
        return INTERRUPTED
    except Exception as e:  # the operator never sees a traceback
        return report(e, settings, prog)
    return OK if code is None else code
