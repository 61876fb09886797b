"""Exit codes, and what an operator reads instead of a traceback.

Every command's coroutine runs through :func:`guarded`: a failure the
operator can act on (a service down, no schema yet, encrypted payloads
without the keys, a bad argument found late) becomes one line on stderr and
an exit code. Anything unforeseen is one line too; ``LOG_LEVEL=DEBUG`` adds
the traceback for whoever files the bug.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable

from sqlalchemy.exc import DBAPIError, OperationalError
from temporalio.service import RPCError

from cli import render
from support.codec import PayloadKeyError
from support.settings import Settings, SettingsError

OK, FAILED, USAGE = 0, 1, 2
INTERRUPTED = 130


class UsageError(Exception):
    """A bad argument found by a command (not by the parser): exit 2."""


class Failed(Exception):
    """A command that could not do its job, with the reason: exit 1."""


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
        return f"database error: {text.splitlines()[0] if text else type(e).__name__}", FAILED
    address = settings.temporal_address if settings is not None else "the configured address"
    if isinstance(e, RuntimeError) and "connect" in str(e).lower():
        return (f"cannot reach Temporal at {address}: {str(e).splitlines()[0]} "
                "(is the server running? `make demo` starts one)", FAILED)
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
