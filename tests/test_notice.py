"""No adapter outcome wedges a case (SPEC §7): the legal notice is served
again, then by post, and every simulated outcome runs without a failed
workflow task."""

from __future__ import annotations

import json
from datetime import time, timedelta

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from db.models import CaseHistory, ContactAttempt, EvidenceEntry
from tests.helpers import TrackingIngestor, advance_to_local, attempts, default_event, settings_for, uid
from worker import build_worker
from workflows import rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import case_workflow_id

TZ = "Asia/Shanghai"
ADDRESS = {"address": "1 Nanjing Road, Shanghai"}


async def failed_tasks(handle) -> list[str]:
    """The failures of the workflow tasks in a case's history (none, ever)."""
    return [e.workflow_task_failed_event_attributes.failure.message
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


def letters(rows: list[ContactAttempt]) -> list[tuple[str, str, int]]:
    return [(r.channel, r.outcome, r.local_date.toordinal()) for r in rows if r.step.startswith("legal_notice")]


async def test_an_undelivered_letter_is_served_again_then_sent_by_post(running, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    day0 = rules.local_date(start, TZ).toordinal()
    handle = await running.start(default_event("N-POST", occurred_at=start, debtor=ADDRESS,
                                               simulation={"letter_undelivered": True,
                                                           "post_delivered_in_days": 4}))
    await env.sleep(timedelta(days=12))
    status = await handle.query(DelinquentAccountWorkflow.status)
    rows = await attempts(db, "N-POST")
    async with db.sessions() as s:
        evidence = (await s.scalars(select(EvidenceEntry.kind).where(EvidenceEntry.account_id == "N-POST"))).all()
        notes = (await s.scalars(select(CaseHistory.note).where(CaseHistory.account_id == "N-POST"))).all()
    # three electronic tries on consecutive contact days (days 7, 8, 9), then the post
    assert [(c, o, d - day0) for c, o, d in letters(rows)] == [
        ("letter", "undelivered", 7), ("letter", "undelivered", 8), ("letter", "undelivered", 9),
        ("post", "posted", 9)]
    post = rows[-1]
    delivered = post.attempted_at + timedelta(days=4)
    # the 15-day response window starts at delivery; the delivery is a demand (limitation restarts)
    assert status.stage == "awaiting_response" and status.next_action == "legal_branch"
    assert status.next_action_at == delivered + timedelta(days=15)
    assert status.limitation_expires_on == rules.limitation_expiry(rules.local_date(delivered, TZ)).isoformat()
    assert [e.step for e in status.ladder][-4:] == ["legal_notice"] * 3 + ["legal_notice_post"]
    assert post.receipt_ref.startswith("post-") and "legal_notice_posted" in evidence
    assert any("try 1 of 3; served again" in n for n in notes)
    assert any(n.startswith("day 7 legal notice letter: undelivered; sent by post") for n in notes)
    assert await failed_tasks(handle) == []


async def test_a_letter_delivered_at_the_second_try_is_not_posted(running, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    day0 = rules.local_date(start, TZ).toordinal()
    handle = await running.start(default_event("N-AGAIN", occurred_at=start,
                                               simulation={"letter_undelivered_times": 1}))
    await env.sleep(timedelta(days=10))
    status = await handle.query(DelinquentAccountWorkflow.status)
    rows = await attempts(db, "N-AGAIN")
    served = [r for r in rows if r.outcome == "delivered"]
    assert [(c, o, d - day0) for c, o, d in letters(rows)] == [("letter", "undelivered", 7), ("letter", "delivered", 8)]
    assert status.next_action_at == served[0].attempted_at + timedelta(days=15)
    assert await failed_tasks(handle) == []


async def test_a_letter_that_cannot_be_posted_is_escalated_and_the_case_goes_on(running, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    handle = await running.start(default_event("N-NOADDR", occurred_at=start, simulation={"letter_undelivered": True}))
    await env.sleep(timedelta(days=40))
    status = await handle.query(DelinquentAccountWorkflow.status)
    async with db.sessions() as s:
        notes = (await s.scalars(select(CaseHistory.note).where(CaseHistory.account_id == "N-NOADDR"))).all()
    assert any("escalated: the legal notice could not be served (no postal address on file)" in n for n in notes)
    assert status.legal is not None  # the response window passed: the legal branch went on without it
    assert await failed_tasks(handle) == []


async def test_the_letter_attempts_setting_reaches_the_case(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    acct = f"N-ONCE-{uid()}"
    intake = TrackingIngestor(env.client, db, settings_for(db, task_queue, letter_attempts=1))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        await intake.ingest_lines([json.dumps(default_event(acct, occurred_at=start, debtor=ADDRESS,
                                                            simulation={"letter_undelivered": True}))], source="t")
        await env.sleep(timedelta(days=9))
        handle = env.client.get_workflow_handle(case_workflow_id(acct))
        failed = await failed_tasks(handle)
    assert [(c, o) for c, o, _ in letters(await attempts(db, acct))] == [("letter", "undelivered"), ("post", "posted")]
    assert failed == []


# Every simulated outcome of SPEC §7, each in a case of its own.
OUTCOMES: dict[str, dict] = {
    "never answers": {},
    "answers": {"simulation": {"answers": True}, "debtor": ADDRESS},
    "promises": {"simulation": {"answers": True, "promises_in_days": 2}},
    "pays at the robot": {"simulation": {"pays_after": "voice_robot"}},
    "pays part to a person": {"simulation": {"pays_after": "human_call", "pays_amount": "100.00"}},
    "letter undelivered, posted": {"simulation": {"letter_undelivered": True}, "debtor": ADDRESS},
    "letter undelivered, no address": {"simulation": {"letter_undelivered": True}},
    "letter undelivered, post returned": {"simulation": {"letter_undelivered": True, "post_returned": True},
                                          "debtor": ADDRESS},
    "letter undelivered once": {"simulation": {"letter_undelivered_times": 1}},
    "court rejects": {"simulation": {"answers": True, "court_rejects_payment_order": True}, "debtor": ADDRESS},
    "objects": {"simulation": {"answers": True, "objects_to_payment_order": True}, "debtor": ADDRESS},
    "preservation denied": {"simulation": {"preservation_granted": False}},
    "preservation late": {"simulation": {"preservation_responds_in_hours": 60}},
    "skip trace finds a number": {"simulation": {"skip_trace_phone": "+86 139 0000 0001"}},
    "agent misconduct": {"simulation": {"answers": True, "agent_misconduct": True}},
    "grade I with income": {"grade": "I", "debtor": {"monthly_disposable_income": "300.00"}},
}


async def test_no_simulated_outcome_fails_a_workflow_task(running, env, db):
    start = await advance_to_local(env, TZ, time(10, 0))
    handles = {}
    for n, (name, extra) in enumerate(OUTCOMES.items()):
        handles[name] = await running.start(default_event(f"N-ALL-{n}", occurred_at=start, **extra))
    await env.sleep(timedelta(days=90))
    failed = {name: await failed_tasks(h) for name, h in handles.items()}
    ended = {name: await h.query(DelinquentAccountWorkflow.status) for name, h in handles.items()}
    assert {name: f for name, f in failed.items() if f} == {}
    assert {name: st.stage for name, st in ended.items() if st.closed_reason is None} == {}  # each ran its course
    assert ended["pays at the robot"].closed_reason == "paid"
    assert ended["answers"].closed_reason == "enforcement_requested"
    assert ended["court rejects"].closed_reason == ended["objects"].closed_reason == "referred_to_litigation"
    assert ended["letter undelivered, posted"].ladder[-1].step == "legal_notice_post"
