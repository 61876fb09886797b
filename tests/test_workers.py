"""Several workers (issue 12 item 7): two `python worker.py` processes on
PostgreSQL share the task queue; one is killed with SIGKILL mid-run and the
other finishes the cases. Judged through the database: every attempt once,
no cap or quiet-hour breach, every case where it should be.

PostgreSQL only (several processes writing one SQLite file is not a
production set-up); a real-time dev server (`local_env`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, time, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from activities.adapters import Adapters, SimulatedVoiceRobot, simulated_adapters
from db.models import Case, ContactAttempt
from tests.helpers import default_event, start_case, uid
from workflows import rules

ROOT = Path(__file__).resolve().parent.parent
CALL_SECONDS = 3.0  # each voice call takes this long, so the killed worker has calls in flight


class SlowVoice(SimulatedVoiceRobot):
    async def call(self, **kwargs):
        calling = os.environ.get("TEST_CALLING_DIR")
        if calling:  # which worker has a call in flight: the test kills that one
            Path(calling, str(os.getpid())).touch()
        await asyncio.sleep(CALL_SECONDS)
        return await super().call(**kwargs)


def adapters() -> Adapters:
    """COLLECTIONS_ADAPTERS=tests.test_workers:adapters: the simulated systems, with calls that take time."""
    a = simulated_adapters()
    a.voice = SlowVoice()
    return a


def zone_at(hour: int) -> str:
    """A fixed-offset zone in which it is about ``hour`` o'clock now (real time)."""
    offset = (hour - datetime.now(timezone.utc).hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def worker(env, database_url: str, task_queue: str, calling: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
             "TEMPORAL_NAMESPACE": env.client.namespace, "DATABASE_URL": database_url,
             "COLLECTIONS_TASK_QUEUE": task_queue, "COLLECTIONS_ADAPTERS": "tests.test_workers:adapters",
             "PYTHONPATH": str(ROOT), "TEST_CALLING_DIR": str(calling)})


async def rows_of(db) -> list[ContactAttempt]:
    async with db.sessions() as s:
        return list((await s.scalars(select(ContactAttempt))).all())


async def cases_of(db) -> dict[str, Case]:
    async with db.sessions() as s:
        return {c.account_id: c for c in (await s.scalars(select(Case))).all()}


async def activity_pollers(env, task_queue: str) -> int:
    """How many workers poll the task queue for activities (Temporal's own account)."""
    answer = await env.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=env.client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
    return len({p.identity for p in answer.pollers})


async def call_attempts(handle) -> list[int]:
    """The attempt number of every activity the case started, from its Temporal history."""
    return [e.activity_task_started_event_attributes.attempt async for e in handle.fetch_history_events()
            if e.HasField("activity_task_started_event_attributes")]


async def test_two_workers_share_the_queue_and_one_killed_mid_run_leaves_nothing_doubled_or_breached(
        local_env, db, task_queue, tmp_path):
    if db.dialect != "postgresql":
        pytest.skip("several worker processes: PostgreSQL (set TEST_POSTGRES_URL)")
    env, run = local_env, uid()
    day, night = zone_at(12), zone_at(2)
    now = datetime.now(timezone.utc)
    # Payers: four accounts each, all answer and pay on the day-0 call: three
    # connect (the debtor's cap), the fourth waits for tomorrow.
    payers = {f"D-{run}-P{d}": [f"A-{run}-P{d}-{i}" for i in range(4)] for d in range(4)}
    # Eight debtors on one phone number, none answers: six dials (the number's cap), two wait.
    shared_phone = "+86 139 0000 0000"
    silent = [f"A-{run}-S{i}" for i in range(8)]
    # At night where they live: no contact until 08:00.
    sleepers = [f"A-{run}-N{i}" for i in range(3)]

    procs = [worker(env, db.url, task_queue, tmp_path) for _ in range(2)]
    handles = []
    try:
        for _ in range(600):  # both workers poll before any case starts: each gets a share of the calls
            if await activity_pollers(env, task_queue) == 2:
                break
            assert all(p.poll() is None for p in procs), "a worker did not start"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the two workers never both polled the task queue")
        for d, (debtor, accounts) in enumerate(payers.items()):
            for account in accounts:
                handles.append(await start_case(env, task_queue, default_event(
                    account, occurred_at=now, tz=day, debtor_id=debtor, simulation={"pays_after": "voice"},
                    debtor={"phone": f"+86 138 0013 80{d:02d}"})))
        for i, account in enumerate(silent):
            handles.append(await start_case(env, task_queue, default_event(
                account, occurred_at=now, tz=day, debtor_id=f"D-{run}-S{i}", debtor={"phone": shared_phone})))
        for account in sleepers:
            handles.append(await start_case(env, task_queue, default_event(account, occurred_at=now, tz=night)))

        # The first calls are under way: kill a worker that has one in flight
        # (either may hold them all: a workflow task sticks to the worker that ran it).
        for _ in range(600):
            calling = {int(p.name) for p in tmp_path.iterdir()}
            if calling:
                break
            await asyncio.sleep(0.05)
        assert calling, "no call went out in 30 s"
        victim = next(p for p in procs if p.pid in calling)
        survivor = next(p for p in procs if p is not victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait()

        async def finished() -> bool:
            rows, cases = await rows_of(db), await cases_of(db)
            paid = sum(c.closed_reason == "paid" for c in cases.values())
            done = [r for r in rows if r.outcome != "dialing"]
            settled = len(cases) == 16 + 8 + 3 and all(c.stage in ("wake_up_ladder", "closed") for c in cases.values())
            return paid == 12 and len(done) == 12 + 6 and len(rows) == len(done) and settled
        for _ in range(1800):  # the survivor retries what the dead one held (heartbeat timeout 20 s)
            if await finished():
                break
            assert survivor.poll() is None, "the surviving worker died"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # anything still to come (a second attempt, a late retry) would show now
        rows, cases = await rows_of(db), await cases_of(db)
        retried = [a for h in handles for a in await call_attempts(h) if a > 1]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)

    # The killed worker had calls in flight: the survivor took them over (a second attempt of the activity)...
    assert retried
    # ...and every attempt is once: one row per idempotency key, one day-0 call per account at most.
    keys = Counter(r.idempotency_key for r in rows)
    assert max(keys.values()) == 1
    per_account = Counter((r.account_id, r.step) for r in rows)
    assert max(per_account.values()) == 1
    assert all(r.outcome in ("answered", "no_answer") for r in rows), Counter(r.outcome for r in rows)
    # No cap breached: per debtor per local day 3 connected calls, per number 6 dials.
    connected = Counter((r.debtor_id, r.local_date) for r in rows if r.connected)
    dials = Counter((r.phone_hash, r.local_date) for r in rows)
    assert max(connected.values()) == 3 and max(dials.values()) == 6
    # No attempt in quiet hours, by the row's own clock and by its instant.
    for r in rows:
        local = rules.local_datetime(r.attempted_at, r.timezone)
        assert time(8, 0) <= local.time() < time(22, 0) and r.local_time == local.strftime("%H:%M:%S")
    # Every case where it should be.
    for debtor, accounts in payers.items():
        assert sorted(cases[a].closed_reason or "open" for a in accounts) == ["open", "paid", "paid", "paid"]
    assert sum(1 for r in rows if r.account_id in silent) == 6
    assert all(cases[a].closed_reason is None and cases[a].stage == "wake_up_ladder" for a in silent + sleepers)
    assert not [r for r in rows if r.account_id in sleepers]
    waiting = [a for accounts in payers.values() for a in accounts if cases[a].closed_reason is None]
    assert all(cases[a].stage == "wake_up_ladder" for a in waiting), [(cases[a].stage, cases[a].revision) for a in waiting]
