"""The intake's own rows: each event's ``ingested_events`` row (pending until
it is dispatched, then what became of it), a default's ``debtors`` row, and
the ``rejected_events`` table.

Lines ingested at the same time share these writes (:mod:`intake.group_commit`):
:func:`write` takes every line's :class:`Record` and :class:`Mark` queued for
one transaction, and :func:`look_up` every line's read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Debtor, IngestedEvent, RejectedEvent
from db.session import Database
from intake.events import AccountDefaulted, EventRejected, storable


@dataclass
class Record:
    """An event's pending ``ingested_events`` row, and its debtor's row (a default's)."""

    row: dict[str, Any]
    debtor: dict[str, Any] | None = None


@dataclass
class Mark:
    """What became of a dispatched event, for its row (while still pending)."""

    event_id: str
    status: str
    detail: str | None


async def upsert_debtor(db: Database, ev: AccountDefaulted) -> None:
    """Write the debtor's row before the case starts: the latest event's
    contact details win (several accounts of one debtor share the row)."""
    values = Debtor.values_of(ev.debtor, datetime.now(timezone.utc))
    async with db.transaction() as s:
        await s.execute(db.insert(Debtor).values(**values).on_conflict_do_update(
            index_elements=[Debtor.debtor_id], set_={k: v for k, v in values.items() if k != "debtor_id"}))


async def look_up(s: AsyncSession, lookups: Sequence[tuple[str, str | None]]) -> list[tuple[Any, str | None]]:
    """For each (event id, account): the event's row if it was seen
    before, and the event that opened the account's case (its default) if any."""
    seen = {row.event_id: row for row in (await s.execute(
        select(IngestedEvent.event_id, IngestedEvent.type, IngestedEvent.account_id, IngestedEvent.payload,
               IngestedEvent.status, IngestedEvent.detail)
        .where(IngestedEvent.event_id.in_(sorted({event_id for event_id, _ in lookups}))))).all()}
    accounts = sorted({account for _, account in lookups if account is not None})
    opened: dict[str, str] = {}
    if accounts:
        for account, event_id in (await s.execute(
                select(IngestedEvent.account_id, IngestedEvent.event_id).where(
                    IngestedEvent.account_id.in_(accounts), IngestedEvent.type == "account.defaulted"))).all():
            opened.setdefault(account, event_id)
    return [(seen.get(event_id), opened.get(account) if account is not None else None)
            for event_id, account in lookups]


async def write(db: Database, s: AsyncSession, items: Sequence[Record | Mark]) -> list[bool | None]:
    """The lines' writes in one transaction: new events' rows (whether each
    is new), then outcomes (None)."""
    records = [i for i in items if isinstance(i, Record)]
    marks = [i for i in items if isinstance(i, Mark)]
    new = iter(await _record(db, s, records) if records else [])
    if marks:
        await _mark(s, marks)
    return [next(new) if isinstance(i, Record) else None for i in items]


async def _record(db: Database, s: AsyncSession, records: Sequence[Record]) -> list[bool]:
    """Insert the events' pending rows and their debtors' rows: whether each
    event's row is new (False: its event id was taken, here or by another line)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows.setdefault(r.row["event_id"], r.row)
    inserted = set((await s.execute(
        db.insert(IngestedEvent).values(list(rows.values())).on_conflict_do_nothing()
        .returning(IngestedEvent.event_id))).scalars())
    new, debtors = [], {}
    for r in records:
        mine = r.row["event_id"] in inserted and rows.get(r.row["event_id"]) is r.row
        new.append(mine)
        if mine and r.debtor is not None:  # the latest event's contact details win
            debtors.pop(r.debtor["debtor_id"], None)
            debtors[r.debtor["debtor_id"]] = r.debtor
    if debtors:
        stmt = db.insert(Debtor).values(list(debtors.values()))
        await s.execute(stmt.on_conflict_do_update(
            index_elements=[Debtor.debtor_id],
            set_={k: stmt.excluded[k] for k in next(iter(debtors.values())) if k != "debtor_id"}))
    return new


async def _mark(s: AsyncSession, marks: Sequence[Mark]) -> None:
    """The events' outcomes on their rows, one UPDATE per outcome.  Only a
    row still pending: a case that handled its event first wrote what it did."""
    by_outcome: dict[tuple[str, str | None], list[str]] = {}
    for m in marks:
        by_outcome.setdefault((m.status, m.detail), []).append(m.event_id)
    for (status, detail), ids in by_outcome.items():
        await s.execute(update(IngestedEvent).where(IngestedEvent.event_id.in_(ids),
                                                    IngestedEvent.status == "pending")
                        .values(status=status, detail=detail).execution_options(synchronize_session=False))


async def forget(db: Database, event_id: str) -> None:
    """Drop the pending row of an event that was rejected on dispatch."""
    async with db.transaction() as s:
        await s.execute(delete(IngestedEvent).where(IngestedEvent.event_id == event_id,
                                                    IngestedEvent.status == "pending"))


async def mark_rejected(db: Database, event_id: str) -> None:
    async with db.transaction() as s:
        await s.execute(update(IngestedEvent).where(IngestedEvent.event_id == event_id).values(status="rejected"))


async def store_reject(db: Database, source: str, line_no: int, line: str, r: EventRejected) -> None:
    async with db.transaction() as s:
        s.add(RejectedEvent(source=source, line_no=line_no, event_id=r.event_id, reason=r.reason,
                            raw=storable(line.rstrip("\n")), rejected_at=datetime.now(timezone.utc)))
