"""DelinquentAccountWorkflow: one delinquent account, as one durable case.

The story of a case (SPEC §2):

1. verify the debt and fingerprint the evidence; close ``invalid_debt`` or
   ``time_barred`` without any contact;
2. grade the debtor, offer a cooperative (grade I) debtor an installment
   plan, and trace a lost-contact (grade III) debtor first;
3. climb the wake-up ladder (day 0 voice robot, day 3 human call, day 7
   legal notice letter), each step only without a response, each contact
   inside the debtor's local day and under the daily caps; an accepted plan
   holds the ladder while its installments are paid, a missed one resumes it;
4. wait out the letter's 15-day response window, then take one legal track:
   a payment order or asset preservation (:mod:`workflows.legal`);
5. close ``paid`` the moment the outstanding balance reaches zero, or
   ``recalled`` when the creditor withdraws.

Rules live in :mod:`workflows.rules` (pure functions), I/O in activities.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import rules
    from workflows.model import (
        CaseEvent,
        CaseInput,
        CaseSnapshot,
        CaseState,
        ContactRequest,
        EvidenceRequest,
        Installment,
        LadderRecord,
        OpenCaseRequest,
        Pause,
        PaymentRecord,
        PlanRecord,
        PlanRequest,
        PlanState,
        SkipTraceRequest,
        SuspensionRequest,
    )
    from workflows.search import search_attribute_updates

from workflows.legal import LegalBranch

DB_ACTIVITY = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
)
CONTACT_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
)
SEEN_EVENT_IDS_KEPT = 500
# What ``next_action`` means, for people reading the UI's current details.
NEXT_ACTION_LABELS = {
    **{step.name: step.label for step in rules.LADDER},
    "legal_branch": "end of the legal notice's 15-day response window",
    "resume": "the protection to end",
    "skip_trace": "skip trace (data lookup)",
    "legal_filing": "legal filing",
    "court_acceptance": "court's decision on the payment order application (5 days)",
    "payment_order_issued": "court to issue and serve the payment order (15 days)",
    "objection_window_ends": "debtor to pay or object to the payment order (15 days)",
    "preservation_ruling": "court's ruling on asset preservation (24 h SLA)",
    "file_suit": "suit to be filed before the preservation lapses (30 days)",
}

# workflow.patched ids: cases started before these changes replay on the old path.
LEGAL_BRANCH = "legal-branch-v1"
INSTALLMENT_PLANS = "installment-plans-v1"
EVENTS_BEAT_TIMERS = "events-beat-timers-v1"
EARLY_REPLAN = "update-replans-before-awaiting-v1"
LEGACY_LEGAL_WAIT = "legacy-legal-wait-v1"


@workflow.defn(name="DelinquentAccountWorkflow")
class DelinquentAccountWorkflow(LegalBranch):
    DB_ACTIVITY = DB_ACTIVITY

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self.ev = inp.event
        self.debtor = inp.event.debtor
        self.s: CaseState = inp.state or CaseState()
        self.inbox: list[CaseEvent] = list(inp.pending_events)
        self.history_limit = inp.history_limit
        self.grace_days = inp.installment_grace_days
        self.contact_rules_in = inp.contact_rules  # carried across continue-as-new
        self.contact_rules = inp.planning_rules()
        self.quiet_hours = False
        self._replan = False  # set by an update that changes what the case waits for
        self._continue_now = False  # continue as new at the next turn of the loop
        self._legacy_wakes = 0  # wake-ups in the pre-legal-branch wait (see _advance)
        self.next_action: str | None = None
        self.next_action_at: datetime | None = None
        self._published: dict[str, Any] = {}

    # ------------------------------------------------------------------ story

    @workflow.run
    async def run(self, inp: CaseInput) -> dict[str, Any]:
        if self.s.stage == "verifying":
            await self._open_case()
        while self.s.closed_reason is None:
            await self._handle_events()
            if self.s.closed_reason is not None:
                break
            if self._history_is_long() or self._continue_now:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    CaseInput(event=self.ev, state=self.s, pending_events=self.inbox, history_limit=self.history_limit,
                              installment_grace_days=self.grace_days, contact_rules=self.contact_rules_in)
                )
            await self._advance()
        await self._handle_events()  # payments that arrived with the closing step are still recorded
        await workflow.wait_condition(workflow.all_handlers_finished)  # an Update in flight finishes its writes
        return self.status()

    async def _open_case(self) -> None:
        now = workflow.now()
        today = rules.local_date(now, self.debtor.timezone)
        due = date.fromisoformat(self.ev.due_date)
        self.s.grade = rules.initial_grade(self.ev.grade, self.ev.asset_flight_risk)
        self.s.outstanding = self.ev.amount_due
        self.s.limitation_expires_on = rules.limitation_expiry(due).isoformat()
        opened = await workflow.execute_activity_method(
            CaseActivities.open_case,
            OpenCaseRequest(event=self.ev, grade=self.s.grade, limitation_expires_on=self.s.limitation_expires_on),
            summary="verify debt, fingerprint evidence", **DB_ACTIVITY,
        )
        for pause in opened.protections:  # a disaster or team suspension already in force
            self._add_pause(pause)
        invalid = rules.verify_debt(
            amount_due=self.ev.amount_due, currency=self.ev.currency, contract_id=self.ev.contract_id,
            due_date=due, today=today,
        )
        if invalid:
            await self._close("invalid_debt", invalid)
        elif rules.is_time_barred(date.fromisoformat(self.s.limitation_expires_on), today):
            await self._close("time_barred", f"limitation period expired on {self.s.limitation_expires_on}")
        else:
            self.s.stage = "wake_up_ladder"
            await self._record("case opened" + self._plan_offer_note())

    async def _advance(self) -> None:
        """Take the case one step further, or wait for the next thing to happen."""
        self._replan = False
        today = rules.local_date(workflow.now(), self.debtor.timezone)
        if rules.is_time_barred(date.fromisoformat(self.s.limitation_expires_on), today):
            await self._close("time_barred", f"limitation period expired on {self.s.limitation_expires_on}")
            return
        if self._release_expired_pauses():
            await self._record("protection expired")
        if self.s.pauses:
            await self._wait_out_pauses()
            return
        if self._plan_running:
            await self._installment_step()
            return
        if self.s.grade == "III" and not self.s.skip_traced and self.s.legal is None:
            await self._skip_trace()
            return
        if self.s.next_step < len(rules.LADDER):
            await self._ladder_step(self.s.next_step)
            return
        window_ends = self.s.letter_served_at + timedelta(days=rules.LEGAL_NOTICE_RESPONSE_DAYS)
        if workflow.now() < window_ends:
            await self._set_stage("awaiting_response", "legal_branch", window_ends)
            await self._wait_until(window_ends, "legal notice response window (15 days)")
            return
        if workflow.patched(LEGAL_BRANCH):
            await self._legal_step()  # workflows/legal.py
            return
        # Cases started before the legal branch existed wait here (a replay of
        # their history gets here).  The first time one wakes up under this
        # code, it continues as new, and the new run takes the legal branch.
        # A patch id per wake-up: the wake-ups already in the history replay
        # as they were (patched() is False for them and remembers it).
        expiry = rules.local_instant(
            date.fromisoformat(self.s.limitation_expires_on) + timedelta(days=1), time(0, 0), self.debtor.timezone
        )
        await self._set_stage("legal_pending", "legal_branch", None)
        await self._wait_until(expiry, "limitation period expiry")
        self._legacy_wakes += 1
        if workflow.patched(f"{LEGACY_LEGAL_WAIT}-{self._legacy_wakes}"):
            self._continue_now = True

    # ---------------------------------------------------------------- ladder

    async def _ladder_step(self, index: int) -> None:
        step = rules.LADDER[index]
        due = rules.step_due(
            index,
            # the ladder's clock stands still while the case is protected
            opened_at=self.ev.occurred_at + timedelta(seconds=self.s.paused_seconds),
            tz=self.debtor.timezone,
            previous_step_at=self.s.ladder[-1].at if self.s.ladder else None,
            last_response_at=self.s.last_response_at,
            promised_date=date.fromisoformat(self.s.promised_date) if self.s.promised_date else None,
        )
        stage = "promise_to_pay" if self.s.promised_date and workflow.now() < due else "wake_up_ladder"
        # Shown: when the contact can really happen (out of quiet hours).
        await self._set_stage(stage, step.name, rules.next_contact_window(due, self.debtor.timezone, self.contact_rules))
        if not await self._wait_until(due, step.label):
            return  # an event arrived first: re-plan
        window = rules.next_contact_window(workflow.now(), self.debtor.timezone, self.contact_rules)
        if window > workflow.now():
            await self._quiet_hours_until(window, step.name)
            return
        self.s.attempt_no += 1
        result = await workflow.execute_activity_method(
            CaseActivities.contact_debtor,
            ContactRequest(
                account_id=self.ev.account_id, step=step.name, attempt_no=self.s.attempt_no, debtor=self.debtor,
                team_id=self.ev.team_id, amount=self.s.outstanding, currency=self.ev.currency,
                contract_id=self.ev.contract_id,
            ),
            summary=step.label, **CONTACT_ACTIVITY,
        )
        if result.outcome == "quiet_hours":
            await self._quiet_hours_until(result.retry_at, step.name)
            return
        if result.outcome == "capped":
            await self._set_stage("wake_up_ladder", step.name, result.retry_at, note=result.detail)
            await self._wait_until(result.retry_at, f"daily contact cap reached; {step.label} tomorrow")
            return
        await self._after_contact(index, result)

    async def _after_contact(self, index: int, result) -> None:
        step = rules.LADDER[index]
        at = result.attempted_at
        self.s.ladder.append(LadderRecord(step=step.name, at=at, outcome=result.outcome))
        self.s.next_step = index + 1
        self.s.promised_date = None  # a promise that reached this step was broken
        today = rules.local_date(at, self.debtor.timezone)
        if step.channel == "letter" and result.outcome == "delivered":
            self.s.letter_served_at = at
            self._interrupt_limitation(today)  # a demand restarts the limitation period
            await workflow.execute_activity_method(
                CaseActivities.append_evidence,
                EvidenceRequest(
                    account_id=self.ev.account_id, kind="legal_notice_served",
                    key=f"letter:{self.ev.account_id}:{result.detail}",
                    payload=f"{self.ev.account_id}|{self.ev.contract_id}|{result.detail}|{at.isoformat()}",
                ),
                summary="fingerprint served legal notice", **DB_ACTIVITY,
            )
        elif step.channel != "letter":
            answered = result.outcome == "answered"
            self.s.unanswered_in_a_row = 0 if answered else self.s.unanswered_in_a_row + 1
            if result.promised_date:
                self.s.promised_date = result.promised_date
                self.s.last_response_at = at
                self._interrupt_limitation(today)  # the debtor's promise restarts it
            previous_grade = self.s.grade
            self.s.grade = rules.regrade(
                self.s.grade, answered=answered, promised=bool(result.promised_date),
                paid=bool(result.paid_amount), unanswered_in_a_row=self.s.unanswered_in_a_row,
            )
            if self.s.grade == "III" and previous_grade != "III":
                self.s.skip_traced = False  # lost contact: look for a current number first
        if result.paid_amount:
            await self._apply_payment(result.payment_id, Decimal(result.paid_amount), at, source="call")
        if self.s.closed_reason is None:
            await self._record(f"{step.label}: {result.outcome}" + self._plan_offer_note())

    async def _quiet_hours_until(self, window: datetime, action: str) -> None:
        self.quiet_hours = True
        local = rules.local_datetime(window, self.debtor.timezone)
        await self._set_stage(self.s.stage, action, window)
        await self._wait_until(window, f"quiet hours until {local:%H:%M} {self.debtor.timezone}")
        self.quiet_hours = False
        await self._publish()

    # ------------------------------------------------------------ negotiation

    @property
    def _plan_running(self) -> bool:
        return self.s.plan is not None and self.s.plan.status == "active"

    def _income(self) -> Decimal | None:
        income = self.debtor.monthly_disposable_income
        return Decimal(income) if income else None

    def _plan_schedule(self) -> list[tuple[date, Decimal]]:
        return [(date.fromisoformat(i.due_on), Decimal(i.amount)) for i in self.s.plan.schedule]

    def _plan_offer(self) -> tuple[Decimal, int] | None:
        """The plan a cooperative (grade I) debtor is offered (SPEC §2.2)."""
        outstanding = Decimal(self.s.outstanding)
        if self.s.grade != "I" or outstanding <= 0 or self.s.closed_reason or self.s.legal is not None:
            return None
        if self._plan_running:
            return None
        return rules.installment_plan(outstanding, self._income())

    def _plan_offer_note(self) -> str:
        """Offer a plan the first time the debtor is graded I (noted in the record)."""
        offer = self._plan_offer()
        if offer is None or self.s.plan_offered:
            return ""
        self.s.plan_offered = True
        installment, periods = offer
        return f"; installment plan offered: {periods} x {installment} {self.ev.currency} a month"

    def _plan_refusal(self, periods: object) -> str | None:
        return rules.plan_refusal(
            periods, closed_reason=self.s.closed_reason, outstanding=Decimal(self.s.outstanding),
            plan_active=self._plan_running,
            legal_track=self.s.legal.track if self.s.legal else None,
        )

    async def _accept_plan(self, periods: int) -> PlanState:
        now = workflow.now()
        today = rules.local_date(now, self.debtor.timezone)
        schedule = rules.plan_schedule(today, Decimal(self.s.outstanding), self._income(), periods)
        plan = PlanState(
            periods=len(schedule), installment=str(schedule[0][1]), accepted_at=now,
            schedule=[Installment(due.isoformat(), str(amount)) for due, amount in schedule],
        )
        self.s.plan, self.s.plan_offered, self.s.promised_date = plan, True, None
        self.s.last_response_at = now  # an accepted plan is a response
        self.s.grade = rules.regrade(self.s.grade, answered=True, promised=True, paid=False, unanswered_in_a_row=0)
        self._interrupt_limitation(today)  # the debtor acknowledges the debt, like a promise
        self._replan = True  # before any await: a ladder step due now must not go ahead
        await self._record_plan()
        await self._set_stage("installment", "installment_1", self._installment_missed_at(0))
        await self._record(f"installment plan accepted: {plan.periods} x {plan.installment} {self.ev.currency}, "
                           f"first due {plan.schedule[0].due_on}")
        return plan

    def _installment_missed_at(self, index: int) -> datetime:
        """End of the grace after the due date; an installment that fell due
        while the case was protected gets its grace from the resumption."""
        due_on = date.fromisoformat(self.s.plan.schedule[index].due_on)
        if self.s.resumed_at is not None and self.s.resumed_at > self.s.plan.accepted_at:
            due_on = max(due_on, rules.local_date(self.s.resumed_at, self.debtor.timezone))
        return rules.installment_missed_at(due_on, self.debtor.timezone, self.grace_days)

    async def _installment_step(self) -> None:
        """Wait for the next installment; one unpaid past its grace breaks the plan."""
        plan = self.s.plan
        index = rules.next_unpaid_installment(self._plan_schedule(), Decimal(plan.paid))
        if index is None:  # every installment covered (a settled case closes paid first)
            plan.status = "completed"
            await self._record_plan()
            return
        due = plan.schedule[index]
        missed_at = self._installment_missed_at(index)
        await self._set_stage("installment", f"installment_{index + 1}", missed_at)
        if not await self._wait_until(
            missed_at, f"installment {index + 1}/{plan.periods}: {due.amount} {self.ev.currency} "
                       f"due {due.due_on} (+{self.grace_days} days grace)"):
            return  # a payment (or another event) came first
        plan.status = "broken"
        await self._record_plan()
        resumes = rules.LADDER[self.s.next_step].label if self.s.next_step < len(rules.LADDER) else "legal branch"
        await self._set_stage("wake_up_ladder", None, None,
                              note=f"installment {index + 1} ({due.amount} {self.ev.currency} due {due.due_on}) "
                                   f"missed: plan broken, resuming with the {resumes}")

    async def _record_plan(self) -> None:
        plan = self.s.plan
        await workflow.execute_activity_method(
            CaseActivities.record_plan,
            PlanRecord(self.ev.account_id, plan.accepted_at, plan.periods, plan.installment, self.ev.currency,
                       plan.schedule, plan.status, plan.paid),
            summary=f"installment plan: {plan.status}", **DB_ACTIVITY,
        )

    @workflow.update(name="accept_plan")
    async def accept_plan(self, req: PlanRequest) -> dict[str, Any]:
        """The debtor accepts an installment plan of at most ``periods`` months."""
        await self._accept_plan(req.periods)
        self._replan = True
        return self._plan_status()

    @accept_plan.validator
    def _validate_accept_plan(self, req: PlanRequest) -> None:
        refusal = self._plan_refusal(req.periods)
        if refusal:
            raise ValueError(refusal)

    def _plan_status(self) -> dict[str, Any] | None:
        plan = self.s.plan
        if plan is None:
            return None
        unpaid = rules.next_unpaid_installment(self._plan_schedule(), Decimal(plan.paid))
        schedule = [{"due_on": i.due_on, "amount": i.amount, "paid": unpaid is None or n < unpaid}
                    for n, i in enumerate(plan.schedule)]
        return {"periods": plan.periods, "installment": plan.installment, "accepted_at": plan.accepted_at.isoformat(),
                "status": plan.status, "paid": plan.paid, "schedule": schedule}

    # ----------------------------------------------------------- protections

    @property
    def paused_by(self) -> list[str]:
        kinds = sorted({p.kind for p in self.s.pauses}, key=rules.PROTECTIONS.index)
        return (["quiet_hours"] if self.quiet_hours else []) + kinds

    def _add_pause(self, pause: Pause) -> None:
        now = workflow.now()
        if pause.until is not None and pause.until <= now:
            return
        if not self.s.pauses:
            self.s.paused_since = now
        self.s.pauses = [p for p in self.s.pauses if (p.kind, p.ref) != (pause.kind, pause.ref)] + [pause]
        if pause.kind == "disaster_grace" and pause.until is not None:
            # force majeure in the last 6 months suspends the limitation period
            self.s.limitation_expires_on = rules.suspend_limitation(
                date.fromisoformat(self.s.limitation_expires_on),
                rules.local_date(now, self.debtor.timezone), rules.local_date(pause.until, self.debtor.timezone),
            ).isoformat()

    def _remove_pauses(self, keep) -> bool:
        before = len(self.s.pauses)
        self.s.pauses = [p for p in self.s.pauses if keep(p)]
        if not self.s.pauses and self.s.paused_since is not None:
            self.s.paused_seconds += int((workflow.now() - self.s.paused_since).total_seconds())
            self.s.paused_since = None
            self.s.resumed_at = workflow.now()
        return len(self.s.pauses) != before

    def _release_expired_pauses(self) -> bool:
        now = workflow.now()
        return self._remove_pauses(lambda p: p.until is None or p.until > now)

    async def _wait_out_pauses(self) -> None:
        """Wait, on a timer and for events, until the earliest timed protection ends."""
        timed = [p.until for p in self.s.pauses if p.until is not None]
        until = min(timed) if timed else None
        await self._set_stage(self.s.stage, "resume", until)
        holding = ", ".join(f"{p.kind} until {p.until:%Y-%m-%d}" if p.until else f"{p.kind} until released"
                            for p in self.s.pauses)
        if self.s.legal is not None:  # a preservation keeps its clocks meanwhile (workflows/legal.py)
            wake = await self._legal_while_paused()
            if wake is not None and (until is None or wake < until):
                await self._wait_until(wake, f"protected: {holding}; watching the preservation's clocks"[:200])
                return
        await self._wait_until(until, f"protected: {holding}"[:200])

    async def _skip_trace(self) -> None:
        await self._set_stage("skip_tracing", "skip_trace", workflow.now())
        found = await workflow.execute_activity_method(
            CaseActivities.skip_trace, SkipTraceRequest(account_id=self.ev.account_id, debtor=self.debtor),
            summary="skip trace (data lookup, no third-party contact)", **DB_ACTIVITY,
        )
        self.s.skip_traced = True
        if found.found and found.phone:
            self.debtor.phone = found.phone
        await self._set_stage("wake_up_ladder", None, None)
        await self._record(f"skip trace: {'found a current number' if found.found else 'nothing found'}")

    # ---------------------------------------------------------------- events

    @workflow.signal(name="event")
    def event(self, ev: CaseEvent) -> None:
        if ev.event_id in self.s.seen_event_ids or any(e.event_id == ev.event_id for e in self.inbox):
            return  # a replayed event is a no-op
        self.inbox.append(ev)

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {
            "account_id": self.ev.account_id,
            "case_id": workflow.info().workflow_id,
            "debtor_id": self.debtor.debtor_id,
            "stage": self.s.stage,
            "grade": self.s.grade,
            "currency": self.ev.currency,
            "amount_due": self.ev.amount_due,
            "outstanding": self.s.outstanding,
            "paused_by": self.paused_by,
            "protections": [
                {"kind": p.kind, "ref": p.ref, "since": p.since.isoformat(),
                 "until": p.until.isoformat() if p.until else None, "reason": p.reason}
                for p in self.s.pauses
            ],
            "next_action": self.next_action,
            "next_action_at": self.next_action_at.isoformat() if self.next_action_at else None,
            "closed_reason": self.s.closed_reason,
            "closed_detail": self.s.closed_detail,
            "limitation_expires_on": self.s.limitation_expires_on,
            "promised_date": self.s.promised_date,
            "timezone": self.debtor.timezone,
            "ladder": [{"step": r.step, "at": r.at.isoformat(), "outcome": r.outcome} for r in self.s.ladder],
            "plan_offer": self._plan_offer_status(),
            "plan": self._plan_status(),
            "legal": self._legal_status(),
        }

    def _plan_offer_status(self) -> dict[str, Any] | None:
        offer = self._plan_offer()
        return {"installment": str(offer[0]), "periods": offer[1]} if offer else None

    async def _handle_events(self) -> None:
        while self.inbox:
            ev = self.inbox.pop(0)
            self.s.seen_event_ids = (self.s.seen_event_ids + [ev.event_id])[-SEEN_EVENT_IDS_KEPT:]
            if ev.type == "payment.received":
                await self._apply_payment(ev.data["payment_id"], Decimal(ev.data["amount"]), ev.occurred_at,
                                          source="event" if self.s.closed_reason is None else "late")
            elif self.s.closed_reason is not None:
                workflow.logger.info("event %s ignored: case closed", ev.type)
            elif ev.type == "case.recalled":
                await self._close("recalled", "creditor withdrew the case")
            elif ev.type == "dispute.resolved" and ev.data.get("upheld"):
                await self._close("dispute_upheld", "dispute upheld")
            elif ev.type == "plan.accepted" and workflow.patched(INSTALLMENT_PLANS):
                refusal = self._plan_refusal(ev.data.get("periods"))
                if refusal:
                    await self._record(f"plan.accepted {ev.event_id} refused: {refusal}")
                else:
                    await self._accept_plan(ev.data["periods"])
            else:
                note = self._apply_protection_event(ev)
                if note:
                    await self._record(note)

    def _apply_protection_event(self, ev: CaseEvent) -> str | None:
        """Protections from events; returns a note for the record, None if nothing changed."""
        now, d = workflow.now(), ev.data
        if ev.type == "dispute.opened":
            self._add_pause(Pause("dispute", "dispute", now, None, d.get("reason")))
            return "dispute opened: paused"
        if ev.type == "dispute.resolved":
            return "dispute rejected: resumed" if self._remove_pauses(lambda p: p.kind != "dispute") else None
        if ev.type == "suspension.granted":
            if rules.suspension_refusal(d.get("months")):
                return None  # validated at ingest; never trust a payload blindly
            self._grant_suspension(SuspensionRequest(d["months"], d.get("reason", "")))
            return f"debt suspension granted for {d['months']} months"
        if ev.type == "suspension.revoked":
            return "debt suspension revoked" if self._remove_pauses(lambda p: p.kind != "suspension") else None
        if ev.type == "disaster.declared":
            until = datetime.fromisoformat(d["until"])
            self._add_pause(Pause("disaster_grace", d["region"], now, until, f"disaster in {d['region']}"))
            return f"disaster grace in {d['region']} until {until:%Y-%m-%d}"
        if ev.type == "team.suspended":
            self._add_pause(Pause("team_suspended", d["team_id"], now, None, "complaint threshold exceeded"))
            return f"team {d['team_id']} suspended: contacts paused"
        if ev.type == "team.review_cleared":
            team = d["team_id"]
            if self._remove_pauses(lambda p: not (p.kind == "team_suspended" and p.ref == team)):
                return f"team {team} cleared by review: resumed"
            return None
        workflow.logger.info("event %s noted, no handler in this stage", ev.type)
        return None

    def _grant_suspension(self, req: SuspensionRequest) -> Pause:
        now = workflow.now()
        today = rules.local_date(now, self.debtor.timezone)
        until = rules.local_instant(rules.add_months(today, req.months), time(0, 0), self.debtor.timezone)
        pause = Pause("suspension", "suspension", now, until, req.reason or None)
        self._add_pause(pause)
        return pause

    @workflow.update(name="grant_suspension")
    async def grant_suspension(self, req: SuspensionRequest) -> dict[str, Any]:
        """Operators grant a debt suspension (1–24 months) and get its end back."""
        pause = self._grant_suspension(req)
        if workflow.patched(EARLY_REPLAN):
            self._replan = True  # before any await: nothing may be filed or dialled meanwhile
        await self._record(f"debt suspension granted for {req.months} months")
        self._replan = True
        return {"paused_by": self.paused_by, "until": pause.until.isoformat()}

    @grant_suspension.validator
    def _validate_grant_suspension(self, req: SuspensionRequest) -> None:
        if self.s.closed_reason is not None:
            raise ValueError(f"case is closed ({self.s.closed_reason}): nothing to suspend")
        refusal = rules.suspension_refusal(req.months)
        if refusal:
            raise ValueError(refusal)

    async def _apply_payment(self, payment_id: str, amount: Decimal, at: datetime, *, source: str) -> None:
        outstanding = max(Decimal(self.s.outstanding) - amount, Decimal(0)) if self.s.closed_reason is None \
            else Decimal(self.s.outstanding)
        await workflow.execute_activity_method(
            CaseActivities.record_payment,
            PaymentRecord(account_id=self.ev.account_id, payment_id=payment_id, amount=str(amount),
                          currency=self.ev.currency, received_at=at, source=source, outstanding_after=str(outstanding)),
            summary=f"payment {amount} {self.ev.currency}", **DB_ACTIVITY,
        )
        if self.s.closed_reason is not None:
            return  # a closed case records late payments and does nothing else
        self.s.outstanding = str(outstanding)
        self.s.last_response_at = workflow.now()
        plan = self.s.plan
        if self._plan_running:
            plan.paid = str(Decimal(plan.paid) + amount)
            if outstanding == 0:
                plan.status = "completed"
            await self._record_plan()
        self._interrupt_limitation(rules.local_date(workflow.now(), self.debtor.timezone))
        self.s.grade = rules.regrade(self.s.grade, answered=False, promised=False, paid=True, unanswered_in_a_row=0)
        if outstanding == 0:
            await self._close("paid", f"paid in full; last payment {payment_id}")
        else:
            await self._record(f"part payment {amount} {self.ev.currency}")

    # --------------------------------------------------------------- helpers

    def _interrupt_limitation(self, on: date) -> None:
        current = date.fromisoformat(self.s.limitation_expires_on)
        self.s.limitation_expires_on = rules.restart_limitation(current, on).isoformat()

    async def _wait_until(self, at: datetime | None, summary: str) -> bool:
        """Sleep on a durable timer until ``at`` (None = until an event);
        False when an event arrived first."""
        if at is None:
            await workflow.wait_condition(self._interrupted)
            return False
        delay = at - workflow.now()
        if delay <= timedelta(0):
            return True
        try:
            await workflow.wait_condition(self._interrupted, timeout=delay, timeout_summary=summary)
        except asyncio.TimeoutError:
            # An event or Update that came with the timer wins: re-plan first.
            if self._interrupted() and workflow.patched(EVENTS_BEAT_TIMERS):
                return False
            return True
        return False

    def _interrupted(self) -> bool:
        return bool(self.inbox) or self._replan

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() >= self.history_limit or info.is_continue_as_new_suggested()

    async def _set_stage(self, stage: str, action: str | None, at: datetime | None, note: str | None = None) -> None:
        changed = (stage, action, at) != (self.s.stage, self.next_action, self.next_action_at)
        self.s.stage, self.next_action, self.next_action_at = stage, action, at
        if changed:
            await self._publish()
        if note:
            await self._record(note)

    async def _close(self, reason: str, detail: str) -> None:
        self.s.closed_reason, self.s.closed_detail = reason, detail
        self.s.stage, self.next_action, self.next_action_at = "closed", None, None
        self.quiet_hours = False
        self._remove_pauses(lambda p: False)
        await self._close_legal_track(reason, detail)  # a payment or recall stops a running track
        await self._record(f"closed {reason}: {detail}")

    async def _record(self, note: str) -> None:
        """Persist the case's current state (one case_history row) and publish it."""
        self.s.revision += 1
        await workflow.execute_activity_method(
            CaseActivities.record_case,
            CaseSnapshot(
                account_id=self.ev.account_id, revision=self.s.revision, stage=self.s.stage, grade=self.s.grade,
                outstanding=self.s.outstanding, limitation_expires_on=self.s.limitation_expires_on,
                paused_by=list(self.paused_by), next_action=self.next_action, next_action_at=self.next_action_at,
                closed_reason=self.s.closed_reason, note=note,
            ),
            summary=f"record: {note}"[:200], **DB_ACTIVITY,
        )
        await self._publish()

    async def _publish(self) -> None:
        """Keep search attributes and the UI's current details in step with the case."""
        values = {
            "CaseStage": self.s.stage, "DebtorGrade": self.s.grade, "Region": self.debtor.region,
            "PausedBy": list(self.paused_by), "OutstandingAmount": self.s.outstanding,
            "DebtorId": self.debtor.debtor_id,
        }
        updates = search_attribute_updates(values, self._published)
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = values
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        lines = [
            f"**Stage:** {self.s.stage}  ",
            f"**Grade:** {self.s.grade}  ",
            f"**Outstanding:** {self.s.outstanding} {self.ev.currency}  ",
        ]
        if self.s.closed_reason:
            lines.append(f"**Closed:** {self.s.closed_reason} ({self.s.closed_detail})")
        elif self.next_action:
            when = ""
            if self.next_action_at:
                local = rules.local_datetime(self.next_action_at, self.debtor.timezone)
                when = f" at {local:%Y-%m-%d %H:%M} {self.debtor.timezone}"
            label = NEXT_ACTION_LABELS.get(self.next_action, self.next_action.replace("_", " "))
            if self.next_action.startswith("installment_") and self.s.plan is not None:
                n = int(self.next_action.rsplit("_", 1)[1])
                due = self.s.plan.schedule[n - 1]
                label = (f"installment {n}/{self.s.plan.periods} ({due.amount} {self.ev.currency}, due {due.due_on});"
                         " missed if unpaid")
            lines.append(f"**Waiting for:** {label}{when}  ")
        if self.quiet_hours:
            lines.append("**Paused by:** quiet hours  ")
        for p in self.s.pauses:
            until = f"until {p.until:%Y-%m-%d %H:%M} UTC" if p.until else "until released"
            lines.append(f"**Paused by:** {p.kind} ({p.ref}) {until}  ")
        plan = self.s.plan
        if plan is not None:
            lines.append(f"**Installment plan:** {plan.status}, {plan.periods} x {plan.installment} "
                         f"{self.ev.currency}, paid {plan.paid}  ")
        legal = self.s.legal
        if legal is not None:
            lines.append(f"**Legal track:** {legal.track} ({legal.status}): {legal.reason}  ")
            for e in legal.escalations:
                lines.append(f"**Escalated:** {e}  ")
        lines.append(f"**Limitation expires:** {self.s.limitation_expires_on}")
        return "\n".join(lines)
