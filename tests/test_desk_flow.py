"""People in the loop (SPEC §8), end to end on the time-skipping server and a
real database: cases open work items, people work them through
desk.store, and the cases move as the simulated adapters would move them."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.models import Case, CaseHistory, ComplianceIncident, ContactAttempt, DeskAction, Payment, WorkItem
from desk import operators
from desk.store import Conflict, DeskStore, Entry, Forbidden, Invalid, NotFound
from intake.events import parse_event
from intake.ingest import Ingestor, to_default_event
from intake.protections import Protections
from tests.helpers import (
    STARTED, advance_to_local, attempts, case_input, default_event, settings_for, start_case, uid, until,
)
from worker import build_worker
from workflows import rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import case_workflow_id

TZ = "Asia/Shanghai"


async def items(db, account_id: str | None, **where) -> list[WorkItem]:
    async with db.sessions() as s:
        q = select(WorkItem).where(WorkItem.account_id.is_(None) if account_id is None else
                                   WorkItem.account_id == account_id).order_by(WorkItem.id)
        for k, v in where.items():
            q = q.where(getattr(WorkItem, k) == v)
        return list((await s.scalars(q)).all())


async def an_item(db, account_id: str, **where) -> WorkItem:
    async def found():
        rows = await items(db, account_id, **where)
        return rows[-1] if rows else None
    return await until(found, f"a work item of {account_id} with {where}")


async def notes(db, account_id: str) -> list[tuple[str, str | None]]:
    async with db.sessions() as s:
        rows = (await s.scalars(select(CaseHistory).where(CaseHistory.account_id == account_id)
                                .order_by(CaseHistory.revision))).all()
    return [(r.note or "", r.actor) for r in rows]


def store_for(env, db, task_queue, **settings) -> DeskStore:
    return DeskStore(db, settings_for(db, task_queue, **settings), env.client, clock=env.get_current_time)


@pytest.fixture
async def people(db):
    await operators.add_operator(db, "alice", "agent", ["general"])
    await operators.add_operator(db, "bob", "agent", ["general"])
    await operators.add_operator(db, "olga", "agent", ["team-b"])
    await operators.add_operator(db, "lee", "legal")
    await operators.add_operator(db, "cora", "compliance")
    await operators.add_operator(db, "sam", "supervisor")


async def day3_task(env, db, task_queue, account: str, **event_kw):
    """A case for ``account`` started at 10:00 debtor-local, skipped to day 3 11:00: its human call task open."""
    start = await advance_to_local(env, TZ, time(10, 0))
    handle = await start_case(env, task_queue, default_event(account, occurred_at=start, tz=TZ, **event_kw),
                              desk_steps=["human_call"])
    await env.sleep(timedelta(days=3, hours=1))
    return handle, start, await an_item(db, account, kind="human_call", status="open")


async def test_the_human_call_appears_on_day_3_in_the_window_expires_at_22_and_comes_back(env, db, task_queue,
                                                                                          people):
    account = f"A-DAY3-{uid()}"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle, start, item = await day3_task(env, db, task_queue, account)
        day3 = rules.local_date(start, TZ) + timedelta(days=3)
        assert rules.local_datetime(item.window_start, TZ).date() == day3
        assert rules.local_datetime(item.window_end, TZ) == rules.local_datetime(
            rules.local_instant(day3, time(22, 0), TZ), TZ)
        assert item.team_id == "general"
        # nobody dialled the human call automatically
        assert [r.step for r in await attempts(db, account)] == ["voice_robot"]
        queue = await store.list_tasks("alice")
        mine = [t for t in queue if t.id == item.id]
        assert mine and mine[0].window_local.endswith(f"{day3} 22:00 {TZ}")
        assert mine[0].calls_left == 3
        assert item.id not in [t.id for t in await store.list_tasks("olga")]  # another team's agent

        await env.sleep(timedelta(hours=12))  # 23:00: the task is over
        expired = await until(lambda: items(db, account, id=item.id, status="expired"), "the task expired")
        assert expired[0].detail["closed"] == "expired"
        with pytest.raises(Conflict, match=f"expired at {day3} 22:00 {TZ}"):
            await store.claim("alice", item.id)

        await env.sleep(timedelta(hours=10))  # 09:00 the next day
        again = await an_item(db, account, kind="human_call", status="open")
        assert again.id != item.id
        opened = rules.local_datetime(again.window_start, TZ)
        assert (opened.date(), opened.strftime("%H:%M")) == (day3 + timedelta(days=1), "08:00")
        history = [n for n, _ in await notes(db, account)]
        assert sum("expired unworked" in n for n in history) == 1
        status = await handle.query("status")
        assert status["next_action"] == "human_call"  # the ladder did not skip it
        assert [r.step for r in await attempts(db, account)] == ["voice_robot"]


async def test_a_promise_defers_the_case_to_the_day_after_it(env, db, task_queue, people):
    account = f"A-PROM-{uid()}"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle, start, item = await day3_task(env, db, task_queue, account)
        claimed = await store.claim("alice", item.id)
        assert claimed.status == "claimed" and claimed.claimed_by == "alice"
        row = (await attempts(db, account))[-1]
        assert (row.step, row.channel, row.outcome) == ("human_call", "human", "dialing")  # the slot is reserved
        promise = rules.local_date(start, TZ) + timedelta(days=8)
        done = await store.complete("alice", item.id, Entry("answered", promise_date=promise, note="Will pay."))
        assert done.case is not None and done.case.stage == "promise_to_pay"
        assert rules.local_date(done.case.next_action_at, TZ) == promise + timedelta(days=1)
        assert f"promise to pay by {promise}" in done.effect
        status = await handle.query("status")
    assert status["promised_date"] == promise.isoformat()
    row = (await attempts(db, account))[-1]
    assert (row.outcome, row.connected, row.promised_date, row.transcript) == ("answered", True, promise, "Will pay.")
    assert [actor for note, actor in await notes(db, account) if note.startswith("day 3 human call: answered")] == [
        "alice"]  # the case history names the operator
    async with db.sessions() as s:
        audit = (await s.scalars(select(DeskAction).where(DeskAction.work_item_id == item.id)
                                 .order_by(DeskAction.id))).all()
    assert [(a.operator, a.action, a.result) for a in audit] == [("alice", "claim", "done"),
                                                                 ("alice", "complete", "done")]


async def test_a_payment_on_the_call_lowers_the_balance_once(env, db, task_queue, people):
    account = f"A-PAID-{uid()}"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle, _, item = await day3_task(env, db, task_queue, account, amount="1200.50")
        await store.claim("bob", item.id)
        done = await store.complete("bob", item.id, Entry("answered", paid="200.50"))
        assert done.case.outstanding == "1000.00"
        with pytest.raises(Conflict, match="already completed"):
            await store.complete("bob", item.id, Entry("answered", paid="200.50"))
        status = await handle.query("status")
    assert status["outstanding"] == "1000.00"
    async with db.sessions() as s:
        paid = (await s.scalars(select(Payment).where(Payment.account_id == account))).all()
        case = await s.get(Case, account)
    assert [(p.payment_id, p.amount, p.source) for p in paid] == [
        (f"call-case-{account}:human_call:2", Decimal("200.50"), "call")]
    assert case.outstanding == Decimal("1000.00")


async def test_two_claims_racing_for_the_last_call_slot_one_wins(env, db, task_queue, people):
    """Two accounts of one debtor, each with its day-3 task; one connected call left today (the cap is 1):
    two agents claim at once, one gets the slot and the other is told why not; the same task claimed twice
    by two agents: one wins."""
    debtor, accounts = f"D-{uid()}", [f"A-RACE{i}-{uid()}" for i in range(2)]
    store = store_for(env, db, task_queue, max_connected_calls=1)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        start = await advance_to_local(env, TZ, time(10, 0))
        for account in accounts:
            await start_case(env, task_queue, default_event(account, occurred_at=start, tz=TZ, debtor_id=debtor),
                             desk_steps=["human_call"])
        await env.sleep(timedelta(days=3, hours=1))
        first, second = [await an_item(db, a, kind="human_call", status="open") for a in accounts]
        results = await asyncio.gather(store.claim("alice", first.id), store.claim("bob", second.id),
                                       return_exceptions=True)
        won = [r for r in results if not isinstance(r, Exception)]
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(won) == 1 and len(lost) == 1
        assert isinstance(lost[0], Conflict) and "connected calls today (cap 1)" in lost[0].message
        async with db.sessions() as s:
            dialing = await s.scalar(select(func.count()).select_from(ContactAttempt).where(
                ContactAttempt.debtor_id == debtor, ContactAttempt.outcome == "dialing"))
        assert dialing == 1
        # the winner releases: the slot is free again, and two agents race for the same task
        loser_task = second.id if won[0].id == first.id else first.id
        await store.release(won[0].claimed_by, won[0].id)
        same = await asyncio.gather(store.claim("alice", loser_task), store.claim("bob", loser_task),
                                    return_exceptions=True)
        assert sorted(type(r).__name__ for r in same) == ["Conflict", "Task"]
        assert "already claimed by" in next(r for r in same if isinstance(r, Conflict)).message


async def test_a_skip_trace_review_with_a_new_number_resumes_the_ladder(env, db, task_queue, people):
    account, number = f"A-TRACE-{uid()}", "+86 139 1111 2222"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        start = await advance_to_local(env, TZ, time(10, 0))
        handle = await start_case(env, task_queue, default_event(account, occurred_at=start, tz=TZ, grade="III"),
                                  desk_steps=["human_call", "skip_trace_review"])
        item = await an_item(db, account, kind="skip_trace_review", status="open")
        assert (await handle.query("status"))["stage"] == "skip_tracing"
        with pytest.raises(Forbidden, match="only compliance staff or supervisors work skip_trace_review"):
            await store.claim("alice", item.id)
        await store.claim("cora", item.id)
        with pytest.raises(Invalid, match="a found number is needed"):
            await store.complete("cora", item.id, Entry("found", phone="call me"))
        done = await store.complete("cora", item.id, Entry("found", phone=number))
        assert done.case.stage == "wake_up_ladder"
        await until(lambda: attempts(db, account), "the ladder's first call")
        history = [e async for e in handle.fetch_history_events()]
    assert (await attempts(db, account))[0].phone_masked == "***2222"  # the new number was dialled
    assert ("skip trace review: a new number on file", "cora") in await notes(db, account)
    async with db.sessions() as s:
        row = await s.get(WorkItem, item.id)
    assert row.detail["phone"] == "***2222"
    assert not any("1111" in str(e) for e in history)  # the number never reached Temporal


async def test_a_compliance_review_clears_a_tripped_team_and_its_cases_resume(own_env, db, task_queue, people):
    env = own_env
    team, account = f"team-{uid()}", f"A-TEAM-{uid()}"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        start = await advance_to_local(env, TZ, time(10, 0))
        handle = await env.client.start_workflow(  # under its own id: the team's events reach it by that
            DelinquentAccountWorkflow.run, case_input(default_event(account, occurred_at=start, tz=TZ, team_id=team)),
            id=case_workflow_id(account), task_queue=task_queue)
        STARTED.append(handle)
        await until(lambda: _case_row(db, account), "the case's row")
        protections = Protections(env.client, db, threshold=5)
        for i in range(6):
            await protections.file_complaint(f"cmp-{uid()}", account, team, "rude", start)
        await until(lambda: _paused(handle, "team_suspended"), "the team's case paused")
        review = await an_item(db, None, kind="compliance_review", team_id=team)
        assert review.status == "open" and review.detail["complaints"] == 6
        with pytest.raises(Forbidden):
            await store.claim("lee", review.id)  # legal staff do not review teams
        await store.claim("cora", review.id)
        done = await store.complete("cora", review.id, Entry("cleared", note="complaints reviewed"))
        assert f"team {team} cleared" in done.effect
        await until(lambda: _paused(handle, None), "the case resumed")

        async def cleared_by_cora():
            return (f"team {team} cleared by review: resumed", "cora") in await notes(db, account)
        await until(cleared_by_cora, "the clearance in the case history, naming the reviewer")


async def _case_row(db, account):
    async with db.sessions() as s:
        return await s.get(Case, account)


async def _paused(handle, kind):
    paused = (await handle.query("status"))["paused_by"]
    return kind in paused if kind else not paused


async def test_legal_staff_enter_the_courts_answers_and_the_payment_order_clocks_run(own_env, db, task_queue,
                                                                                    people):
    """COLLECTIONS_COURT=desk: no docket is read; the answers legal staff enter drive the track, and a court
    that does not answer within its statutory days is escalated as before."""
    env = own_env
    account = f"L-DESK-{uid()}"
    store = store_for(env, db, task_queue)

    async def enter(outcome: str, ref: str):
        item = await an_item(db, account, kind="court_entry", status="open")
        assert outcome in item.detail["expects"]
        assert item.id in [t.id for t in await store.list_tasks("lee", kind="court_entry")]
        await store.claim("lee", item.id)
        return item, await store.complete("lee", item.id, Entry(outcome, reference=ref))

    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        start = await advance_to_local(env, TZ, time(10, 0))
        handle = await start_case(env, task_queue, default_event(
            account, occurred_at=start, tz=TZ, simulation={"answers": True},
            debtor={"address": "88 Century Avenue, Pudong, Shanghai"}), desk_steps=["court_entry"])
        await env.sleep(timedelta(days=23))  # the letter's window is over: the payment order is applied for
        first = await an_item(db, account, kind="court_entry", status="open")
        assert first.detail["expects"] == ["accepted", "rejected"] and first.team_id is None
        await env.sleep(timedelta(days=6))  # nobody enters the court's decision: overdue, escalated
        await until(lambda: _escalated(db, account), "the late court escalated")
        item, done = await enter("accepted", "(2026) Hu 0115 Min Du 17")
        assert done.case.next_action == "payment_order_issued"
        item, done = await enter("order_served", "(2026) Hu 0115 Min Du 17")
        served_at = (await _step_rows(db, account))["order_served"]
        assert done.case.next_action == "objection_window_ends"
        objection = await an_item(db, account, kind="court_entry", status="open")
        assert objection.detail["expects"] == ["objected"]
        await env.sleep(timedelta(days=16))  # nobody objected within the 15 days
        status = await handle.result()
    steps = await _step_rows(db, account)
    assert status.closed_reason == "enforcement_requested"
    assert served_at + timedelta(days=15) <= steps["enforcement"] < served_at + timedelta(days=16)
    assert [i.status for i in await items(db, account, kind="court_entry")] == ["done", "done", "expired"]
    assert any(n.startswith("court answer entered by lee: accepted") and a == "lee" for n, a in await notes(db, account))


async def _step_rows(db, account):
    from db.models import LegalStepRow
    async with db.sessions() as s:
        rows = (await s.scalars(select(LegalStepRow).where(LegalStepRow.account_id == account))).all()
    return {r.step: r.at for r in rows}


async def _escalated(db, account):
    return "late_applied" in await _step_rows(db, account)


async def _snapshot(db, account):
    async with db.sessions() as s:
        work = [(i.id, i.status, i.claimed_by, i.outcome, i.attempt_key, i.detail)
                for i in (await s.scalars(select(WorkItem).where(WorkItem.account_id == account))).all()]
        calls = [(r.idempotency_key, r.outcome, r.promised_date, r.paid_amount)
                 for r in (await s.scalars(select(ContactAttempt).where(ContactAttempt.account_id == account))).all()]
        paid = await s.scalar(select(func.count()).select_from(Payment).where(Payment.account_id == account))
        incidents = await s.scalar(select(func.count()).select_from(ComplianceIncident))
    return work, calls, paid, incidents


async def _refusals(db) -> list[tuple[str, str, str | None]]:
    async with db.sessions() as s:
        rows = (await s.scalars(select(DeskAction).where(DeskAction.result == "refused").order_by(DeskAction.id))).all()
    return [(r.operator, r.action, r.detail) for r in rows]


async def test_every_refusal_says_why_and_changes_nothing(env, db, task_queue, people):
    account = f"A-BAD-{uid()}"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle, start, item = await day3_task(env, db, task_queue, account)
        today = rules.local_date(await env.get_current_time(), TZ)
        n = item.id

        async def refused(error, message, call):
            before, audit_before = await _snapshot(db, account), len(await _refusals(db))
            with pytest.raises(error) as caught:
                await call
            assert message in caught.value.message, caught.value.message
            assert await _snapshot(db, account) == before  # nothing changed
            assert len(await _refusals(db)) == audit_before + 1  # but the refusal is on record

        await refused(NotFound, "no task '12abc': a task id is a number", store.claim("alice", "12abc"))
        await refused(NotFound, "no task 99999999", store.claim("alice", 99999999))
        await refused(NotFound, "no operator named 'mallory'", store.claim("mallory", n))
        await refused(Forbidden, "this task belongs to team general; olga works for team-b", store.claim("olga", n))
        await refused(Forbidden, "only agents or supervisors work human_call tasks; lee's role is legal",
                      store.claim("lee", n))
        await refused(Conflict, f"task {n} is not claimed: claim it first",
                      store.complete("alice", n, Entry("answered")))
        await store.claim("alice", n)
        await refused(Conflict, f"task {n} is already claimed by alice", store.claim("bob", n))
        await refused(Conflict, f"task {n} is already claimed by you", store.claim("alice", n))
        await refused(Conflict, f"task {n} is claimed by alice, not by bob", store.release("bob", n))
        await refused(Invalid, f"promise date {today - timedelta(days=1)} is in the past",
                      store.complete("alice", n, Entry("answered", promise_date=today - timedelta(days=1))))
        for bad in ("-5", "abc", "1.234", "0"):
            await refused(Invalid, f"payment {bad!r} is not accepted: a positive decimal amount",
                          store.complete("alice", n, Entry("answered", paid=bad)))
        await refused(Invalid, "outcome 'objected' is not accepted for task", store.complete(
            "alice", n, Entry("objected")))
        await refused(Invalid, "a promise or a payment needs the outcome 'answered', not 'no_answer'",
                      store.complete("alice", n, Entry("no_answer", promise_date=today + timedelta(days=3))))
        await refused(Invalid, "--reference does not apply to a human_call task",
                      store.complete("alice", n, Entry("answered", reference="X-1")))
        done = await store.complete("alice", n, Entry("refused", note="We will tell your employer."))
        assert done.warning and "compliance incident" in done.warning  # a blocked note raises an incident
        await refused(Conflict, f"task {n} is already completed (refused, by alice)",
                      store.complete("alice", n, Entry("answered")))
        await refused(Conflict, f"task {n} is already completed", store.release("alice", n))
    assert [(o, a) for o, a, _ in await _refusals(db)][:3] == [("alice", "claim")] * 2 + [("mallory", "claim")]
    async with db.sessions() as s:
        incident = (await s.scalars(select(ComplianceIncident).where(ComplianceIncident.account_id == account))).one()
        review = (await s.scalars(select(WorkItem).where(WorkItem.kind == "compliance_review",
                                                         WorkItem.account_id == account))).one()
    assert incident.source == "transcript" and review.status == "open"


async def test_a_compliance_incident_on_a_call_opens_a_review(env, db, task_queue, people):
    account = f"A-MISC-{uid()}"
    store = store_for(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        start = await advance_to_local(env, TZ, time(10, 0))
        await start_case(env, task_queue, default_event(
            account, occurred_at=start, tz=TZ, team_id="team-b",
            simulation={"answers": True, "agent_misconduct": True}))  # the simulated call centre's agent threatens
        await env.sleep(timedelta(days=3, hours=1))
        review = await an_item(db, account, kind="compliance_review")
        assert review.team_id == "team-b" and "third_party_contact" in review.detail["kinds"]
        assert [t.id for t in await store.list_tasks("cora", kind="compliance_review")] == [review.id]
        await store.claim("cora", review.id)
        done = await store.complete("cora", review.id, Entry("upheld", note="agent warned"))
    assert done.effect == "review upheld: the incident stands against team team-b"


@pytest.mark.parametrize("settings,team,age,steps", [
    ({}, "team-a", 41, []),  # the default: simulated, nothing goes to people
    ({"call_centre": "desk"}, "team-a", 41, ["human_call", "skip_trace_review"]),
    ({"call_centre": "desk", "court": "desk"}, None, 41, ["human_call", "skip_trace_review", "court_entry"]),
    ({"call_centre": "desk", "desk_teams": "team-a"}, "team-a", 41, ["human_call", "skip_trace_review"]),
    ({"call_centre": "desk", "desk_teams": "team-a"}, "team-b", 41, []),
    ({"call_centre": "desk", "desk_teams": "team-a"}, "team-a", 67, []),  # routed to the dialect team
    ({"call_centre": "desk", "desk_teams": "dialect-cantonese"}, "team-a", 67, ["human_call", "skip_trace_review"]),
])
async def test_the_intake_writes_which_steps_go_to_people_into_the_case(db, task_queue, settings, team, age, steps):
    """Decided once, at intake, for the case's routed team: the case never reads the worker's settings."""
    event = default_event(f"A-CFG-{uid()}", occurred_at=datetime.now(timezone.utc), age=age,
                          debtor={"dialect": "Cantonese"}, **({"team_id": team} if team else {}))
    ingest = Ingestor(None, db, settings_for(db, task_queue, **settings))  # type: ignore[arg-type]
    assert ingest.case_input(to_default_event(parse_event(json.dumps(event)))).desk_steps == steps
