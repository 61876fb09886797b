"""Activities against a real database: exactly-once attempts, caps across
connections, the evidence chain, and masked logs."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from datetime import datetime, time, timedelta

from sqlalchemy import select, update
from temporalio.testing import ActivityEnvironment

from activities.adapters import Adapters, SimulatedCallCentre, SimulatedElectronicService, SimulatedSkipTracer
from activities.case_activities import CaseActivities
from support.logs import configure_logging, mask_text
from db import evidence
from db.models import ComplianceIncident, EvidenceEntry
from db.session import Database
from tests.helpers import CountingVoice, attempts, case_input, default_event
from workflows import rules
from workflows.model import ContactRequest, Debtor, OpenCaseRequest

SHANGHAI_10AM = rules.local_instant(datetime(2026, 11, 24).date(), time(10, 0), "Asia/Shanghai")
PHONE = "+86 138 0013 8000"


def adapters(voice=None) -> Adapters:
    return Adapters(voice or CountingVoice(), SimulatedCallCentre(), SimulatedElectronicService(), SimulatedSkipTracer())


def activity_env(at: datetime = SHANGHAI_10AM) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=at, scheduled_time=at)
    return env


def request(account: str, debtor_id: str = "D-1", step: str = "voice_robot", attempt: int = 1,
            simulation: dict | None = None) -> ContactRequest:
    return ContactRequest(
        account_id=account, step=step, attempt_no=attempt,
        debtor=Debtor(debtor_id=debtor_id, phone=PHONE, timezone="Asia/Shanghai", region="CN-GD", age=40,
                      simulation=simulation or {"answers": True}),
        team_id=None, amount="100.00", currency="CNY", contract_id="K-1",
    )


async def test_a_completed_attempt_retried_returns_its_outcome_without_a_second_call(db):
    voice = CountingVoice()
    acts = CaseActivities(db, adapters(voice))
    first = await activity_env().run(acts.contact_debtor, request("A-1"))
    retry = await activity_env(SHANGHAI_10AM + timedelta(minutes=3)).run(acts.contact_debtor, request("A-1"))
    assert first.outcome == retry.outcome == "answered"
    assert retry.attempted_at == first.attempted_at
    assert len(voice.calls) == 1
    assert len(await attempts(db, "A-1")) == 1


async def test_a_call_interrupted_mid_way_is_finished_by_the_retry_with_one_row(db):
    voice = CountingVoice(fail_first=True)
    acts = CaseActivities(db, adapters(voice))
    try:
        await activity_env().run(acts.contact_debtor, request("A-2"))
    except ConnectionError:
        pass
    [in_flight] = await attempts(db, "A-2")
    assert in_flight.outcome == "dialing"
    result = await activity_env(SHANGHAI_10AM + timedelta(seconds=10)).run(acts.contact_debtor, request("A-2"))
    rows = await attempts(db, "A-2")
    assert result.outcome == "answered"
    assert len(rows) == 1 and rows[0].outcome == "answered"
    assert voice.calls == [voice.calls[0]] * 2  # the same idempotency key both times


async def test_the_daily_cap_holds_for_concurrent_calls_from_separate_connections(database_url):
    """Five accounts of one debtor call at once, each through its own engine
    (as separate worker processes would): exactly three connect today."""
    dbs = [Database(database_url) for _ in range(5)]
    try:
        voice = CountingVoice(delay=0.05)
        results = await asyncio.gather(*(
            activity_env().run(CaseActivities(dbs[i], adapters(voice)).contact_debtor,
                               request(f"A-C{i}", debtor_id="D-SHARED"))
            for i in range(5)
        ))
        outcomes = sorted(r.outcome for r in results)
        assert outcomes == ["answered"] * 3 + ["capped"] * 2
        capped = [r for r in results if r.outcome == "capped"]
        opening = rules.local_instant(datetime(2026, 11, 25).date(), time(8, 0), "Asia/Shanghai")
        assert all(r.retry_at == opening for r in capped)
        assert all("connected calls" in r.detail for r in capped)
        rows = await attempts(dbs[0])
        assert sum(r.connected for r in rows) == 3 and len(voice.calls) == 3
    finally:
        for d in dbs:
            await d.dispose()


async def test_six_dial_attempts_per_number_per_day(db):
    acts = CaseActivities(db, adapters())
    outcomes = []
    for i in range(7):
        r = await activity_env(SHANGHAI_10AM + timedelta(minutes=i)).run(
            acts.contact_debtor, request(f"A-N{i}", debtor_id=f"D-N{i}", simulation={"answers": False}))
        outcomes.append(r.outcome)
    assert outcomes == ["no_answer"] * 6 + ["capped"]


async def test_no_call_is_placed_in_quiet_hours_even_if_the_activity_runs_then(db):
    voice = CountingVoice()
    late = rules.local_instant(datetime(2026, 11, 24).date(), time(22, 0), "Asia/Shanghai")
    result = await activity_env(late).run(CaseActivities(db, adapters(voice)).contact_debtor, request("A-Q"))
    assert result.outcome == "quiet_hours"
    assert result.retry_at == rules.local_instant(datetime(2026, 11, 25).date(), time(8, 0), "Asia/Shanghai")
    assert voice.calls == [] and await attempts(db, "A-Q") == []


async def test_agents_of_60_plus_debtors_are_the_dialect_team_and_misconduct_raises_an_incident(db):
    acts = CaseActivities(db, adapters())
    req = request("A-OLD", step="human_call", simulation={"answers": True, "agent_misconduct": True})
    req.debtor.age, req.debtor.dialect = 67, "Cantonese"
    result = await activity_env().run(acts.contact_debtor, req)
    assert result.team_id == "dialect-cantonese"
    async with db.sessions() as s:
        incident = await s.scalar(select(ComplianceIncident))
    assert incident.source == "transcript" and "third_party_contact" in incident.kinds
    assert incident.team_id == "dialect-cantonese"


async def test_evidence_chain_verifies_and_detects_tampering(db):
    acts = CaseActivities(db, adapters())
    env = activity_env()
    for i in range(4):
        ev = case_input(default_event(f"A-E{i}", occurred_at=SHANGHAI_10AM)).event
        await env.run(acts.open_case, OpenCaseRequest(event=ev, grade="II", limitation_expires_on="2029-10-10"))
    # a retried append is not a second entry
    await env.run(acts.open_case, OpenCaseRequest(event=ev, grade="II", limitation_expires_on="2029-10-10"))
    report = await evidence.verify_chain(db)
    assert report.ok and report.entries == 4
    async with db.sessions() as s:
        rows = (await s.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq))).all()
    assert rows[0].prev_sha256 == evidence.GENESIS
    assert all(b.prev_sha256 == a.sha256 for a, b in zip(rows, rows[1:]))
    async with db.transaction() as s:
        await s.execute(update(EvidenceEntry).where(EvidenceEntry.seq == rows[2].seq).values(fingerprint="0" * 64))
    broken = await evidence.verify_chain(db)
    assert not broken.ok and broken.broken_at_seq == rows[2].seq


async def test_no_raw_phone_number_or_id_reaches_a_log_line(db):
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        acts = CaseActivities(db, adapters())
        await activity_env().run(acts.contact_debtor, request("A-LOG"))
        from support.logs import get_logger
        get_logger(account_id="A-LOG").info(
            "debtor details", phone=PHONE, name="Wang Xiaoming", id_number="110101199003074578",
            note=f"debtor said call me on {PHONE} or 13912345678; ID 110101199003074578",
        )
    finally:
        configure_logging()
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line.get("event") == "contact" for line in lines)
    for raw in ("13800138000", "138 0013 8000", "13912345678", "110101199003074578", "Xiaoming"):
        assert raw not in text.replace("+86 ", ""), raw
    assert "***8000" in text


def test_mask_text_keeps_dates_and_amounts():
    assert mask_text("due 2026-09-30 amount 1200.50") == "due 2026-09-30 amount 1200.50"
    assert mask_text("call +86 138 0013 8000 now") == "call ***8000 now"
