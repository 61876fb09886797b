"""Durability: a worker killed mid-call, a retried activity, continue-as-new
and replay of recorded histories."""

from __future__ import annotations

import pytest

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from sqlalchemy import select
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from db.models import CaseHistory
from activities.adapters import Adapters, SimulatedCallCentre, SimulatedElectronicService, SimulatedSkipTracer
from tests.helpers import CountingVoice, advance_to_local, attempts, default_event, start_case
from worker import STRICT_RUNNER, WORKFLOW_RUNNER, build_worker
from workflows.case import DelinquentAccountWorkflow

ROOT = Path(__file__).resolve().parent.parent


def daytime_zone() -> str:
    """A fixed-offset zone in which it is about noon right now (real time)."""
    hour = datetime.now(timezone.utc).hour
    offset = (12 - hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def test_a_worker_killed_mid_call_leaves_one_attempt_finished_by_another_worker(local_env, db, task_queue):
    env = local_env
    tz = daytime_zone()
    start = datetime.now(timezone.utc)
    proc = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT,
        env={**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
             "DATABASE_URL": db.url, "COLLECTIONS_TASK_QUEUE": task_queue,
             "COLLECTIONS_ADAPTERS": "tests.slow_adapters:adapters", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        handle = await start_case(env, task_queue, default_event("A-KILL", occurred_at=start, tz=tz,
                                                                  simulation={"answers": True}))
        for _ in range(200):  # until the call is in flight (real time)
            rows = await attempts(db, "A-KILL")
            if rows:
                break
            await asyncio.sleep(0.1)
        assert [r.outcome for r in rows] == ["dialing"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    voice = CountingVoice()
    fresh = Adapters(voice, SimulatedCallCentre(), SimulatedElectronicService(), SimulatedSkipTracer())
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, adapters=fresh):
        # The test server does not skip time while an activity is outstanding:
        # the retry comes after the 20 s heartbeat timeout, in real time.
        for _ in range(600):
            rows = await attempts(db, "A-KILL")
            if rows[0].outcome != "dialing":
                break
            await asyncio.sleep(0.1)
        notes: list[str] = []
        for _ in range(300):  # the case itself moves on (its history is in the database)
            async with db.sessions() as s:
                notes = list((await s.scalars(select(CaseHistory.note).where(CaseHistory.account_id == "A-KILL"))).all())
            if any(n.startswith("day 0 voice robot") for n in notes):
                break
            await asyncio.sleep(0.1)
    rows = await attempts(db, "A-KILL")
    assert len(rows) == 1 and rows[0].outcome == "answered"
    assert voice.calls == [rows[0].idempotency_key]
    assert "day 0 voice robot: answered" in notes


async def test_an_activity_failing_mid_call_is_retried_by_temporal_into_one_row(env, db, task_queue):
    start = await advance_to_local(env, "Asia/Shanghai", time(10, 0))
    voice = CountingVoice(fail_first=True)
    flaky = Adapters(voice, SimulatedCallCentre(), SimulatedElectronicService(), SimulatedSkipTracer())
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, adapters=flaky):
        handle = await start_case(env, task_queue, default_event("A-FLAKY", occurred_at=start))
        await env.sleep(timedelta(hours=1))
        status = await handle.query("status")
    rows = await attempts(db, "A-FLAKY")
    assert [(r.step, r.outcome) for r in rows] == [("voice_robot", "no_answer")]
    assert len(voice.calls) == 2 and len(set(voice.calls)) == 1
    assert status["next_action"] == "human_call"


async def test_a_long_case_continues_as_new_and_its_histories_replay(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(10, 0))
    event = default_event("A-LONG", occurred_at=start, simulation={"answers": True, "promises_in_days": 1})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event, history_limit=25)
        first_run = (await handle.describe()).run_id
        await env.sleep(timedelta(days=12))
        status = await handle.query("status")
        latest = env.client.get_workflow_handle(handle.id)
        latest_run = (await latest.describe()).run_id
        histories = [await env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history(),
                     await latest.fetch_history()]
    assert latest_run != first_run  # the case continued as new, carrying its state
    rows = await attempts(db, "A-LONG")
    assert [r.step for r in rows] == ["voice_robot", "human_call", "legal_notice"]
    assert [r["step"] for r in status["ladder"]] == ["voice_robot", "human_call", "legal_notice"]
    replayer = Replayer(workflows=[DelinquentAccountWorkflow], workflow_runner=WORKFLOW_RUNNER)
    for history in histories:
        await replayer.replay_workflow(history)


@pytest.mark.parametrize("runner", ["worker", "full sandbox"])
async def test_recorded_histories_still_replay(runner):
    """Histories committed under tests/histories/ must keep replaying as the workflow changes
    (guard a change with workflow.patched, or it breaks running cases) — with the
    worker's runner, and in the full sandbox, which executes the workflow's
    module afresh for each run under its restrictions: the guard on the
    workflow's code that the worker, passing workflows/ through, does not run."""
    files = sorted((ROOT / "tests" / "histories").glob("*.json"))
    assert files, "no recorded histories"
    replayer = Replayer(workflows=[DelinquentAccountWorkflow],
                        workflow_runner=WORKFLOW_RUNNER if runner == "worker" else STRICT_RUNNER)
    for f in files:
        await replayer.replay_workflow(WorkflowHistory.from_json(f.stem, f.read_text()))
