"""Grade I negotiation (SPEC §2.2): the installment plan a case offers,
accepts and watches.

A cooperative debtor is offered a plan of at most 12 monthly installments
(30 % of monthly disposable income, or outstanding / 12 rounded up to the
cent when that would take longer).  Accepted — by the ``accept_plan`` Update
or a ``plan.accepted`` event — the plan holds the ladder while its
installments are paid; one unpaid past its grace breaks the plan, and the
ladder resumes where it stood.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import rules
    from workflows.host import CaseHost
    from workflows.model import CaseState, Debtor, Installment, PlanRecord, PlanState
    from workflows.options import DB_ACTIVITY
    from workflows.status import Grade, Stage


def plan_running(s: CaseState) -> bool:
    return s.plan is not None and s.plan.status == "active"


def income(debtor: Debtor) -> Decimal | None:
    """The income in a case's input: only cases started before the database held it."""
    return Decimal(debtor.monthly_disposable_income) if debtor.monthly_disposable_income else None


def monthly_share(s: CaseState, debtor: Debtor) -> Decimal | None:
    """30 % of the debtor's income: computed by the open_case activity from the
    database (the case never sees the income), or, for a case opened before,
    from the income in its input."""
    if s.installment_share is not None:
        return Decimal(s.installment_share)
    return rules.installment_share(income(debtor))


def plan_schedule(plan: PlanState) -> list[tuple[date, Decimal]]:
    return [(date.fromisoformat(i.due_on), Decimal(i.amount)) for i in plan.schedule]


def plan_offer(s: CaseState, debtor: Debtor) -> tuple[Decimal, int] | None:
    """(installment, periods) a cooperative (grade I) debtor is offered now; None: no offer."""
    outstanding = Decimal(s.outstanding)
    if s.grade != Grade.I or outstanding <= 0 or s.closed_reason or s.legal is not None or plan_running(s):
        return None
    return rules.installment_plan_for_share(outstanding, monthly_share(s, debtor), s.plan_max_periods)


def accepted_note(plan: PlanState, currency: str) -> str:
    return (f"installment plan accepted: {plan.periods} x {plan.installment} {currency}, "
            f"first due {plan.schedule[0].due_on}")


def plan_refusal(s: CaseState, periods: object) -> str | None:
    """Why a plan of ``periods`` may not be accepted now (None: it may)."""
    return rules.plan_refusal(
        periods, closed_reason=s.closed_reason, outstanding=Decimal(s.outstanding), plan_active=plan_running(s),
        legal_track=s.legal.track if s.legal else None, max_periods=s.plan_max_periods,
    )


class Negotiation:
    """The case's installment plan, from offer to completed or broken."""

    def __init__(self, case: CaseHost, grace_days: int) -> None:
        self.case = case
        self.grace_days = grace_days  # days after a due date before an installment is missed
        self.ladder = rules.LADDER  # the case's (its strategy's), named when a broken plan resumes it

    def terms(self, strategy, ladder: tuple[rules.LadderStep, ...]) -> None:
        """The plan terms of the case's strategy (a :class:`workflows.strategy.CaseStrategy`)."""
        self.ladder = ladder
        if self.case.s.stage == Stage.VERIFYING:  # a case keeps the terms it opened with
            self.case.s.plan_max_periods = strategy.max_periods

    def offer_note(self) -> str:
        """Offer a plan the first time the debtor is graded I (a note for the record)."""
        s = self.case.s
        offer = plan_offer(s, self.case.debtor)
        if offer is None or s.plan_offered:
            return ""
        s.plan_offered = True
        installment, periods = offer
        return f"; installment plan offered: {periods} x {installment} {self.case.ev.currency} a month"

    async def accept(self, periods: int, *, actor: str | None = None) -> PlanState:
        """The debtor accepts a plan of at most ``periods`` months (already validated);
        ``actor``: who sent the acceptance."""
        case, s, now = self.case, self.case.s, workflow.now()
        today = rules.local_date(now, case.debtor.timezone)
        schedule = rules.plan_schedule_for_share(today, Decimal(s.outstanding), monthly_share(s, case.debtor),
                                                periods)
        plan = PlanState(
            periods=len(schedule), installment=str(schedule[0][1]), accepted_at=now,
            schedule=[Installment(due.isoformat(), str(amount)) for due, amount in schedule],
        )
        s.plan, s.plan_offered, s.promised_date = plan, True, None
        s.last_response_at = now  # an accepted plan is a response
        s.grade = Grade(rules.regrade(s.grade, answered=True, promised=True, paid=False, unanswered_in_a_row=0))
        case.interrupt_limitation(today)  # the debtor acknowledges the debt, like a promise
        case.replan()  # before any await: a ladder step due now must not go ahead
        await self.record_plan()
        await case.set_stage(Stage.INSTALLMENT, "installment_1", self._missed_at(0))
        await case.record(accepted_note(plan, case.ev.currency), actor=actor)
        return plan

    async def installment_step(self) -> None:
        """Wait for the next installment; one unpaid past its grace breaks the plan."""
        case, plan = self.case, self.case.s.plan
        index = rules.next_unpaid_installment(plan_schedule(plan), Decimal(plan.paid))
        if index is None:  # every installment covered (a settled case closes paid first)
            plan.status = "completed"
            await self.record_plan()
            return
        due = plan.schedule[index]
        missed_at = self._missed_at(index)
        await case.set_stage(Stage.INSTALLMENT, f"installment_{index + 1}", missed_at)
        if not await case.wait_until(
                missed_at, f"installment {index + 1}/{plan.periods}: {due.amount} {case.ev.currency} "
                           f"due {due.due_on} (+{self.grace_days} days grace)"):
            return  # a payment (or another event) came first
        plan.status = "broken"
        await self.record_plan()
        next_step = case.s.next_step
        resumes = self.ladder[next_step].label if next_step < len(self.ladder) else "legal branch"
        await case.set_stage(Stage.WAKE_UP_LADDER, None, None,
                             note=f"installment {index + 1} ({due.amount} {case.ev.currency} due {due.due_on}) "
                                  f"missed: plan broken, resuming with the {resumes}")

    async def payment(self, amount: Decimal, outstanding: Decimal) -> None:
        """A payment counts towards a running plan's installments, in order."""
        plan = self.case.s.plan
        if not plan_running(self.case.s):
            return
        plan.paid = str(Decimal(plan.paid) + amount)
        if outstanding == 0:
            plan.status = "completed"
        await self.record_plan()

    async def record_plan(self) -> None:
        plan, ev = self.case.s.plan, self.case.ev
        await workflow.execute_activity_method(
            CaseActivities.record_plan,
            PlanRecord(ev.account_id, plan.accepted_at, plan.periods, plan.installment, ev.currency,
                       plan.schedule, plan.status, plan.paid),
            summary=f"installment plan: {plan.status}", **DB_ACTIVITY,
        )

    def _missed_at(self, index: int) -> datetime:
        """End of the grace after the due date; an installment that fell due
        while the case was protected gets its grace from the resumption."""
        s, tz = self.case.s, self.case.debtor.timezone
        due_on = date.fromisoformat(s.plan.schedule[index].due_on)
        if s.resumed_at is not None and s.resumed_at > s.plan.accepted_at:
            due_on = max(due_on, rules.local_date(s.resumed_at, tz))
        return rules.installment_missed_at(due_on, tz, self.grace_days)
