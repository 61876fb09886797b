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

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

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


# The statements run for every batch, built once (and so compiled once, their cache key made once):
# each batch's rows are parameters, executemany for the inserts, expanding IN lists for the rest.
_LOOK_UP = select(IngestedEvent.event_id, IngestedEvent.type, IngestedEvent.account_id, IngestedEvent.payload,
                  IngestedEvent.status, IngestedEvent.detail).where(or_(  # the events, and the accounts' defaults
    IngestedEvent.event_id.in_(bindparam("event_ids", expanding=True)),
    and_(IngestedEvent.account_id.in_(bindparam("accounts", expanding=True)),
         IngestedEvent.type == "account.defaulted")))
_MARK = update(IngestedEvent).where(  # only a row still pending
    IngestedEvent.event_id.in_(bindparam("event_ids", expanding=True)), IngestedEvent.status == "pending",
).values(status=bindparam("new_status"), detail=bindparam("new_detail"))
_INSERTS: dict[Any, Any] = {}  # (dialect, ...): a dialect's INSERT ... ON CONFLICT


def _record_insert(db: Database) -> Any:
    """INSERT of events' pending rows, a row taken already skipped: the event ids inserted."""
    key = (db.dialect, "record")
    if key not in _INSERTS:
        _INSERTS[key] = db.insert(IngestedEvent.__table__).on_conflict_do_nothing().returning(IngestedEvent.event_id)
    return _INSERTS[key]


def _debtor_upsert(db: Database, columns: tuple[str, ...]) -> Any:
    """INSERT of debtors' rows (``columns``), an existing row's columns replaced."""
    key = (db.dialect, columns)
    if key not in _INSERTS:
        stmt = db.insert(Debtor.__table__)
        _INSERTS[key] = stmt.on_conflict_do_update(
            index_elements=[Debtor.debtor_id], set_={k: stmt.excluded[k] for k in columns if k != "debtor_id"})
    return _INSERTS[key]


def look_up(s: Session, lookups: Sequence[tuple[str, str | None]]) -> list[tuple[Any, str | None]]:
    """For each (event id, account): the event's row if it was seen
    before, and the event that opened the account's case (its default) if any."""
    event_ids = {event_id for event_id, _ in lookups}
    accounts = {account for _, account in lookups if account is not None}
    # One statement, on the Core connection.
    found = s.connection().execute(_LOOK_UP, {"event_ids": sorted(event_ids), "accounts": sorted(accounts)}).all()
    seen = {row.event_id: row for row in found if row.event_id in event_ids}
    opened: dict[str, str] = {}
    for row in found:
        if row.type == "account.defaulted" and row.account_id in accounts:
            opened.setdefault(row.account_id, row.event_id)
    return [(seen.get(event_id), opened.get(account) if account is not None else None)
            for event_id, account in lookups]


def write(db: Database, s: Session, items: Sequence[Record | Mark]) -> list[bool | None]:
    """The lines' writes in one transaction: new events' rows (whether each
    is new), then outcomes (None)."""
    records = [i for i in items if isinstance(i, Record)]
    marks = [i for i in items if isinstance(i, Mark)]
    new = iter(_record(db, s, records) if records else [])
    if marks:
        _mark(s, marks)
    return [next(new) if isinstance(i, Record) else None for i in items]


def _record(db: Database, s: Session, records: Sequence[Record]) -> list[bool]:
    """Insert the events' pending rows and their debtors' rows: whether each
    event's row is new (False: its event id was taken, here or by another line)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        rows.setdefault(r.row["event_id"], r.row)
    # One row's statement run for every row (executemany: compiled once, where a multi-row
    # VALUES of the batch's size was compiled anew each time), on the Core connection.
    conn = s.connection()
    inserted = set(conn.execute(_record_insert(db), list(rows.values())).scalars())
    new, debtors = [], {}
    for r in records:
        mine = r.row["event_id"] in inserted and rows.get(r.row["event_id"]) is r.row
        new.append(mine)
        if mine and r.debtor is not None:  # the latest event's contact details win
            debtors.pop(r.debtor["debtor_id"], None)
            debtors[r.debtor["debtor_id"]] = r.debtor
    if debtors:
        conn.execute(_debtor_upsert(db, tuple(next(iter(debtors.values())))), list(debtors.values()))
    return new


def _mark(s: Session, marks: Sequence[Mark]) -> None:
    """The events' outcomes on their rows, one UPDATE per outcome.  Only a
    row still pending: a case that handled its event first wrote what it did."""
    by_outcome: dict[tuple[str, str | None], list[str]] = {}
    for m in marks:
        by_outcome.setdefault((m.status, m.detail), []).append(m.event_id)
    conn = s.connection()  # Core: no ORM bulk update to set up
    for (status, detail), ids in by_outcome.items():
        conn.execute(_MARK, {"event_ids": ids, "new_status": status, "new_detail": detail})


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
