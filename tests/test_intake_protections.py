"""Region and team events that do not apply change nothing and say so
(intake/protections.py, SPEC §5): clearing a team that is not suspended, a
disaster already declared for longer. In file ingest such an event is
accepted with its "no effect" recorded on its ingested_events row; times in
the detail are on the region's own clock, with the zone and the year."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from db.models import Case, CaseHistory, Disaster, IngestedEvent, TeamSuspension
from intake.protections import NO_EFFECT, Protections
from tests.helpers import default_event, ingestor, uid
from worker import build_worker


def event(kind: str, at, **fields) -> str:
    return json.dumps({"event_id": f"ev-{uid()}", "type": kind, "occurred_at": at.isoformat(), "actor": "ops-wang",
                       **fields})


async def row(db, event_id: str) -> IngestedEvent:
    async with db.sessions() as s:
        return await s.get(IngestedEvent, event_id)


async def test_clearing_a_team_that_is_not_suspended_changes_nothing(env, db, task_queue):
    now = await env.get_current_time()
    team = f"team-{uid()}"
    line = event("team.review_cleared", now, team_id=team)
    report = await ingestor(env, db, task_queue).ingest_lines([line], source="t")
    assert (report.accepted, report.rejected) == (1, 0)
    recorded = await row(db, json.loads(line)["event_id"])
    assert (recorded.status, recorded.detail) == (NO_EFFECT, f"no effect: team {team} is not suspended")


async def test_a_suspended_team_is_cleared_once(env, db):
    now = await env.get_current_time()
    team = f"team-{uid()}"
    async with db.transaction() as s:
        s.add(TeamSuspension(team_id=team, day=now.date(), complaints=6, threshold=5, suspended_at=now))
    protections = Protections(env.client, db)
    assert await protections.clear_team("ev-clear-1", team, now) == \
        ("dispatched", f"team {team} cleared; 0 open cases released from its suspension")
    # the same event again (an ingest re-run after a crash) fans out again; another event changes nothing
    assert (await protections.clear_team("ev-clear-1", team, now))[0] == "dispatched"
    assert await protections.clear_team("ev-clear-2", team, now) == \
        (NO_EFFECT, f"no effect: team {team} is not suspended")
    async with db.sessions() as s:
        cleared = (await s.scalars(select(TeamSuspension).where(TeamSuspension.team_id == team))).one()
    assert cleared.cleared_by_event == "ev-clear-1"


async def test_declaring_a_disaster_twice_says_what_it_did(env, db):
    region = f"T{uid()}"  # a region no case is in: nothing to signal
    xj = "CN-XJ"
    now = await env.get_current_time()
    protections = Protections(env.client, db)
    status, first = await protections.declare_disaster("ev-d1", region, 30, now)
    assert status == "dispatched" and first.startswith(f"disaster grace in {region} until ") and " UTC; " in first
    assert first.endswith("sent to 0 open cases")
    shorter = await protections.declare_disaster("ev-d2", region, 10, now + timedelta(days=1))
    assert shorter[0] == NO_EFFECT
    assert shorter[1].startswith(f"no effect: a disaster in {region} is already declared (event ev-d1) until ")
    status, longer = await protections.declare_disaster("ev-d3", region, 45, now + timedelta(days=1))
    assert status == "dispatched" and f"disaster grace in {region} extended from " in longer
    assert "(event ev-d1) to " in longer
    async with db.sessions() as s:
        declared = set((await s.scalars(select(Disaster.event_id).where(Disaster.region == region))).all())
    assert declared == {"ev-d1", "ev-d3"}  # the one that changed nothing is not a declaration
    # a region the table places: its own clock, with the zone and the year
    async with db.transaction() as s:
        await s.execute(Disaster.__table__.delete().where(Disaster.region == xj))
    at = now.replace(hour=23, minute=20, second=0, microsecond=0)
    detail = (await protections.declare_disaster(f"ev-{uid()}", xj, 30, at))[1]
    local = (at + timedelta(days=30)) + timedelta(hours=6)  # Asia/Urumqi is UTC+6
    assert f"until {local:%Y-%m-%d %H:%M} Asia/Urumqi;" in detail


async def test_the_declaring_operator_reaches_each_case_history(env, db, task_queue):
    now = await env.get_current_time()
    region, acct = f"T{uid()}", f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        await ingestor(env, db, task_queue).ingest_lines(
            [json.dumps(default_event(acct, occurred_at=now, region=region))], source="t")
        for _ in range(50):  # the case writes its row when it opens
            async with db.sessions() as s:
                if await s.get(Case, acct) is not None:
                    break
            await env.sleep(timedelta(seconds=1))
        status, detail = await Protections(env.client, db).declare_disaster(f"ev-{uid()}", region, 30, now,
                                                                            actor="sup-chen")
        assert status == "dispatched" and detail.endswith("sent to 1 open case")
        notes: list = []
        for _ in range(50):  # the case records it when it takes the signal
            async with db.sessions() as s:
                notes = (await s.execute(select(CaseHistory.actor, CaseHistory.note).where(
                    CaseHistory.account_id == acct, CaseHistory.note.like("disaster%")))).all()
            if notes:
                break
            await env.sleep(timedelta(seconds=1))
    assert notes and notes[0].actor == "sup-chen"
