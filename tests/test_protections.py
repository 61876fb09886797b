"""Protections (SPEC §4) on the time-skipping server, asserted from contact_attempts."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from db.models import TeamSuspension
from tests.helpers import advance_to_local, attempts, default_event, ingestor, signal, start_case, uid
from worker import build_worker
from workflows import protections, rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import CaseEvent, CaseState, Pause, SuspensionRequest, case_workflow_id
from workflows.status import PauseKind, SuspensionGranted

TZ = "Asia/Shanghai"


def contacts_between(rows, start: datetime, end: datetime):
    return [r for r in rows if start <= r.attempted_at < end]


async def test_a_dispute_pauses_and_the_ladder_keeps_its_spacing_after_resuming(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, default_event("P-DISP", occurred_at=start))
        await env.sleep(timedelta(days=2))  # voice call done on day 0; paused on day 2
        await signal(handle, env, "dispute.opened", account_id="P-DISP", reason="not my loan")
        await env.sleep(timedelta(hours=1))
        paused = await handle.query("status")
        paused_at = await env.get_current_time()
        await env.sleep(timedelta(days=20))
        resumed_at = await env.get_current_time()
        await signal(handle, env, "dispute.resolved", account_id="P-DISP", upheld=False)
        await env.sleep(timedelta(days=3))
    rows = await attempts(db, "P-DISP")
    assert paused["paused_by"] == ["dispute"] and paused["next_action"] == "resume"
    assert contacts_between(rows, paused_at, resumed_at) == []
    human = [r for r in rows if r.step == "human_call"]
    # paused on day 2, so the day-3 human call comes one day after resuming, not at once
    assert [r.local_date for r in human] == [rules.local_date(resumed_at, TZ) + timedelta(days=1)]


async def test_an_upheld_dispute_closes_the_case(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, default_event("P-UPHELD", occurred_at=start))
        await signal(handle, env, "dispute.opened", account_id="P-UPHELD", reason="paid already")
        await signal(handle, env, "dispute.resolved", account_id="P-UPHELD", upheld=True)
        result = await handle.result()
    assert result.closed_reason == "dispute_upheld"


async def test_suspension_update_refuses_bad_requests_and_changes_nothing(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, default_event("P-SUSP", occurred_at=start))
        await env.sleep(timedelta(hours=1))
        before = await handle.query("status")
        for months, message in ((25, "1 to 24 months; 25 months refused"), (0, "0 months refused")):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("grant_suspension", SuspensionRequest(months, "hardship"))
            assert message in str(refused.value.cause)
        assert await handle.query("status") == before
        granted = await handle.execute_update(DelinquentAccountWorkflow.grant_suspension,
                                              SuspensionRequest(2, "hardship"))
        granted_at = await env.get_current_time()
        await env.sleep(timedelta(days=40))
        during = await handle.query("status")
        revoked_at = await env.get_current_time()
        await signal(handle, env, "suspension.revoked", account_id="P-SUSP")
        await env.sleep(timedelta(days=4))
    assert isinstance(granted, SuspensionGranted) and granted.paused_by == [PauseKind.SUSPENSION]
    assert granted.until == rules.local_instant(rules.add_months(rules.local_date(granted_at, TZ), 2), time(0, 0), TZ)
    assert during["paused_by"] == ["suspension"]
    rows = await attempts(db, "P-SUSP")
    assert contacts_between(rows, granted_at, revoked_at) == []
    assert [r.step for r in rows] == ["voice_robot", "human_call"]


async def test_suspension_update_on_a_closed_case_is_refused(env, db, task_queue):
    start = await env.get_current_time()
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, default_event("P-CLOSED", occurred_at=start, currency="XYZ"))
        await handle.result()
        # A closed case has finished: the server refuses the update (and the
        # validator refuses it for a case closing at that moment).
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update("grant_suspension", SuspensionRequest(3, "x"))
        after = await handle.query("status")
    assert after["closed_reason"] == "invalid_debt" and after["paused_by"] == []


@pytest.mark.parametrize("release_first", ["dispute", "suspension"])
async def test_overlapping_protections_resume_only_when_both_are_released(env, db, task_queue, release_first):
    start = await advance_to_local(env, TZ, time(10, 0))
    acct = f"P-STACK-{release_first}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, default_event(acct, occurred_at=start))
        await env.sleep(timedelta(hours=1))
        await signal(handle, env, "dispute.opened", account_id=acct, reason="amount wrong")
        await handle.execute_update("grant_suspension", SuspensionRequest(6, "illness"))
        paused_at = await env.get_current_time()
        await env.sleep(timedelta(days=10))
        both = await handle.query("status")
        if release_first == "dispute":
            await signal(handle, env, "dispute.resolved", account_id=acct, upheld=False)
        else:
            await signal(handle, env, "suspension.revoked", account_id=acct)
        await env.sleep(timedelta(days=10))
        one_left = await handle.query("status")
        released_at = await env.get_current_time()
        if release_first == "dispute":
            await signal(handle, env, "suspension.revoked", account_id=acct)
        else:
            await signal(handle, env, "dispute.resolved", account_id=acct, upheld=False)
        await env.sleep(timedelta(days=5))
    assert both["paused_by"] == ["suspension", "dispute"]
    other = "suspension" if release_first == "dispute" else "dispute"
    assert one_left["paused_by"] == [other]
    rows = await attempts(db, acct)
    assert contacts_between(rows, paused_at, released_at) == []
    assert [r.step for r in rows] == ["voice_robot", "human_call"]


@pytest.fixture
async def ingest(env, db, task_queue):
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        ingest_events = ingestor(env, db, task_queue)  # the settings' complaint threshold: 5

        async def run(*events: dict):
            report = await ingest_events.ingest_lines([json.dumps(e) for e in events], source="test")
            assert report.rejected == 0, report.rejects
            return report

        yield run


def event(kind: str, at: datetime, **fields) -> dict:
    return {"event_id": f"ev-{uid()}", "type": kind, "occurred_at": at.isoformat(), **fields}


async def test_a_disaster_pauses_open_cases_of_its_region_only_and_new_ones_start_paused(ingest, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    gd, sc, late = f"ACC-GD-{uid()}", f"ACC-SC-{uid()}", f"ACC-GD2-{uid()}"
    await ingest(default_event(gd, occurred_at=start, region="CN-GD"),
                 default_event(sc, occurred_at=start, region="CN-SC"))
    await env.sleep(timedelta(hours=1))
    declared_at = await env.get_current_time()
    await ingest(event("disaster.declared", declared_at, region="CN-GD", days=30))
    await env.sleep(timedelta(days=1))
    now = await env.get_current_time()
    await ingest(default_event(late, occurred_at=now, region="CN-GD"))
    await env.sleep(timedelta(hours=1))
    statuses = {a: await env.client.get_workflow_handle(case_workflow_id(a)).query("status") for a in (gd, sc, late)}
    await env.sleep(timedelta(days=33))
    assert statuses[gd]["paused_by"] == ["disaster_grace"]
    assert statuses[late]["paused_by"] == ["disaster_grace"]
    assert statuses[sc]["paused_by"] == []
    ends = declared_at + timedelta(days=30)
    rows = await attempts(db)
    for acct in (gd, late):
        mine = [r for r in rows if r.account_id == acct]
        assert contacts_between(mine, declared_at, ends) == []
        assert any(r.attempted_at >= ends for r in mine)  # resumed afterwards
    assert [r.step for r in rows if r.account_id == sc][:2] == ["voice_robot", "human_call"]


async def test_the_team_circuit_breaker_trips_above_the_threshold_and_clears_on_review(ingest, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    team = f"team-{uid()}"
    a, b = f"ACC-T1-{uid()}", f"ACC-T2-{uid()}"
    await ingest(default_event(a, occurred_at=start, team_id=team), default_event(b, occurred_at=start))
    await env.sleep(timedelta(hours=1))
    now = await env.get_current_time()
    complaints = [event("complaint.filed", now, account_id=a, team_id=team, text=f"rude call {i}") for i in range(6)]
    await ingest(*complaints[:5])
    await env.sleep(timedelta(minutes=5))
    at_threshold = await env.client.get_workflow_handle(case_workflow_id(a)).query("status")
    await ingest(complaints[5])
    tripped_at = await env.get_current_time()
    await env.sleep(timedelta(days=5))
    tripped = await env.client.get_workflow_handle(case_workflow_id(a)).query("status")
    other = await env.client.get_workflow_handle(case_workflow_id(b)).query("status")
    cleared_at = await env.get_current_time()
    await ingest(event("team.review_cleared", cleared_at, team_id=team))
    await env.sleep(timedelta(days=4))  # paused on day 0: the day-3 human call comes 3 days after clearing
    after = await env.client.get_workflow_handle(case_workflow_id(a)).query("status")
    assert at_threshold["paused_by"] == []
    assert tripped["paused_by"] == ["team_suspended"]
    assert other["paused_by"] == []
    assert after["paused_by"] == []
    async with db.sessions() as s:
        [trip] = (await s.scalars(select(TeamSuspension).where(TeamSuspension.team_id == team))).all()
    assert (trip.complaints, trip.threshold) == (6, 5) and trip.cleared_at is not None
    rows = [r for r in await attempts(db) if r.account_id == a]
    assert contacts_between(rows, tripped_at, cleared_at) == []
    assert any(r.attempted_at > cleared_at for r in rows)


async def test_a_dialect_teams_suspension_pauses_its_older_debtors_cases(ingest, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    old, young = f"ACC-OLD-{uid()}", f"ACC-YNG-{uid()}"
    dialect = f"hakka{uid()}"
    team = f"dialect-{dialect}"
    await ingest(default_event(old, occurred_at=start, age=71, debtor={"dialect": dialect}, team_id="team-a"),
                 default_event(young, occurred_at=start, age=35, debtor={"dialect": dialect}, team_id="team-a"))
    await env.sleep(timedelta(hours=1))
    now = await env.get_current_time()
    await ingest(*[event("complaint.filed", now, account_id=old, team_id=team, text=f"rude {i}") for i in range(6)])
    await env.sleep(timedelta(minutes=5))
    paused = await env.client.get_workflow_handle(case_workflow_id(old)).query("status")
    other = await env.client.get_workflow_handle(case_workflow_id(young)).query("status")
    assert paused["paused_by"] == ["team_suspended"]
    assert other["paused_by"] == []


def test_pauses_stack_and_the_ladder_clock_stands_still_only_while_any_holds():
    t0 = datetime(2027, 1, 10, tzinfo=timezone.utc)
    s = CaseState(limitation_expires_on="2027-03-01")
    protections.add_pause(s, Pause(PauseKind.DISPUTE, "dispute", t0), t0, TZ)
    suspension = protections.suspension(2, "", t0 + timedelta(days=1), TZ)
    protections.add_pause(s, suspension, t0 + timedelta(days=1), TZ)
    assert protections.paused_by(s, quiet_hours=True) == ["quiet_hours", "suspension", "dispute"]
    assert protections.earliest_end(s) == suspension.until
    resolved = CaseEvent("e-1", "dispute.resolved", t0, {"upheld": False})
    assert protections.apply_event(s, resolved, t0 + timedelta(days=3), TZ) == "dispute rejected: resumed"
    assert s.paused_seconds == 0 and s.paused_since == t0  # the suspension still holds
    assert protections.release_expired(s, suspension.until) and s.pauses == []
    assert s.paused_seconds == (suspension.until - t0).total_seconds() and s.resumed_at == suspension.until
    # a disaster in the limitation period's last 6 months suspends it for its overlap
    disaster = CaseEvent("e-2", "disaster.declared", t0, {"region": "CN-GD", "until": "2027-02-09T00:00:00+00:00"})
    assert protections.apply_event(s, disaster, t0, TZ) == "disaster grace in CN-GD until 2027-02-09"
    assert s.limitation_expires_on == "2027-03-31"
