"""What the tests share: builders for events and cases, settings, adapters
that count, and the case runner behind the ``running`` fixture (conftest).
Test modules import from here, never from each other."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.adapters import SimulatedVoiceRobot
from db.models import ContactAttempt
from db.session import Database
from intake.events import canonical, parse_event
from intake.ingest import Ingestor, to_default_event
from support.settings import Settings, load_settings
from workflows import rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import CaseEvent, CaseInput, case_workflow_id


def default_event(account_id: str, *, occurred_at: datetime, debtor_id: str | None = None,
                  tz: str = "Asia/Shanghai", amount: str = "1200.50", due: str | None = None,
                  currency: str = "CNY", simulation: dict | None = None, **extra: Any) -> dict:
    debtor = {
        "debtor_id": debtor_id or f"D-{account_id}", "phone": "+86 138 0013 8000", "timezone": tz,
        "region": extra.pop("region", "CN-GD"), "age": extra.pop("age", 41),
        "simulation": simulation or {},
    }
    debtor.update(extra.pop("debtor", {}))
    # Dates relative to the test server's clock, which only moves forward
    # (awaiting a finished case's result can skip it years ahead).
    due = due or (occurred_at.date() - timedelta(days=45)).isoformat()
    return {
        "event_id": f"ev-{uuid.uuid4().hex[:8]}", "type": "account.defaulted",
        "occurred_at": occurred_at.isoformat(), "account_id": account_id, "amount_due": amount,
        "currency": currency, "due_date": due, "contract_id": f"K-{account_id}", "debtor": debtor, **extra,
    }


def case_input(event: dict, **kw: Any) -> CaseInput:
    """The input of a case started directly (not through the intake, which
    writes the debtor's row and keeps the contact details out of the input):
    like a case started before that, it carries them, and open_case writes
    the row from them."""
    line = json.dumps(event)
    parsed = parse_event(line)
    d = parsed.debtor
    default = to_default_event(parsed)
    default.debtor = dataclasses.replace(
        default.debtor, phone=d.phone, address=d.address, monthly_disposable_income=d.monthly_disposable_income,
        simulation=dict(d.simulation))
    default.canonical_json = canonical(line)
    return CaseInput(event=default, **kw)


def uid() -> str:
    return uuid.uuid4().hex[:8]


STARTED: list = []  # handles to terminate after each test (see conftest)


async def start_case(env: WorkflowEnvironment, task_queue: str, event: dict, **kw: Any):
    handle = await env.client.start_workflow(
        DelinquentAccountWorkflow.run, case_input(event, **kw), id=case_workflow_id(event["account_id"]) + "-" +
        uuid.uuid4().hex[:6], task_queue=task_queue,
    )
    STARTED.append(handle)
    return handle


async def signal(handle, env: WorkflowEnvironment, kind: str, **data: Any) -> None:
    """Send the case an event of type ``kind`` now (test server time)."""
    await handle.signal(DelinquentAccountWorkflow.event,
                        CaseEvent(f"ev-{uid()}", kind, await env.get_current_time(), data))


def settings_for(db: Database, task_queue: str, **overrides: Any) -> Settings:
    """The settings a process pointed at this test's database and task queue would load."""
    return load_settings(database_url=db.url, task_queue=task_queue, **overrides)


class CountingVoice(SimulatedVoiceRobot):
    """The simulated voice robot, counting its calls; may fail the first one or take its time."""

    def __init__(self, fail_first: bool = False, delay: float = 0.0):
        self.calls: list[str] = []
        self.fail_first = fail_first
        self.delay = delay

    async def call(self, *, key, phone, script, profile):
        self.calls.append(key)
        await asyncio.sleep(self.delay)
        if self.fail_first and len(self.calls) == 1:
            raise ConnectionError("call centre link dropped mid-call")
        return await super().call(key=key, phone=phone, script=script, profile=profile)


async def until(condition, what: str, seconds: float = 30.0):
    """Poll ``condition()`` (async) every 0.1 s of real time until it returns something true, and return
    that; fail naming ``what`` (a time-skipping server's clock stands still meanwhile)."""
    for _ in range(int(seconds * 10)):
        found = await condition()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds:.0f} s: {what}")


async def advance_to_local(env: WorkflowEnvironment, tz: str, at: time) -> datetime:
    """Skip the test server's clock forward to the next ``at`` in ``tz``; returns now (UTC)."""
    now = await env.get_current_time()
    local = rules.local_datetime(now, tz)
    target = rules.local_instant(local.date(), at, tz)
    if target <= now:
        target = rules.local_instant(local.date() + timedelta(days=1), at, tz)
    await env.sleep(target - now)
    return await env.get_current_time()


async def attempts(db: Database, account_id: str | None = None) -> list[ContactAttempt]:
    async with db.sessions() as s:
        q = select(ContactAttempt).order_by(ContactAttempt.attempted_at, ContactAttempt.id)
        if account_id:
            q = q.where(ContactAttempt.account_id == account_id)
        return list((await s.scalars(q)).all())


class TrackingIngestor(Ingestor):
    """An Ingestor whose started cases are terminated after the test."""

    async def _dispatch(self, ev, line):
        result = await super()._dispatch(ev, line)
        if ev.type == "account.defaulted":
            STARTED.append(self.client.get_workflow_handle(case_workflow_id(ev.account_id)))
        return result


def ingestor(env: WorkflowEnvironment, db: Database, task_queue: str, **kw: Any) -> TrackingIngestor:
    return TrackingIngestor(env.client, db, settings_for(db, task_queue), **kw)


def point_cli_at(monkeypatch, env: WorkflowEnvironment, db: Database | None = None,
                 task_queue: str | None = None) -> None:
    """Environment for ``starter.py`` commands run in-process against a test server and database."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    if db is not None:
        monkeypatch.setenv("DATABASE_URL", db.url)
    if task_queue is not None:
        monkeypatch.setenv("COLLECTIONS_TASK_QUEUE", task_queue)
