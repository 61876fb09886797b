"""People in the loop (SPEC §8), end to end on the time-skipping server and a
real database: cases open work items, people work them through
desk.store, and the cases move as the simulated adapters would move them."""

from __future__ import annotations

import asyncio
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.models import Case, CaseHistory, ComplianceIncident, ContactAttempt, DeskAction, Payment, WorkItem
from desk import operators
from desk.store import Conflict, DeskError, DeskStore, Entry, Forbidden, Invalid, NotFound
from tests.helpers import advance_to_local, attempts, default_event, settings_for, start_case, uid
from worker import build_worker
from workflows import rules

TZ = "Asia/Shanghai"


async def until(condition, what: str, tries: int = 300):
    """Poll ``condition()`` (async) until it returns something true (the server's clock stands still meanwhile)."""
    for _ in range(tries):
        found = await condition()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def items(db, account_id: str, **where) -> list[WorkItem]:
    async with db.sessions() as s:
        q = select(WorkItem).where(WorkItem.account_id == account_id).order_by(WorkItem.id)
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
