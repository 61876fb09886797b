"""The case, end to end, on the time-skipping test server and a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from temporalio import activity
from temporalio.converter import DataConverter

from activities.case_activities import CaseActivities

from db.models import Case, CaseHistory, EvidenceEntry, Payment
from db import evidence
from tests.helpers import advance_to_local, attempts, default_event, start_case
from worker import build_worker
from workflows import presentation, rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import OpenCaseRequest, OpenCaseResult
from workflows.model import CaseContactRules, CaseEvent, CaseInput, CaseState, Debtor, DefaultEvent, Installment, PlanState
from workflows.status import CaseStatus, Grade, Stage

# The status query's keys (SPEC §6; outside tooling reads them by name).
STATUS_KEYS = ["account_id", "case_id", "debtor_id", "stage", "grade", "currency", "amount_due", "outstanding",
               "paused_by", "protections", "next_action", "next_action_at", "closed_reason", "closed_detail",
               "limitation_expires_on", "promised_date", "timezone", "ladder", "plan_offer", "plan", "legal", "score"]

# Stricter than the defaults: one connected call a day, contact only 09:00-21:00.
STRICT = rules.ContactRules(max_connected_calls_per_debtor_per_day=1, quiet_start=time(21, 0), quiet_end=time(9, 0))


def assert_inside_contact_hours(rows, contact_rules: rules.ContactRules = rules.DEFAULT_RULES) -> None:
    for r in rows:
        local = rules.local_datetime(r.attempted_at, r.timezone)
        assert contact_rules.quiet_end <= local.time() < contact_rules.quiet_start, f"{r.step} at {local} local"
        assert r.local_date == local.date()


async def contact_outcomes(handle) -> list[str]:
    """What each contact_debtor activity of the case returned, from its history."""
    names, outcomes = {}, []
    async for e in handle.fetch_history_events():
        if e.HasField("activity_task_scheduled_event_attributes"):
            names[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.HasField("activity_task_completed_event_attributes"):
            done = e.activity_task_completed_event_attributes
            if names.get(done.scheduled_event_id) == "contact_debtor":
                outcomes.append(json.loads(done.result.payloads[0].data)["outcome"])
    return outcomes


async def patch_markers(handle) -> tuple[list[str], int]:
    """The patch ids a case's history records, and how many TemporalChangeVersion upserts."""
    markers, upserts = [], 0
    async for e in handle.fetch_history_events():
        if e.HasField("marker_recorded_event_attributes") and e.marker_recorded_event_attributes.marker_name == "core_patch":
            details = e.marker_recorded_event_attributes.details
            markers.append(json.loads(details["patch-data"].payloads[0].data)["id"])
        elif e.HasField("upsert_workflow_search_attributes_event_attributes"):
            upserts += "TemporalChangeVersion" in e.upsert_workflow_search_attributes_event_attributes \
                .search_attributes.indexed_fields
    return markers, upserts


async def test_unresponsive_debtor_gets_voice_human_letter_on_days_0_3_7(env, db, task_queue):
    tz = "America/New_York"
    start = await advance_to_local(env, tz, time(10, 0))
    event = default_event("A-UNRESP", occurred_at=start, tz=tz)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=9))
        status = await handle.query("status")
        typed = await handle.query(DelinquentAccountWorkflow.status)
    rows = await attempts(db, "A-UNRESP")
    assert [(r.step, r.channel, r.outcome) for r in rows] == [
        ("voice_robot", "voice", "no_answer"),
        ("human_call", "human", "no_answer"),
        ("legal_notice", "letter", "delivered"),
    ]
    day0 = rules.local_date(start, tz)
    assert [(r.local_date - day0).days for r in rows] == [0, 3, 7]
    assert_inside_contact_hours(rows)
    assert all(r.retain_until >= r.attempted_at + timedelta(days=730) for r in rows if r.channel != "letter")
    assert status["stage"] == "awaiting_response"
    assert status["next_action"] == "legal_branch"
    assert status["closed_reason"] is None
    # The served letter is a demand: it restarts the limitation period.
    assert status["limitation_expires_on"] == rules.limitation_expiry(rows[2].local_date).isoformat()
    # Two unanswered calls in a row: lost contact, grade III.
    assert status["grade"] == "III"
    # Queried by name the answer is a JSON object with the fixed keys; through
    # the typed handle, the same answer as a CaseStatus.
    assert sorted(status) == sorted(STATUS_KEYS)
    assert isinstance(typed, CaseStatus) and typed.stage is Stage.AWAITING_RESPONSE and typed.grade is Grade.III
    assert [(e.step, e.outcome) for e in typed.ladder][2] == ("legal_notice", "delivered")
    assert typed.next_action_at.isoformat() == status["next_action_at"]
    # A new case takes every patch through its epoch: one marker, one
    # TemporalChangeVersion upsert, however many patches it passed.
    assert await patch_markers(handle) == (["born-v7"], 1)


async def test_a_case_opened_in_quiet_hours_waits_until_0800_local(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(23, 30))
    event = default_event("A-NIGHT", occurred_at=start, tz=tz)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(hours=1))
        waiting = await handle.query("status")
        assert await attempts(db, "A-NIGHT") == []
        await env.sleep(timedelta(hours=8))
    assert waiting["paused_by"] == ["quiet_hours"]
    assert waiting["next_action"] == "voice_robot"
    expected = rules.local_instant(rules.local_date(start, tz) + timedelta(days=1), time(8, 0), tz)
    assert waiting["next_action_at"] == expected.isoformat()
    rows = await attempts(db, "A-NIGHT")
    assert len(rows) == 1 and rows[0].local_time.startswith("08:00")
    assert_inside_contact_hours(rows)


async def test_payment_after_the_voice_call_closes_paid_with_no_later_contact(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(9, 0))
    event = default_event("A-PAYS", occurred_at=start, tz=tz, amount="800.00")
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=1))
        now = await env.get_current_time()
        from workflows.model import CaseEvent
        await handle.signal("event", CaseEvent("pay-1", "payment.received", now,
                                               {"account_id": "A-PAYS", "payment_id": "P-1", "amount": "300.00"}))
        await env.sleep(timedelta(hours=1))
        partial = await handle.query("status")
        await handle.signal("event", CaseEvent("pay-2", "payment.received", now,
                                               {"account_id": "A-PAYS", "payment_id": "P-2", "amount": "500.00"}))
        # the same event again is a no-op
        await handle.signal("event", CaseEvent("pay-2", "payment.received", now,
                                               {"account_id": "A-PAYS", "payment_id": "P-2", "amount": "500.00"}))
        result = await handle.result()
        await env.sleep(timedelta(days=10))
    assert partial["outstanding"] == "500.00" and partial["closed_reason"] is None
    assert result.closed_reason == "paid" and result.outstanding == "0.00"
    rows = await attempts(db, "A-PAYS")
    assert [r.step for r in rows] == ["voice_robot"]
    async with db.sessions() as s:
        paid = (await s.scalars(select(Payment).order_by(Payment.payment_id))).all()
        case = await s.get(Case, "A-PAYS")
    assert [(p.payment_id, p.amount) for p in paid] == [("P-1", Decimal("300.00")), ("P-2", Decimal("500.00"))]
    assert case.stage == "closed" and case.closed_reason == "paid" and case.outstanding == Decimal("0")


async def test_debtor_paying_during_the_human_call_closes_paid(env, db, task_queue):
    start = await advance_to_local(env, "Asia/Shanghai", time(9, 0))
    event = default_event("A-SIMPAY", occurred_at=start, simulation={"pays_after": "human_call"})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        result = await handle.result()
    assert result.closed_reason == "paid"
    assert [r.step for r in await attempts(db, "A-SIMPAY")] == ["voice_robot", "human_call"]


async def test_promise_to_pay_defers_the_next_step_to_the_day_after_the_promised_date(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(9, 0))
    event = default_event("A-PROMISE", occurred_at=start, simulation={"answers": True, "promises_in_days": 5})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(hours=1))
        promised = await handle.query("status")
        await env.sleep(timedelta(days=8))
    day0 = rules.local_date(start, tz)
    assert promised["stage"] == "promise_to_pay"
    assert promised["promised_date"] == (day0 + timedelta(days=5)).isoformat()
    assert promised["grade"] == "I"
    rows = await attempts(db, "A-PROMISE")
    # broken promise: the human call resumes the day after the promised date
    assert [(r.step, (r.local_date - day0).days) for r in rows][:2] == [("voice_robot", 0), ("human_call", 6)]
    assert rows[1].outcome == "answered"


async def test_four_accounts_of_one_debtor_never_exceed_three_connected_calls_a_day(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(9, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        for i in range(4):
            await start_case(env, task_queue, default_event(
                f"A-CAP{i}", occurred_at=start, debtor_id="D-SHARED", simulation={"answers": True}))
        await env.sleep(timedelta(days=2))
    rows = [r for r in await attempts(db) if r.debtor_id == "D-SHARED"]
    per_day: dict = {}
    for r in rows:
        per_day[r.local_date] = per_day.get(r.local_date, 0) + int(r.connected)
    day0 = rules.local_date(start, tz)
    assert per_day == {day0: 3, day0 + timedelta(days=1): 1}
    late = [r for r in rows if r.local_date != day0][0]
    assert late.local_time.startswith("08:00")


async def test_two_accounts_of_one_debtor_share_a_lowered_cap(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(9, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, contact_rules=STRICT):
        handles = [await start_case(env, task_queue, default_event(
            acct, occurred_at=start, debtor_id="D-TWO", simulation={"answers": True}), contact_rules=STRICT)
            for acct in ("A-TWO1", "A-TWO2")]
        await env.sleep(timedelta(days=5))
        outcomes = [await contact_outcomes(h) for h in handles]
    rows = [r for r in await attempts(db) if r.debtor_id == "D-TWO"]
    connected_per_day: dict = {}
    for r in rows:
        connected_per_day[r.local_date] = connected_per_day.get(r.local_date, 0) + int(r.connected)
    assert len(rows) >= 3
    assert max(connected_per_day.values()) == 1
    assert_inside_contact_hours(rows, STRICT)
    # The cases planned with the stricter hours: the worker never turned a
    # contact away for quiet hours (it would, had they planned with 08:00).
    assert "capped" in outcomes[0] + outcomes[1]  # one waited for the cap, at 09:00 the next day
    assert "quiet_hours" not in outcomes[0] + outcomes[1]


async def test_a_case_plans_its_contact_window_with_the_rules_in_its_input(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(8, 30))  # contact allowed by default, not by STRICT
    event = default_event("A-STRICT", occurred_at=start, tz=tz)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, contact_rules=STRICT):
        handle = await start_case(env, task_queue, event, contact_rules=STRICT)
        await env.sleep(timedelta(minutes=15))
        waiting = await handle.query("status")
        before_nine = await contact_outcomes(handle)
        await env.sleep(timedelta(hours=1))
        after_nine = await contact_outcomes(handle)
    assert waiting["paused_by"] == ["quiet_hours"] and waiting["next_action"] == "voice_robot"
    assert waiting["next_action_at"] == rules.local_instant(rules.local_date(start, tz), time(9, 0), tz).isoformat()
    assert before_nine == []  # it waited for 09:00 itself: no call attempted and turned away
    assert after_nine == ["no_answer"]
    rows = await attempts(db, "A-STRICT")
    assert len(rows) == 1 and rows[0].local_time.startswith("09:00")


async def test_the_case_keeps_its_contact_rules_across_continue_as_new(env, db, task_queue):
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(10, 0))
    event = default_event("A-CANRULES", occurred_at=start, simulation={"answers": True, "promises_in_days": 1})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, contact_rules=STRICT):
        handle = await start_case(env, task_queue, event, history_limit=25, contact_rules=STRICT)
        first = env.client.get_workflow_handle(handle.id, run_id=(await handle.describe()).run_id)
        await env.sleep(timedelta(days=12))
        latest = env.client.get_workflow_handle(handle.id)
        runs = {(await first.describe()).run_id, (await latest.describe()).run_id}
        outcomes = await contact_outcomes(first) + await contact_outcomes(latest)
        started = (await latest.fetch_history()).events[0].workflow_execution_started_event_attributes
    [carried] = env.client.data_converter.payload_converter.from_payloads(started.input.payloads, [CaseInput])
    assert len(runs) == 2  # the case continued as new ...
    assert carried.contact_rules == CaseContactRules.of(STRICT)  # ... with its rules
    rows = await attempts(db, "A-CANRULES")
    assert [r.step for r in rows] == ["voice_robot", "human_call", "legal_notice"]
    assert_inside_contact_hours(rows, STRICT)
    assert "quiet_hours" not in outcomes


def test_contact_rules_cross_the_payload_converter_and_default_when_absent():
    converter = DataConverter.default.payload_converter
    [wire] = converter.from_payloads(converter.to_payloads([CaseContactRules.of(STRICT)]), [CaseContactRules])
    assert wire.to_rules() == STRICT
    assert CaseInput(event=None, contact_rules=STRICT).contact_rules == CaseContactRules.of(STRICT)
    assert CaseInput(event=None).planning_rules() == rules.DEFAULT_RULES  # cases from before the field
    assert CaseContactRules().to_rules() == rules.DEFAULT_RULES


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"currency": "XYZ"}, "invalid_debt"),
        ({"amount": "0"}, "invalid_debt"),
        ({"due": +30}, "invalid_debt"),  # due in the future
        ({"contract_id": " "}, "invalid_debt"),
        ({"due": -(3 * 366 + 2)}, "time_barred"),  # more than 3 years overdue
    ],
)
async def test_invalid_and_time_barred_debts_close_without_any_contact(env, db, task_queue, overrides, reason):
    start = await env.get_current_time()
    overrides = dict(overrides)
    if "due" in overrides:
        overrides["due"] = (start.date() + timedelta(days=overrides["due"])).isoformat()
    contract = overrides.pop("contract_id", None)
    event = default_event("A-BAD", occurred_at=start, **overrides)
    if contract is not None:
        event["contract_id"] = contract
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        result = await handle.result()
    assert result.closed_reason == reason
    assert result.stage == "closed"
    assert await attempts(db) == []
    async with db.sessions() as s:
        case = await s.get(Case, "A-BAD")
        n_evidence = await s.scalar(select(func.count()).select_from(EvidenceEntry))
    assert case.closed_reason == reason
    assert n_evidence == 1  # the evidence is fingerprinted even for a debt that is refused
    assert (await evidence.verify_chain(db)).ok


async def test_every_stage_change_is_in_the_case_history(env, db, task_queue):
    start = await advance_to_local(env, "Asia/Shanghai", time(9, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, default_event("A-HIST", occurred_at=start,
                                                                  simulation={"pays_after": "voice"}))
        await handle.result()
    async with db.sessions() as s:
        notes = (await s.scalars(select(CaseHistory.note).where(CaseHistory.account_id == "A-HIST")
                                 .order_by(CaseHistory.revision))).all()
    assert notes[0] == "case opened"
    assert notes[-1].startswith("closed paid")


async def activity_names(handle) -> list[str]:
    """The case's activities in the order of its history, local ones (recorded as markers) included."""
    names = []
    async for e in handle.fetch_history_events():
        if e.HasField("activity_task_scheduled_event_attributes"):
            names.append(e.activity_task_scheduled_event_attributes.activity_type.name)
        elif e.marker_recorded_event_attributes.marker_name == "core_local_activity":
            data = e.marker_recorded_event_attributes.details["data"].payloads[0].data
            names.append(json.loads(data)["activity_type"])
    return names


async def test_the_usual_case_is_recorded_as_opened_by_open_case_itself(env, db, task_queue):
    """open-in-one-v1: a grade II case's first record comes with open_case, and
    its next activity is the day-0 call; a grade I case (offered a plan from the
    income on file) still records after, with the offer in the note."""
    start = await advance_to_local(env, "Asia/Shanghai", time(9, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        usual = await start_case(env, task_queue, default_event("A-ONE", occurred_at=start))
        offered = await start_case(env, task_queue, default_event(
            "A-GRADE-I", occurred_at=start, grade="I", debtor={"monthly_disposable_income": "3000.00"}))
        await env.sleep(timedelta(hours=1))
        assert [r.step for r in await attempts(db, "A-ONE")] == ["voice_robot"]
        assert (await activity_names(usual))[:2] == ["open_case", "contact_debtor"]
        assert (await activity_names(offered))[:3] == ["open_case", "record_case", "contact_debtor"]
    async with db.sessions() as s:
        rows = (await s.scalars(select(CaseHistory).where(CaseHistory.revision == 1)
                                .order_by(CaseHistory.account_id))).all()
        case = await s.get(Case, "A-ONE")
    assert [(r.account_id, r.stage, r.grade, r.paused_by) for r in rows] == [
        ("A-GRADE-I", "wake_up_ladder", "I", []), ("A-ONE", "wake_up_ladder", "II", [])]
    assert rows[1].note == "case opened"
    assert rows[0].note.startswith("case opened; installment plan offered: ")
    assert case.revision >= 1 and case.stage != "verifying"


async def test_an_update_while_open_case_runs_is_recorded_after_the_opening(own_env, db, task_queue, monkeypatch):
    """(A server of its own: it holds open_case, with the clock stopped.)
    open-in-one-v1 takes the opening's revision before open_case runs: a
    dispute applied meanwhile waits for it, and is recorded after "case
    opened", with its operator, never in its place."""
    held, release = asyncio.Event(), asyncio.Event()
    opening = CaseActivities.open_case

    @activity.defn(name="open_case")
    async def slow_open_case(self, req: OpenCaseRequest) -> OpenCaseResult:
        held.set()
        await release.wait()
        return await opening(self, req)

    monkeypatch.setattr(CaseActivities, "open_case", slow_open_case)
    env = own_env
    start = await advance_to_local(env, "Asia/Shanghai", time(9, 0))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        with env.auto_time_skipping_disabled():  # the server's clock stands while open_case is held
            handle = await start_case(env, task_queue, default_event("A-RACE", occurred_at=start))
            await asyncio.wait_for(held.wait(), 30)
            dispute = asyncio.create_task(handle.execute_update(DelinquentAccountWorkflow.apply_event, CaseEvent(
                "ev-race", "dispute.opened", start, {"account_id": "A-RACE", "reason": "not mine"}, actor="ops-wang")))
            await asyncio.sleep(1)  # the Update is in the case, waiting for the opening's record
            release.set()
            await asyncio.wait_for(dispute, 30)
            status = await handle.query("status")
    async with db.sessions() as s:
        rows = (await s.scalars(select(CaseHistory).where(CaseHistory.account_id == "A-RACE")
                                .order_by(CaseHistory.revision))).all()
        case = await s.get(Case, "A-RACE")
    assert [(r.revision, r.note.split(":")[0], r.actor) for r in rows][:2] == [
        (1, "case opened", None), (2, rows[1].note.split(":")[0], "ops-wang")]
    assert "dispute" in rows[1].note and rows[1].paused_by == ["dispute"]
    assert rows[1].stage == "wake_up_ladder" and case.stage == "wake_up_ladder"
    assert status["paused_by"] == ["dispute"]


def test_status_details_and_search_attributes_are_functions_of_the_state():
    at = datetime(2027, 3, 1, 2, 0, tzinfo=timezone.utc)
    debtor = Debtor("D-PURE", "+86 1", region="CN-GD")
    ev = DefaultEvent("e-1", at, "A-PURE", "900.00", "CNY", "2027-01-01", "K-1", debtor)
    s = CaseState(stage=Stage.INSTALLMENT, grade=Grade.I, outstanding="600.00", limitation_expires_on="2030-03-01")
    s.plan = PlanState(3, "300.00", at, [Installment(f"2027-0{m}-01", "300.00") for m in (4, 5, 6)], paid="300.00")
    showing = presentation.Showing("installment_2", at + timedelta(days=33))
    status = presentation.case_status(ev, s, showing, "case-A-PURE")
    assert [i.paid for i in status.plan.schedule] == [True, False, False]
    assert status.plan_offer is None  # no offer while a plan runs
    assert status.paused_by == [] and status.next_action_at == at + timedelta(days=33)
    details = presentation.current_details(ev, s, showing)
    assert ("**Waiting for:** installment 2/3 (300.00 CNY, due 2027-05-01); missed if unpaid "
            "at 2027-04-03 10:00 Asia/Shanghai") in details
    assert "**Installment plan:** active, 3 x 300.00 CNY, paid 300.00" in details
    assert presentation.search_attributes(ev, s, presentation.Showing(quiet_hours=True)) == {
        "CaseStage": "installment", "DebtorGrade": "I", "Region": "CN-GD", "PausedBy": ["quiet_hours"],
        "OutstandingAmount": "600.00", "DebtorId": "D-PURE"}
    assert presentation.next_action_label(ev, s, "objection_window_ends").startswith("debtor to pay or object")
