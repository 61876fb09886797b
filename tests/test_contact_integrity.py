"""Contact integrity (issue 11): the clock of record is the moment of the
call, a backlog re-plans instead of dialling late, and a call is placed once
per attempt however often its worker is killed; the balance is the amount
due minus the recorded payments throughout.

The hold-back tests run on the time-skipping server: while an activity waits
in the queue the server does not skip time, so a held-back contact meets the
start of quiet hours (or its schedule-to-start limit) in a few real seconds.
The kill test runs worker processes against the real-time dev server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError as ActivityTimeout
from temporalio.exceptions import TimeoutType as SdkTimeoutType
from temporalio.testing import ActivityEnvironment

from activities.adapters import (
    Adapters, SimulatedCallCentre, SimulatedElectronicService, SimulatedSkipTracer, SimulatedVoiceRobot,
)
from activities.common import activity_now, start_clock
from activities.ledger import MemoryLedger
from db.models import Case, CaseHistory, Payment, SimulatedDial
from tests.helpers import STARTED, CountingVoice, advance_to_local, attempts, default_event, start_case, uid, until
from worker import build_worker
from workflows import options, rules
from workflows.model import CaseContactRules

ROOT = Path(__file__).resolve().parent.parent
TZ = "Asia/Shanghai"


def adapters(voice: CountingVoice) -> Adapters:
    return Adapters(voice, SimulatedCallCentre(), SimulatedElectronicService(), SimulatedSkipTracer())


async def eventually(probe, what: str, seconds: float = 60.0):
    """``until`` with a minute by default: real time, worker processes killed and started again."""
    return await until(probe, what, seconds)

async def settle(handle) -> None:
    """Let the case finish what it started (no activity or task outstanding)
    and stop it while its server is up."""
    async def idle():
        d = (await handle.describe()).raw_description
        return not d.pending_activities and not d.HasField("pending_workflow_task")
    await eventually(idle, "the case idle")
    await handle.terminate("test finished")
    STARTED.remove(handle)


async def events(handle, kind: EventType) -> list:
    return [e async for e in handle.fetch_history_events() if e.event_type == kind]


async def contact_events(handle, kind: EventType) -> list:
    """The case's events of ``kind`` about its contact_debtor activities."""
    scheduled, found = set(), []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if e.activity_task_scheduled_event_attributes.activity_type.name == "contact_debtor":
                scheduled.add(e.event_id)
                if kind == e.event_type:
                    found.append(e)
        elif e.event_type == kind:
            attrs = {EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
                     EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes"}
            if getattr(e, attrs[kind]).scheduled_event_id in scheduled:
                found.append(e)
    return found


async def waiting_for(handle, action: str, at: datetime):
    """The case waits for ``action`` at ``at`` (its timer is set)."""
    async def probe():
        st = await handle.query("status")
        return st["next_action"] == action and st["next_action_at"] and datetime.fromisoformat(
            st["next_action_at"]) == at
    await eventually(probe, f"case waiting for {action} at {at}")


# ---------------------------------------------------------------- the clock of record


def info_env(scheduled: datetime, started: datetime) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=scheduled, scheduled_time=scheduled,
                                   started_time=started)
    return env


async def test_the_clock_of_record_is_the_start_of_the_attempt_plus_the_time_spent_since():
    scheduled = datetime(2026, 11, 24, 13, 58, 30, tzinfo=timezone.utc)  # 21:58:30 in Shanghai
    started = scheduled + timedelta(minutes=2, seconds=8)  # held in the queue: started 22:00:38

    async def clocks():
        first = start_clock()
        await asyncio.sleep(0.2)
        return first, activity_now()

    first, later = await info_env(scheduled, started).run(clocks)
    assert first == started  # not the scheduled time
    assert timedelta(seconds=0.2) <= later - started < timedelta(seconds=5)
    assert rules.in_quiet_hours(first, TZ)
    # Unit tests that set only the scheduled time (the started time is the epoch) get that.
    assert info_env(scheduled, datetime(1970, 1, 1, tzinfo=timezone.utc)).run(start_clock) == scheduled


def test_only_a_schedule_to_start_timeout_counts_as_not_started():
    def failure(kind: SdkTimeoutType) -> ActivityError:
        err = ActivityError("activity timed out", scheduled_event_id=1, started_event_id=0, identity="",
                            activity_type="contact_debtor", activity_id="1", retry_state=None)
        err.__cause__ = ActivityTimeout("timeout", type=kind, last_heartbeat_details=[])
        return err

    assert options.not_started(failure(SdkTimeoutType.SCHEDULE_TO_START))
    assert not options.not_started(failure(SdkTimeoutType.HEARTBEAT))
    assert not options.not_started(ApplicationError("boom"))
    assert options.contact_activity()["schedule_to_start_timeout"] == options.CONTACT_START_LIMIT


async def test_the_simulated_ledger_places_a_key_once_and_answers_the_status_look_up():
    robot = SimulatedVoiceRobot(ledger=MemoryLedger())
    assert await robot.placed(key="k1") is None
    first = await robot.call(key="k1", phone="+86 138 0013 8000", script="hello", profile={"answers": True})
    again = await robot.call(key="k1", phone="+86 138 0013 8000", script="hello", profile={"answers": False})
    assert again == first and first.answered
    assert await robot.placed(key="k1") == first
    assert robot.ledger.requests == {"k1": 2}  # asked twice: a retry that would have rung again


# ---------------------------------------------------------------- held back across quiet hours


async def test_a_call_held_back_across_the_start_of_quiet_hours_is_not_placed_and_waits_for_the_window(
        own_env, db, task_queue):
    env = own_env
    strict = dataclasses.replace(rules.DEFAULT_RULES, quiet_start=time(21, 0))  # stricter: quiet from 21:00
    start = await advance_to_local(env, TZ, time(20, 0))
    quiet = rules.local_instant(rules.local_date(start, TZ), time(21, 0), TZ)
    due = quiet - timedelta(seconds=3)  # day 0's call is due 20:59:57, three seconds before quiet hours
    window = rules.local_instant(rules.local_date(start, TZ) + timedelta(days=1), time(8, 0), TZ)
    account = f"A-HOLD-{uid()}"
    voice = CountingVoice()
    kw = dict(task_queue=task_queue, database_url=db.url, adapters=adapters(voice), contact_rules=strict,
              max_cached_workflows=0)  # no sticky queue: the next phase's worker takes the case's tasks
    async with build_worker(env.client, **kw):
        handle = await start_case(env, task_queue, default_event(account, occurred_at=due, tz=TZ,
                                                                 simulation={"answers": True}),
                                  contact_rules=CaseContactRules.of(strict))
        await waiting_for(handle, "voice_robot", due)
    # Only the case runs now, no activity: its call is scheduled at 20:59:57 and waits in the queue.
    async with build_worker(env.client, no_remote_activities=True, **kw):
        await env.sleep(due - await env.get_current_time())
        await eventually(lambda: contact_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
                         "call scheduled")

        async def past_quiet():
            return await env.get_current_time() > quiet + timedelta(seconds=1)
        await eventually(past_quiet, "the start of quiet hours")  # real seconds: the server does not skip now
    async with build_worker(env.client, **kw):
        await eventually(lambda: contact_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
                         "held call done")
        await waiting_for(handle, "voice_robot", window)
        status = await handle.query("status")
        assert "quiet_hours" in status["paused_by"]
        assert voice.calls == [] and await attempts(db, account) == []  # no call in quiet hours, no row
        await env.sleep(window - await env.get_current_time())
        rows = await eventually(lambda: _completed(db, account), "the call at 08:00")
        after = await env.get_current_time()
        await settle(handle)
    [row] = rows
    assert voice.calls == [row.idempotency_key]
    assert window <= row.attempted_at <= after  # the true moment of the call, not when it was planned
    assert row.local_time.startswith("08:00") and row.local_date == rules.local_date(window, TZ)
    assert not await events(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def _completed(db, account: str):
    rows = await attempts(db, account)
    return rows if rows and all(r.outcome != "dialing" for r in rows) else None


# ---------------------------------------------------------------- a backlog re-plans


async def test_a_contact_not_started_in_time_is_not_placed_late_and_the_case_plans_it_again(
        own_env, db, task_queue, monkeypatch):
    env = own_env
    monkeypatch.setattr(options, "CONTACT_START_LIMIT", timedelta(seconds=3))
    monkeypatch.setattr(options, "CONTACT_REPLAN_AFTER", timedelta(minutes=10))
    start = await advance_to_local(env, TZ, time(10, 0))
    due = start + timedelta(minutes=30)
    account = f"A-LATE-{uid()}"
    voice = CountingVoice()
    kw = dict(task_queue=task_queue, database_url=db.url, adapters=adapters(voice), max_cached_workflows=0)
    async with build_worker(env.client, **kw):
        handle = await start_case(env, task_queue, default_event(account, occurred_at=due, tz=TZ,
                                                                 simulation={"answers": True}))
        await waiting_for(handle, "voice_robot", due)
    async with build_worker(env.client, no_remote_activities=True, **kw):  # a backlog: no activity starts
        await env.sleep(due - await env.get_current_time())
        [timed_out] = await eventually(lambda: contact_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT),
                                       "the schedule-to-start timeout")
        failure = timed_out.activity_task_timed_out_event_attributes.failure
        assert failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
    assert voice.calls == [] and await attempts(db, account) == []
    async with build_worker(env.client, **kw):  # the backlog clears
        notes = await eventually(lambda: _notes(db, account, "not started in time"), "the re-plan recorded")
        status = await handle.query("status")
        again = datetime.fromisoformat(status["next_action_at"])
        assert status["next_action"] == "voice_robot" and again >= due + timedelta(minutes=10)
        assert voice.calls == []  # the late call was never placed
        await env.sleep(again - await env.get_current_time())
        [row] = await eventually(lambda: _completed(db, account), "the re-planned call")
        after = await env.get_current_time()
        await settle(handle)
    assert voice.calls == [row.idempotency_key] and row.attempt_no == 2
    assert again <= row.attempted_at <= after
    assert "planned again" in notes[0]
    assert not await events(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def _notes(db, account: str, containing: str) -> list[str]:
    async with db.sessions() as s:
        notes = (await s.scalars(select(CaseHistory.note).where(CaseHistory.account_id == account))).all()
    return [n for n in notes if n and containing in n]


# ---------------------------------------------------------------- one dial per attempt under kills


def daytime_zone() -> str:
    """A fixed-offset zone in which it is about noon right now (real time)."""
    hour = datetime.now(timezone.utc).hour
    offset = (12 - hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


ROUNDS, PER_ROUND = 6, 2
AMOUNT, PAID = Decimal("1200.50"), Decimal("100.00")


async def _dials(db) -> dict[str, SimulatedDial]:
    async with db.sessions() as s:
        return {d.key: d for d in (await s.scalars(select(SimulatedDial))).all()}


async def test_a_worker_killed_mid_call_again_and_again_never_dials_an_attempt_twice(local_env, db, task_queue):
    env, tz = local_env, daytime_zone()
    worker_env = {**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                  "DATABASE_URL": db.url, "COLLECTIONS_TASK_QUEUE": task_queue,
                  "COLLECTIONS_ADAPTERS": "tests.slow_adapters:ringing_adapters", "PYTHONPATH": str(ROOT)}
    handles, kills_mid_call = {}, 0
    for round_no in range(ROUNDS):
        proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=worker_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            accounts = [f"A-K{round_no}{i}-{uid()}" for i in range(PER_ROUND)]
            for account in accounts:
                handles[account] = await start_case(env, task_queue, default_event(
                    account, occurred_at=datetime.now(timezone.utc), tz=tz, amount=str(AMOUNT),
                    debtor={"phone": f"+86 139 {len(handles):04d} 0000"},  # a phone of its own: no cap met
                    simulation={"answers": True, "pays_after": "voice_robot", "pays_amount": str(PAID)}))

            async def ringing():  # this round's calls are placed: the phones ring
                dials = await _dials(db)
                return all(any(account in key for key in dials) for account in accounts) and dials
            dials = await eventually(ringing, f"round {round_no}'s calls placed", 90)
        finally:
            proc.send_signal(signal.SIGKILL)  # mid-call
            proc.wait()
        rows = [r for r in await attempts(db) if any(a in r.idempotency_key for a in accounts)]
        kills_mid_call += len(rows) == PER_ROUND and all(r.outcome == "dialing" for r in rows)  # phones ringing
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        async def all_done():
            rows = await attempts(db)
            paid = await _notes_all(db, "day 0 voice robot: answered")
            return len(rows) == len(handles) and all(r.outcome != "dialing" for r in rows) and len(paid) == len(handles)
        await eventually(all_done, "every killed call completed by a later worker", 180)
        statuses = {a: await h.query("status") for a, h in handles.items()}
    rows, dials = await attempts(db), await _dials(db)
    assert kills_mid_call == ROUNDS  # every kill hit its round's calls in flight, after the dial
    assert sorted(dials) == sorted(r.idempotency_key for r in rows)  # one call per attempt, each with its row
    assert {key: d.dial_requests for key, d in dials.items()} == {key: 1 for key in dials}  # never asked twice
    assert all(r.outcome == "answered" and r.attempted_at <= dials[r.idempotency_key].dialled_at for r in rows)
    async with db.sessions() as s:
        cases = {c.account_id: c for c in (await s.scalars(select(Case))).all()}
        payments = (await s.scalars(select(Payment))).all()
    for account in handles:
        paid = sum((p.amount for p in payments if p.account_id == account), Decimal(0))
        assert paid == PAID  # the call's payment, once
        assert cases[account].outstanding == cases[account].amount_due - paid == AMOUNT - PAID
        assert Decimal(statuses[account]["outstanding"]) == AMOUNT - PAID


async def _notes_all(db, containing: str) -> list[str]:
    async with db.sessions() as s:
        notes = (await s.scalars(select(CaseHistory.note))).all()
    return [n for n in notes if n and containing in n]
