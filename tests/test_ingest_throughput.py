"""Lines ingested together share their database work (issue 12) and keep
every guarantee of a line on its own: each default's event row and its
debtor's row appear together, every row carries its outcome once the file
returns, and a line the database refuses is that line's rejection only."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from db.models import Debtor, IngestedEvent, RejectedEvent
from intake import event_rows
from intake.group_commit import GroupCommit
from tests.helpers import TrackingIngestor, default_event, settings_for, uid


def now() -> datetime:
    return datetime.now(timezone.utc)


async def test_a_file_of_defaults_ingested_together_leaves_every_row_with_its_debtor_and_outcome(env, db, task_queue):
    events = [default_event(f"ACC-{uid()}", occurred_at=now()) for _ in range(40)]
    report = await TrackingIngestor(env.client, db, settings_for(db, task_queue)).ingest_lines(
        [json.dumps(e) for e in events], source="t", concurrency=16)
    assert (report.accepted, report.duplicate, report.rejected) == (40, 0, 0), report.rejects
    async with db.sessions() as s:
        rows = {r.event_id: r for r in (await s.scalars(select(IngestedEvent))).all()}
        debtors = {d.debtor_id: d for d in (await s.scalars(select(Debtor))).all()}
    assert {e["event_id"]: rows[e["event_id"]].status for e in events} == {e["event_id"]: "dispatched" for e in events}
    assert {e["debtor"]["debtor_id"] for e in events} <= set(debtors)
    assert {debtors[e["debtor"]["debtor_id"]].phone for e in events} == {"+86 138 0013 8000"}


async def test_a_line_the_database_refuses_among_others_rejects_that_line_alone(env, db, task_queue, monkeypatch):
    events = [default_event(f"ACC-{uid()}", occurred_at=now()) for _ in range(20)]
    refused = events[2]["event_id"]
    shared = []
    record = event_rows._record

    def refusing(db, s, records):
        ids = [r.row["event_id"] for r in records]
        if refused in ids:
            shared.append(len(ids))
            raise IntegrityError("INSERT INTO ingested_events", {}, Exception("CHECK constraint failed"))
        return record(db, s, records)

    monkeypatch.setattr(event_rows, "_record", refusing)
    report = await TrackingIngestor(env.client, db, settings_for(db, task_queue)).ingest_lines(
        [json.dumps(e) for e in events], source="t", concurrency=16)
    assert max(shared) > 1  # it did share a transaction with other lines
    assert (report.accepted, report.rejected) == (19, 1)
    assert report.rejects == [(3, "the database refused it: CHECK constraint failed")]
    async with db.sessions() as s:
        rows = {r.event_id: r.status for r in (await s.scalars(select(IngestedEvent))).all()}
        debtors = set((await s.scalars(select(Debtor.debtor_id))).all())
        stored = [(r.line_no, r.event_id) for r in (await s.scalars(select(RejectedEvent))).all()]
    assert rows == {e["event_id"]: "dispatched" for e in events if e["event_id"] != refused}
    assert events[2]["debtor"]["debtor_id"] not in debtors  # no debtor row without its event's row
    assert stored == [(3, refused)]


async def test_writes_submitted_together_share_one_transaction_and_an_error_is_each_ones_own(db):
    written: list[list[str]] = []

    def write(s, items):
        written.append(list(items))
        if "bad" in items:
            raise IntegrityError("INSERT", {}, Exception("refused"))
        return [f"{item} written" for item in items]

    group = GroupCommit(db, write)
    results = await asyncio.gather(*(group.submit(item) for item in ("a", "bad", "c")), return_exceptions=True)
    assert results[0] == "a written" and results[2] == "c written"
    assert isinstance(results[1], IntegrityError)
    assert written == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]  # together, then one by one after the error

    def outage(s, items):
        raise OperationalError("BEGIN", {}, Exception("unable to open database file"))

    down = GroupCommit(db, outage)
    results = await asyncio.gather(*(down.submit(item) for item in ("a", "b")), return_exceptions=True)
    assert all(isinstance(r, OperationalError) for r in results)  # an outage is every line's, not retried
