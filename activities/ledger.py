"""The simulated call adapters' ledger of the calls they placed (issue 11).

A real telephony vendor knows which calls it placed: before a retried
attempt dials again, the contact activity asks it (``placed(key=...)``) and
takes the first call's outcome instead of ringing the phone a second time.
The simulated voice robot and call centre answer the same question from
this ledger.  Each worker process gets the :class:`DatabaseLedger` of its
database (``simulated_dials``): a worker killed mid-call (SIGKILL) cannot
lose it, and the next worker, in another process, reads it.  The
:class:`MemoryLedger` serves adapters used on their own (unit tests).

Every request to dial is counted (``dial_requests``): a key asked twice is a
retry that would have rung again at a vendor that does not de-duplicate.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from activities.common import activity_now
from db.models import SimulatedDial
from db.session import Database

if TYPE_CHECKING:
    from activities.adapters import CallOutcome


class DialLedger(Protocol):
    async def dial(self, key: str, channel: str, outcome: CallOutcome) -> CallOutcome:
        """Place the call ``key`` with ``outcome``, once: asked again, count the
        request and answer the first call's outcome (no second call)."""
        ...

    async def placed(self, key: str) -> CallOutcome | None:
        """The outcome of the call placed with ``key``; None: none was placed."""
        ...


class MemoryLedger:
    """The ledger of one process (adapters used on their own)."""

    def __init__(self) -> None:
        self.calls: dict[str, CallOutcome] = {}
        self.requests: dict[str, int] = {}

    async def dial(self, key: str, channel: str, outcome: CallOutcome) -> CallOutcome:
        self.requests[key] = self.requests.get(key, 0) + 1
        return self.calls.setdefault(key, outcome)

    async def placed(self, key: str) -> CallOutcome | None:
        return self.calls.get(key)


_OUTCOME = select(SimulatedDial.outcome).where(SimulatedDial.key == bindparam("k"))
_ASKED_AGAIN = (update(SimulatedDial).where(SimulatedDial.key == bindparam("k"))
                .values(dial_requests=SimulatedDial.dial_requests + 1))


class DatabaseLedger:
    """The ledger in the ``simulated_dials`` table: one row per placed call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def dial(self, key: str, channel: str, outcome: CallOutcome) -> CallOutcome:
        now = activity_now()

        def dial(s: Session) -> Any:
            placed = s.execute(self.db.insert_ignoring(SimulatedDial.__table__), dict(
                key=key, channel=channel, dial_requests=1, outcome=dataclasses.asdict(outcome), dialled_at=now))
            if placed.rowcount:
                return None
            s.execute(_ASKED_AGAIN, {"k": key})
            return s.scalar(_OUTCOME, {"k": key})
        first = await self.db.run(dial)
        return outcome if first is None else _outcome(first)

    async def placed(self, key: str) -> CallOutcome | None:
        first = await self.db.run(lambda s: s.scalar(_OUTCOME, {"k": key}), write=False)
        return _outcome(first) if first is not None else None


def _outcome(values: dict[str, Any]) -> CallOutcome:
    from activities.adapters import CallOutcome

    return CallOutcome(**values)
