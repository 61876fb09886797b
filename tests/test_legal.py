"""The legal branch (SPEC §2.4) on the time-skipping server and a real database:
every track, every statutory clock, and the rule that a debt takes one track."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from temporalio.testing import ActivityEnvironment

from activities.adapters import SimulatedCourt, simulated_adapters
from activities.case_activities import CaseActivities
from db.models import LegalAction, LegalStepRow
from tests.helpers import advance_to_local, attempts, default_event, signal, start_case, uid
from worker import build_worker
from workflows import rules
from workflows.model import LegalActionRequest

TZ = "Asia/Shanghai"
ADDRESS = {"address": "88 Century Avenue, Pudong, Shanghai"}
# Answers both calls without promising: stays grade II, never pays.
ANSWERS = {"answers": True}


async def legal_steps(db, account_id: str) -> list[LegalStepRow]:
    async with db.sessions() as s:
        q = select(LegalStepRow).where(LegalStepRow.account_id == account_id).order_by(LegalStepRow.at, LegalStepRow.id)
        return list((await s.scalars(q)).all())


async def legal_action(db, account_id: str) -> LegalAction | None:
    async with db.sessions() as s:
        return await s.get(LegalAction, account_id)


def step_at(rows, step: str):
    found = [r for r in rows if r.step == step]
    assert len(found) == 1, f"{step}: {[r.step for r in rows]}"
    return found[0]


async def test_unopposed_payment_order_goes_to_enforcement_on_the_statutory_clocks(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-PO", occurred_at=start, simulation=ANSWERS, debtor=ADDRESS)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=23))
        applied = await handle.query("status")
        await env.sleep(timedelta(days=30))
        done = await handle.query("status")
    letter = [r for r in await attempts(db, "L-PO") if r.step == "legal_notice"][0]
    rows = await legal_steps(db, "L-PO")
    assert [r.step for r in rows] == ["track_chosen", "payment_order", "accepted", "order_served", "enforcement",
                                      "closed"]
    assert applied["stage"] == "payment_order" and applied["grade"] == "II"
    assert applied["legal"]["track"] == "payment_order"
    assert "known address" in applied["legal"]["reason"]
    applied_at = step_at(rows, "payment_order").at
    # not before the letter's 15-day response window has passed
    assert applied_at >= letter.attempted_at + timedelta(days=15)
    assert step_at(rows, "accepted").at <= applied_at + timedelta(days=5)
    served = step_at(rows, "order_served").at
    assert served <= step_at(rows, "accepted").at + timedelta(days=15)
    enforcement = step_at(rows, "enforcement").at
    # the debtor had the full 15 days after service to pay or object
    assert served + timedelta(days=15) <= enforcement < served + timedelta(days=16)
    assert done["closed_reason"] == "enforcement_requested"
    assert (await legal_action(db, "L-PO")).status == "enforcement_requested"
    # every court filing interrupts the limitation period
    assert done["limitation_expires_on"] == rules.limitation_expiry(rules.local_date(enforcement, TZ)).isoformat()


async def test_an_objection_sends_the_case_to_litigation(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-OBJ", occurred_at=start, debtor=ADDRESS,
                          simulation={**ANSWERS, "objects_to_payment_order": True})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=55))
        done = await handle.query("status")
    steps = [r.step for r in await legal_steps(db, "L-OBJ")]
    assert done["closed_reason"] == "referred_to_litigation"
    assert "objected" in done["closed_detail"]
    assert "objected" in steps and "enforcement" not in steps


async def test_a_payment_inside_the_order_window_settles_the_case_and_stops_the_track(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-PAY", occurred_at=start, amount="800.00", simulation=ANSWERS, debtor=ADDRESS)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=33))
        waiting = await handle.query("status")
        await signal(handle, env, "payment.received", account_id="L-PAY", payment_id="PAY-L1", amount="800.00")
        await env.sleep(timedelta(days=30))
        done = await handle.query("status")
    steps = [r.step for r in await legal_steps(db, "L-PAY")]
    assert waiting["next_action"] == "objection_window_ends"
    assert done["closed_reason"] == "paid" and done["outstanding"] == "0.00"
    assert steps[-1] == "closed" and "enforcement" not in steps
    assert (await legal_action(db, "L-PAY")).status == "paid"


async def test_preservation_posts_the_bond_first_and_files_the_suit_inside_30_days(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    # never answers: grade III after two unanswered calls, so asset preservation
    event = default_event("L-PRES", occurred_at=start, debtor=ADDRESS)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=26))
        done = await handle.query("status")
    rows = await legal_steps(db, "L-PRES")
    assert [r.step for r in rows] == ["track_chosen", "bond", "preservation", "granted", "suit", "closed"]
    assert done["legal"]["track"] == "asset_preservation" and "grade III" in done["legal"]["reason"]
    assert step_at(rows, "granted").at <= step_at(rows, "preservation").at + timedelta(hours=24)
    assert step_at(rows, "suit").at <= step_at(rows, "granted").at + timedelta(days=30)
    assert done["closed_reason"] == "referred_to_litigation" and "suit filed" in done["closed_detail"]
    assert done["legal"]["escalations"] == []
    assert (await legal_action(db, "L-PRES")).bond_ref is not None


@pytest.mark.parametrize("hours, escalated", [(30, ["late_ruling_sla"]),
                                              (60, ["late_ruling_sla", "late_ruling_statutory"])])
async def test_a_late_preservation_ruling_is_escalated(env, db, task_queue, hours, escalated):
    start = await advance_to_local(env, TZ, time(10, 0))
    account = f"L-SLA-{uid()}"
    event = default_event(account, occurred_at=start, asset_flight_risk=True,
                          simulation={"answers": True, "preservation_responds_in_hours": hours})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=28))
        done = await handle.query("status")
    rows = await legal_steps(db, account)
    assert [r.step for r in rows if r.escalation] == escalated
    applied = step_at(rows, "preservation").at
    sla = step_at(rows, "late_ruling_sla").at
    assert applied + timedelta(hours=24) <= sla < applied + timedelta(hours=25)
    assert "flagged asset-flight risk" in done["legal"]["reason"]  # grade II, but flagged
    assert done["closed_reason"] == "referred_to_litigation"  # granted late, suit still filed


async def test_a_protection_mid_track_pauses_it_until_released(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-HOLD", occurred_at=start, simulation=ANSWERS, debtor=ADDRESS)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=23))  # payment order applied for
        await signal(handle, env, "dispute.opened", account_id="L-HOLD", reason="amount is wrong")
        await env.sleep(timedelta(hours=1))
        paused_at = await env.get_current_time()
        await env.sleep(timedelta(days=60))
        held = await handle.query("status")
        released_at = await env.get_current_time()
        await signal(handle, env, "dispute.resolved", account_id="L-HOLD", upheld=False)
        await env.sleep(timedelta(days=30))
        done = await handle.query("status")
    rows = await legal_steps(db, "L-HOLD")
    assert held["stage"] == "payment_order" and held["paused_by"] == ["dispute"]
    assert held["closed_reason"] is None
    assert held["legal"]["status"] == "applied"  # nothing read or filed while protected
    filings = {"payment_order", "enforcement"}
    assert [r.step for r in rows if r.step in filings and paused_at <= r.at < released_at] == []
    assert done["closed_reason"] == "enforcement_requested"
    assert step_at(rows, "enforcement").at > released_at


async def test_a_grade_II_debtor_without_an_address_is_referred_to_litigation(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-NOADDR", occurred_at=start, simulation=ANSWERS)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=24))
        done = await handle.query("status")
    assert done["closed_reason"] == "referred_to_litigation"
    assert "without a known address" in done["closed_detail"]
    assert await legal_action(db, "L-NOADDR") is None


async def test_a_debt_never_holds_both_tracks(db):
    acts = CaseActivities(db, simulated_adapters())
    env = ActivityEnvironment()
    first = await env.run(acts.open_legal_action, LegalActionRequest("L-ONE", "payment_order", "grade II, address"))
    second = await env.run(acts.open_legal_action, LegalActionRequest("L-ONE", "asset_preservation", "grade III"))
    assert (first.track, second.track) == ("payment_order", "payment_order")
    assert second.reason == "grade II, address"
    async with db.sessions() as s:
        rows = (await s.scalars(select(LegalAction).where(LegalAction.account_id == "L-ONE"))).all()
    assert [r.track for r in rows] == ["payment_order"]
    with pytest.raises(IntegrityError):  # the schema itself refuses a second track
        async with db.transaction() as s:
            s.add(LegalAction(account_id="L-ONE", track="asset_preservation", reason="x", status="chosen",
                              chosen_at=rows[0].chosen_at, updated_at=rows[0].chosen_at))


def test_track_choice_rules():
    assert rules.choose_legal_track("II", False, "addr")[0] == "payment_order"
    assert rules.choose_legal_track("I", False, "addr")[0] == "payment_order"
    assert rules.choose_legal_track("III", False, "addr")[0] == "asset_preservation"
    assert rules.choose_legal_track("I", True, "addr")[0] == "asset_preservation"
    assert rules.choose_legal_track("II", False, None)[0] is None
    assert rules.choose_legal_track("II", False, "  ")[0] is None


class FlakyCourt(SimulatedCourt):
    """Takes every filing, but the first time the worker 'dies' before the
    answer is written down: Temporal retries with the same key."""

    def __init__(self) -> None:
        self.filings: list[str] = []

    async def file(self, *, key: str, **kw) -> str:
        self.filings.append(key)
        ref = await super().file(key=key, **kw)
        if self.filings.count(key) == 1:
            raise RuntimeError("connection reset after the court took the filing")
        return ref


async def test_a_filing_retried_after_a_failure_is_filed_and_recorded_once(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    court = FlakyCourt()
    adapters = simulated_adapters()
    adapters.court = court
    event = default_event("L-RETRY", occurred_at=start, simulation=ANSWERS, debtor=ADDRESS)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, adapters=adapters):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=55))
        done = await handle.query("status")
    rows = await legal_steps(db, "L-RETRY")
    assert done["closed_reason"] == "enforcement_requested"
    assert [r.step for r in rows].count("payment_order") == 1 and [r.step for r in rows].count("enforcement") == 1
    # each filing reached the court twice with one key: the court's idempotency makes it one filing
    assert sorted(set(court.filings)) == ["legal:L-RETRY:enforcement", "legal:L-RETRY:payment_order"]
    assert len(court.filings) == 4


async def test_a_preservation_held_by_a_protection_is_escalated_before_and_when_it_lapses(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-LAPSE", occurred_at=start, debtor=ADDRESS)  # grade III: preservation
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=21))
        for _ in range(48):  # until the application is filed (the ruling comes 12 h later)
            await env.sleep(timedelta(hours=2))
            if ((await handle.query("status"))["legal"] or {}).get("status") == "applied":
                break
        await signal(handle, env, "suspension.granted", account_id="L-LAPSE", months=2, reason="hospitalised")
        await env.sleep(timedelta(days=40))
        held = await handle.query("status")
        revoked_at = await env.get_current_time()
        await signal(handle, env, "suspension.revoked", account_id="L-LAPSE")
        await env.sleep(timedelta(days=1))
        done = await handle.query("status")
    rows = await legal_steps(db, "L-LAPSE")
    granted = step_at(rows, "granted").at
    assert held["paused_by"] == ["suspension"] and held["legal"]["status"] == "granted"
    assert [r.step for r in rows if r.escalation] == ["preservation_lapsing", "preservation_lapsed"]
    assert abs(step_at(rows, "preservation_lapsing").at - (granted + timedelta(days=25))) < timedelta(minutes=1)
    assert abs(step_at(rows, "preservation_lapsed").at - (granted + timedelta(days=30))) < timedelta(minutes=1)
    assert step_at(rows, "suit").at >= revoked_at  # never while protected
    assert done["closed_reason"] == "referred_to_litigation" and "lapsed" in done["closed_detail"]


async def test_an_objection_after_the_15_days_does_not_count(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    event = default_event("L-LATEOBJ", occurred_at=start, debtor=ADDRESS,
                          simulation={**ANSWERS, "objects_to_payment_order": True, "objects_in_days": 20})
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=33))  # the order is served; its window runs
        await signal(handle, env, "dispute.opened", account_id="L-LATEOBJ", reason="checking the amount")
        await env.sleep(timedelta(days=30))  # the window ends, then the late objection comes, while held
        await signal(handle, env, "dispute.resolved", account_id="L-LATEOBJ", upheld=False)
        await env.sleep(timedelta(days=2))
        done = await handle.query("status")
    steps = [r.step for r in await legal_steps(db, "L-LATEOBJ")]
    assert "order_served" in steps and "objected" not in steps
    assert done["closed_reason"] == "enforcement_requested"
