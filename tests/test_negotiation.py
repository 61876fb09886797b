"""Grade I negotiation (SPEC §2.2): the plan offered, accepted, paid or broken."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError

from db.models import InstallmentPlan
from tests.helpers import advance_to_local, attempts, default_event, signal, start_case
from worker import build_worker
from workflows import rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import PlanRequest
from workflows.status import PlanStatus

TZ = "Asia/Shanghai"
INCOME = {"monthly_disposable_income": "500.00"}


async def plan_rows(db, account_id: str) -> list[InstallmentPlan]:
    async with db.sessions() as s:
        return list((await s.scalars(select(InstallmentPlan).where(InstallmentPlan.account_id == account_id))).all())


async def sleep_until_local(env, day: date, at: time) -> None:
    target = rules.local_instant(day, at, TZ)
    await env.sleep(target - await env.get_current_time())


async def test_a_plan_paid_on_time_closes_the_case_paid_without_more_contact(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("N-PAID", occurred_at=start, amount="1000.00", grade="I", debtor=INCOME)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(hours=1))
        offered = await handle.query("status")
        plan = await handle.execute_update("accept_plan", PlanRequest(3), result_type=dict)  # by name: a dict
        during = await handle.query("status")
        for due in plan["schedule"]:
            await sleep_until_local(env, date.fromisoformat(due["due_on"]), time(9, 0))
            await signal(handle, env, "payment.received", account_id="N-PAID", payment_id=f"P-{due['due_on']}",
                         amount=due["amount"])
        await env.sleep(timedelta(hours=1))
        done = await handle.query("status")
    # 30 % of 500 = 150 a month: 7 periods offered
    assert offered["plan_offer"] == {"installment": "150.00", "periods": 7}
    # accepted for at most 3 periods: 150 would need 7, so 1000 / 3 rounded up to the cent
    assert [(d["amount"]) for d in plan["schedule"]] == ["333.34", "333.34", "333.32"]
    today = rules.local_date(start, TZ)
    assert [d["due_on"] for d in plan["schedule"]] == [rules.add_months(today, n).isoformat() for n in (1, 2, 3)]
    assert during["stage"] == "installment" and during["next_action"] == "installment_1"
    assert done["closed_reason"] == "paid" and done["plan"]["status"] == "completed"
    assert all(d["paid"] for d in done["plan"]["schedule"])
    assert [r.step for r in await attempts(db, "N-PAID")] == ["voice_robot"]  # the plan held the ladder
    (row,) = await plan_rows(db, "N-PAID")
    assert row.status == "completed" and str(row.paid) == "1000.00"


# grace 0: the plan breaks the next day, but the part payment on the due date
# was a response, and the human call keeps its 3-day spacing from it.
@pytest.mark.parametrize("grace, call_days_after_due", [(3, 4), (0, 3)])
async def test_a_missed_installment_breaks_the_plan_and_resumes_the_ladder(env, db, task_queue, grace,
                                                                           call_days_after_due):
    start = await advance_to_local(env, TZ, time(10, 0))
    account = f"N-BROKE-{grace}"
    event = default_event(account, occurred_at=start, amount="1000.00", grade="I", debtor=INCOME)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event, installment_grace_days=grace)
        await env.sleep(timedelta(hours=1))
        plan = await handle.execute_update(DelinquentAccountWorkflow.accept_plan, PlanRequest(12))  # typed
        first = plan.schedule[0]
        await sleep_until_local(env, date.fromisoformat(first.due_on), time(9, 0))
        # a part payment is not the installment
        await signal(handle, env, "payment.received", account_id=account, payment_id="P-PART", amount="100.00")
        await env.sleep(timedelta(days=4, hours=12))
        done = await handle.query("status")
    assert isinstance(plan, PlanStatus) and plan.status == "active" and not first.paid
    assert plan.periods == 7 and first.amount == "150.00"
    due = date.fromisoformat(first.due_on)
    human = [r for r in await attempts(db, account) if r.step == "human_call"]
    # the grace, then the ladder resumes where it stood: the human call, that morning
    assert [r.local_date for r in human] == [due + timedelta(days=call_days_after_due)]
    assert rules.local_datetime(human[0].attempted_at, TZ).time() >= time(8, 0)
    assert done["plan"]["status"] == "broken" and done["plan"]["paid"] == "100.00"
    assert done["outstanding"] == "900.00"
    assert (await plan_rows(db, account))[0].status == "broken"


async def test_plan_acceptance_that_breaks_a_rule_is_refused_and_changes_nothing(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("N-REFUSE", occurred_at=start, amount="1000.00", grade="I", debtor=INCOME)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(hours=1))
        before = await handle.query("status")
        for periods, message in ((13, "1 to 12 monthly periods; 13 refused"), (0, "0 refused")):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("accept_plan", PlanRequest(periods))
            assert message in str(refused.value.cause)
        assert await handle.query("status") == before
        # the event path: a valid plan.accepted starts the plan, a second one is refused
        await signal(handle, env, "plan.accepted", account_id="N-REFUSE", periods=4)
        await env.sleep(timedelta(minutes=5))
        with pytest.raises(WorkflowUpdateFailedError) as again:
            await handle.execute_update("accept_plan", PlanRequest(6))
        after = await handle.query("status")
    assert "already running" in str(again.value.cause)
    assert after["plan"]["periods"] == 4 and after["plan"]["installment"] == "250.00"
    assert after["plan_offer"] is None  # no new offer while a plan runs
    assert len(await plan_rows(db, "N-REFUSE")) == 1


def test_plan_rules():
    assert rules.plan_refusal(3, closed_reason=None, outstanding=rules.Decimal("10"), plan_active=False,
                              legal_track="payment_order").startswith("the case is in the legal branch")
    assert rules.plan_refusal(True, closed_reason=None, outstanding=rules.Decimal("10"), plan_active=False,
                              legal_track=None).startswith("periods must be a whole number")
    assert rules.plan_refusal(3, closed_reason="paid", outstanding=rules.Decimal("0"), plan_active=False,
                              legal_track=None).startswith("case is closed")
    schedule = rules.plan_schedule(date(2027, 1, 31), rules.Decimal("100.00"), None, 2)
    assert schedule == [(date(2027, 2, 28), rules.Decimal("50.00")), (date(2027, 3, 31), rules.Decimal("50.00"))]
    assert rules.next_unpaid_installment(schedule, rules.Decimal("49.99")) == 0
    assert rules.next_unpaid_installment(schedule, rules.Decimal("50.00")) == 1
    assert rules.next_unpaid_installment(schedule, rules.Decimal("100.00")) is None
    assert rules.installment_missed_at(date(2027, 2, 28), TZ, 3) == rules.local_instant(date(2027, 3, 4), time(0), TZ)


async def test_an_installment_due_while_protected_gets_its_grace_after_the_protection(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("N-HELD", occurred_at=start, amount="1000.00", grade="I", debtor=INCOME)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(hours=1))
        plan = await handle.execute_update("accept_plan", PlanRequest(12), result_type=dict)
        await signal(handle, env, "dispute.opened", account_id="N-HELD", reason="wrong amount")
        await env.sleep(timedelta(days=60))  # the first installment fell due meanwhile
        await signal(handle, env, "dispute.resolved", account_id="N-HELD", upheld=False)
        resumed = rules.local_date(await env.get_current_time(), TZ)
        await env.sleep(timedelta(days=2))
        inside_grace = await handle.query("status")
        await env.sleep(timedelta(days=3))
        after_grace = await handle.query("status")
    assert date.fromisoformat(plan["schedule"][0]["due_on"]) < resumed
    assert inside_grace["plan"]["status"] == "active"
    assert after_grace["plan"]["status"] == "broken"
    human = [r for r in await attempts(db, "N-HELD") if r.step == "human_call"]
    assert [r.local_date for r in human] == [resumed + timedelta(days=4)]


def test_the_grace_is_configured_by_environment(monkeypatch):
    """The intake writes the settings' grace into each case's input (CaseInput.installment_grace_days)."""
    from support.settings import SettingsError, load_settings

    monkeypatch.delenv("COLLECTIONS_INSTALLMENT_GRACE_DAYS", raising=False)
    assert load_settings().installment_grace_days == 3
    monkeypatch.setenv("COLLECTIONS_INSTALLMENT_GRACE_DAYS", "7")
    assert load_settings().installment_grace_days == 7
    for bad in ("-1", "40", "three"):
        monkeypatch.setenv("COLLECTIONS_INSTALLMENT_GRACE_DAYS", bad)
        with pytest.raises(SettingsError, match="COLLECTIONS_INSTALLMENT_GRACE_DAYS"):
            load_settings()


async def test_a_bad_grace_setting_stops_ingest_before_anything_is_recorded(
        env, db, task_queue, monkeypatch, capsys, tmp_path):
    import json

    from sqlalchemy import func

    import starter
    from db.models import IngestedEvent
    from tests.helpers import point_cli_at

    point_cli_at(monkeypatch, env, db, task_queue)
    monkeypatch.setenv("COLLECTIONS_INSTALLMENT_GRACE_DAYS", "forty")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(default_event("N-CONF", occurred_at=await env.get_current_time())) + "\n")
    assert await starter.main(["ingest", str(path)]) == 2
    _, err = capsys.readouterr()
    assert "COLLECTIONS_INSTALLMENT_GRACE_DAYS" in err and "'forty'" in err  # the settings name what is wrong
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(IngestedEvent)) == 0
