"""What can go wrong on one line of an ingest, and what stops the whole file.

A fault on one line — Temporal refusing that event (an id or payload over
its limits), the database refusing that row, anything unforeseen — is that
line's rejection, with a reason (:func:`line_fault`); the file goes on.

An outage — Temporal unreachable, overloaded or refusing this client, the
database unreachable or its connection lost — would fail every line after
it the same way, so it stops the file instead (:func:`outage_of`,
:class:`IngestStopped`): the lines done so far stay done, a line half-done
stays ``pending`` in ``ingested_events``, and running the same file again
finishes it.  How long a call waits for an unreachable Temporal before it
counts as an outage is ``COLLECTIONS_TEMPORAL_TIMEOUT`` (support/settings.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Literal

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.service import RPCError, RPCStatusCode

from db import limits

if TYPE_CHECKING:
    from intake.ingest import IngestReport

Service = Literal["temporal", "database"]

# Temporal's answers that are about the service or this client, not about one event.
TEMPORAL_OUTAGES = frozenset({
    RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.CANCELLED,
})


def outage_of(e: BaseException) -> Service | None:
    """The service that is down, if ``e`` is an outage rather than a fault of one line."""
    if isinstance(e, RPCError):
        return "temporal" if e.status in TEMPORAL_OUTAGES else None
    if isinstance(e, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return "database"
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return "database"
    if isinstance(e, OSError | asyncio.TimeoutError):  # a driver's connect: refused, unreachable, timed out
        return "database"
    return None


def gist(e: BaseException) -> str:
    """The first line of what went wrong (a driver's own message, not SQLAlchemy's wrapping)."""
    if isinstance(e, RPCError):
        return e.message.splitlines()[0] if e.message else e.status.name.lower() if e.status else "no answer"
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    return text.splitlines()[0] if text else type(orig if orig is not None else e).__name__


def line_fault(e: BaseException, what: str = "it") -> str:
    """The rejection reason for a fault on one line (never an outage)."""
    if isinstance(e, RPCError):
        return f"Temporal refused {what}: {gist(e)}"
    if isinstance(e, DBAPIError):
        return f"the database refused {what}: {gist(e)}"
    return f"could not be handled: {type(e).__name__}: {gist(e)}"


class IngestStopped(Exception):
    """The file stopped at an outage: ``report`` holds the counts so far
    (``report.stopped_at`` the first line not done), ``service`` which one
    is down and ``cause`` its error."""

    def __init__(self, report: IngestReport, service: Service, cause: BaseException) -> None:
        super().__init__(f"{service} unreachable: {gist(cause)} (stopped at line {report.stopped_at})")
        self.report, self.service, self.cause = report, service, cause


def event_id_of(line: str) -> str | None:
    """The event id of a line, if it has one fit to store with its rejection."""
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError):
        return None
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    fits = isinstance(event_id, str) and 0 < len(event_id) <= limits.EVENT_ID and "\x00" not in event_id
    return event_id if fits else None
