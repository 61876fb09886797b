"""An event changes a case only when it applies (SPEC §5), through the file
ingest (``event`` signal) and the operator's path (``apply_event`` Update),
and what it did — or "no effect" and why — is recorded with its actor."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from db.models import CaseHistory, IngestedEvent, Payment
from tests.helpers import advance_to_local, default_event, ingestor, uid
from worker import build_worker
from workflows import effects
from workflows.case import DelinquentAccountWorkflow
from workflows.model import CaseEvent, CaseState, Pause, PlanState, case_workflow_id
from workflows.status import ClosedReason, EventEffect, PauseKind

TZ = "Asia/Shanghai"
T0 = datetime(2027, 1, 10, 2, tzinfo=timezone.utc)


def event(kind: str, at: datetime, account_id: str, **fields) -> dict:
    return {"event_id": f"ev-{uid()}", "type": kind, "occurred_at": at.isoformat(), "account_id": account_id,
            **fields}


async def notes(db, account_id: str) -> list[tuple[str, str | None]]:
    async with db.sessions() as s:
        rows = (await s.scalars(select(CaseHistory).where(CaseHistory.account_id == account_id)
                                .order_by(CaseHistory.revision))).all()
    return [(r.note, r.actor) for r in rows]


async def event_row(db, event_id: str) -> IngestedEvent:
    async with db.sessions() as s:
        return await s.get(IngestedEvent, event_id)


async def status(env, account_id: str):
    return await env.client.get_workflow_handle(case_workflow_id(account_id)).query(DelinquentAccountWorkflow.status)


@pytest.fixture
async def cases(env, db, task_queue):
    """A worker, the file ingest (signals) and the operator's ingest (the apply_event Update)."""
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        yield ingestor(env, db, task_queue), ingestor(env, db, task_queue, via_update=True)


async def open_case(env, signals, **extra) -> tuple[str, datetime]:
    start = await advance_to_local(env, TZ, time(10, 0))
    acct = f"ACC-{uid()}"
    report = await signals.ingest_lines([json.dumps(default_event(acct, occurred_at=start, **extra))], source="t")
    assert report.accepted == 1, report.rejects
    await env.sleep(timedelta(hours=1))
    return acct, await env.get_current_time()


# ---- the rules, as a function of the case's state ------------------------------------


def test_what_applies_and_why_not():
    s = CaseState(outstanding="100.00", payment_ids=["P-1"])

    def why(kind: str, state: CaseState = s, **data) -> str | None:
        refusal = effects.refusal(state, CaseEvent("e", kind, T0, data), T0)
        return str(refusal) if refusal else None

    assert why("dispute.resolved", upheld=True) == "no effect: no open dispute"
    assert why("suspension.revoked") == "no effect: no suspension in force"
    assert why("team.review_cleared", team_id="t1") == "no effect: team t1 is not suspended for this case"
    assert why("payment.received", payment_id="P-1", amount="5.00") == "no effect: payment P-1 was already recorded"
    assert why("payment.received", payment_id="P-2", amount="5.00") is None
    assert why("case.recalled") is None and why("dispute.opened", reason="x") is None
    assert why("complaint.filed") == "no effect: complaint.filed does not apply to a case"
    assert why("suspension.granted", months=30) == "refused: a debt suspension lasts 1 to 24 months; 30 months refused"
    s.pauses = [Pause(PauseKind.DISPUTE, "dispute", T0), Pause(PauseKind.SUSPENSION, "suspension", T0, T0)]
    assert why("dispute.resolved", upheld=False) is None
    assert why("dispute.opened", reason="again") == "no effect: a dispute is already open"
    assert why("suspension.revoked") == "no effect: no suspension in force"  # it ended at T0
    s.plan = PlanState(3, "10.00", T0, [])
    assert why("plan.accepted", periods=3) == "refused: an installment plan is already running"
    closed = CaseState(closed_reason=ClosedReason.PAID, payment_ids=["P-1"])
    assert why("case.recalled", closed) == "no effect: case is closed (paid)"
    assert why("dispute.opened", closed, reason="x") == "no effect: case is closed (paid)"
    assert why("payment.received", closed, payment_id="P-9", amount="1.00") is None  # a late payment is recorded
    assert why("payment.received", closed, payment_id="P-1", amount="1.00") == (
        "no effect: payment P-1 was already recorded")


# ---- through the file ingest (the event signal) ----------------------------------


async def test_an_upheld_resolution_without_an_open_dispute_leaves_the_case_open_and_records_no_effect(
        cases, env, db):
    signals, _ = cases
    acct, now = await open_case(env, signals)
    resolved = event("dispute.resolved", now, acct, upheld=True, actor="ops-typo")
    await signals.ingest_lines([json.dumps(resolved)], source="t")
    await env.sleep(timedelta(minutes=5))
    after = await status(env, acct)
    row = await event_row(db, resolved["event_id"])
    assert after.closed_reason is None and after.stage != "closed"
    assert (row.status, row.detail, row.actor) == ("no_effect", "no effect: no open dispute", "ops-typo")
    assert (f"dispute.resolved {resolved['event_id']}: no effect: no open dispute", "ops-typo") in await notes(db, acct)


async def test_a_payment_id_used_twice_lowers_the_balance_once(cases, env, db):
    signals, _ = cases
    acct, now = await open_case(env, signals)
    first, again = (event("payment.received", now, acct, payment_id="P-77", amount="500.00") for _ in range(2))
    report = await signals.ingest_lines([json.dumps(first), json.dumps(again)], source="t")
    await env.sleep(timedelta(minutes=5))
    after = await status(env, acct)
    async with db.sessions() as s:
        payments = (await s.scalars(select(Payment).where(Payment.account_id == acct))).all()
    assert report.accepted == 2 and after.outstanding == "700.50"
    assert [(p.payment_id, p.amount, p.request_key) for p in payments] == [("P-77", Decimal("500.00"), first["event_id"])]
    assert (await event_row(db, first["event_id"])).detail == (
        "payment P-77 of 500.00 CNY recorded; outstanding 700.50 CNY")
    assert ((await event_row(db, again["event_id"])).status, (await event_row(db, again["event_id"])).detail) == (
        "no_effect", "no effect: payment P-77 was already recorded")


async def test_a_payment_id_already_in_the_database_is_not_counted_again(cases, env, db):
    """The payments table is the backstop for an id the case itself never saw
    (recorded by an earlier run, or by the intake as a late payment)."""
    signals, _ = cases
    acct, now = await open_case(env, signals)
    async with db.transaction() as s:
        s.add(Payment(account_id=acct, payment_id="P-OLD", amount=Decimal("100.00"), currency="CNY",
                      received_at=now, source="event", outstanding_after=Decimal("1100.50"), request_key="ev-earlier"))
    again = event("payment.received", now, acct, payment_id="P-OLD", amount="100.00")
    await signals.ingest_lines([json.dumps(again)], source="t")
    await env.sleep(timedelta(minutes=5))
    assert (await status(env, acct)).outstanding == "1200.50"
    assert (await event_row(db, again["event_id"])).detail == "no effect: payment P-OLD was already recorded"


async def test_resolving_and_revoking_twice_change_the_case_once(cases, env, db):
    signals, _ = cases
    acct, now = await open_case(env, signals)
    lines = [event("dispute.opened", now, acct, reason="not mine"),
             event("dispute.resolved", now, acct, upheld=False), event("dispute.resolved", now, acct, upheld=True),
             event("suspension.granted", now, acct, months=2, reason="illness"),
             event("suspension.revoked", now, acct), event("suspension.revoked", now, acct)]
    await signals.ingest_lines([json.dumps(e) for e in lines], source="t")
    await env.sleep(timedelta(minutes=10))
    after = await status(env, acct)
    rows = [await event_row(db, e["event_id"]) for e in lines]
    assert after.closed_reason is None and after.paused_by == []
    assert [r.status for r in rows] == ["applied", "applied", "no_effect", "applied", "applied", "no_effect"]
    assert rows[2].detail == "no effect: no open dispute" and rows[5].detail == "no effect: no suspension in force"
    assert rows[3].detail.startswith("debt suspension granted for 2 months until ")


# ---- through the operator's path (the apply_event Update) ------------------------------


async def test_the_update_answers_what_the_event_did_and_refuses_what_does_not_apply(cases, env, db):
    signals, operator = cases
    acct, now = await open_case(env, signals)

    async def send(kind: str, **fields):
        line = json.dumps(event(kind, now, acct, actor="ops-wang", **fields))
        return json.loads(line)["event_id"], await operator.ingest_event(line)

    _, no_dispute = await send("dispute.resolved", upheld=True)
    paid_id, paid = await send("payment.received", payment_id="P-77", amount="500.00")
    _, paid_again = await send("payment.received", payment_id="P-77", amount="500.00")
    _, suspended = await send("suspension.granted", months=3, reason="illness")
    _, revoked = await send("suspension.revoked")
    _, revoked_again = await send("suspension.revoked")
    history = await notes(db, acct)

    assert (no_dispute.outcome, no_dispute.reason, no_dispute.effect) == (
        "no_effect", "no effect: no open dispute", None)
    assert isinstance(paid.effect, EventEffect) and paid.outcome == "accepted" and paid.status == "applied"
    assert (paid.effect.applied, paid.effect.effect, paid.effect.outstanding, paid.effect.currency) == (
        True, "payment P-77 of 500.00 CNY recorded; outstanding 700.50 CNY", "700.50", "CNY")
    assert (paid_again.outcome, paid_again.reason) == ("no_effect", "no effect: payment P-77 was already recorded")
    assert suspended.effect.paused_by == [PauseKind.SUSPENSION] and suspended.effect.until is not None
    assert suspended.detail == f"suspended until {suspended.effect.until.isoformat()}"
    assert revoked.effect.applied and revoked.effect.paused_by == []
    assert (revoked_again.outcome, revoked_again.reason) == ("no_effect", "no effect: no suspension in force")
    # what applied is in the case history with its actor; a refusal by the validator wrote nothing there
    assert ("payment P-77 of 500.00 CNY recorded; outstanding 700.50 CNY", "ops-wang") in history
    assert not any("no open dispute" in note for note, _ in history)
    row = await event_row(db, paid_id)
    assert (row.status, row.actor) == ("applied", "ops-wang")
    assert (await status(env, acct)).closed_reason is None
    assert paid.as_dict()["effect"]["outstanding"] == "700.50"


async def test_the_update_path_counts_what_had_no_effect(cases, env, db):
    signals, operator = cases
    acct, now = await open_case(env, signals)
    report = await operator.ingest_lines([json.dumps(event("suspension.revoked", now, acct)),
                                          json.dumps(event("dispute.opened", now, acct, reason="x"))], source="t")
    assert (report.accepted, report.no_effect, report.rejected) == (2, 1, 0)
    assert "accepted 2 (1 no effect)" in report.summary() and report.as_dict()["no_effect"] == 1


async def test_a_closed_case_takes_only_a_new_payment(cases, env, db):
    signals, operator = cases
    acct, now = await open_case(env, signals, amount="300.00")
    paid = await operator.ingest_event(json.dumps(event("payment.received", now, acct, payment_id="P-1",
                                                        amount="300.00")))
    await env.client.get_workflow_handle(case_workflow_id(acct)).result()
    recall = await operator.ingest_event(json.dumps(event("case.recalled", now, acct)))
    again = await operator.ingest_event(json.dumps(event("payment.received", now, acct, payment_id="P-1",
                                                         amount="300.00")))
    late = await operator.ingest_event(json.dumps(event("payment.received", now, acct, payment_id="P-2",
                                                        amount="10.00")))
    assert paid.effect.closed_reason == ClosedReason.PAID and paid.effect.effect.endswith("closed paid")
    assert (recall.outcome, recall.reason) == ("no_effect", "no effect: case is closed (paid)")
    assert (again.outcome, again.reason) == ("no_effect", "no effect: payment P-1 was already recorded")
    assert (late.outcome, late.status) == ("accepted", "recorded")
    async with db.sessions() as s:
        ids = sorted((await s.scalars(select(Payment.payment_id).where(Payment.account_id == acct))).all())
    assert ids == ["P-1", "P-2"]


async def test_a_recall_closes_an_open_case_and_says_so(cases, env, db):
    signals, operator = cases
    acct, now = await open_case(env, signals)
    recalled = await operator.ingest_event(json.dumps(event("case.recalled", now, acct, actor="supervisor-li")))
    result = await env.client.get_workflow_handle_for(DelinquentAccountWorkflow.run, case_workflow_id(acct)).result()
    assert (recalled.outcome, recalled.effect.effect, recalled.effect.closed_reason) == (
        "accepted", "case recalled: closed recalled", ClosedReason.RECALLED)
    assert result.closed_reason == "recalled"
    assert ("closed recalled: creditor withdrew the case", "supervisor-li") in await notes(db, acct)


async def test_a_disaster_fanned_out_to_cases_keeps_the_intakes_account_of_it(cases, env, db):
    """A region's or team's event reaches many cases under one event id: each
    case records what it did in its history, the event's row stays the intake's."""
    signals, _ = cases
    acct, now = await open_case(env, signals, region="CN-XZ")
    disaster = {"event_id": f"ev-{uid()}", "type": "disaster.declared", "occurred_at": now.isoformat(),
                "region": "CN-XZ", "days": 30}
    await signals.ingest_lines([json.dumps(disaster)], source="t")
    await env.sleep(timedelta(minutes=5))
    row = await event_row(db, disaster["event_id"])
    assert row.status == "dispatched"  # the intake's (a case would have written "applied" over it)
    assert any(note.startswith("disaster grace in CN-XZ until") for note, _ in await notes(db, acct))
