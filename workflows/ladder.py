"""The wake-up ladder of a case (SPEC §2.2, §3): each step when it is due,
each contact inside the debtor's local day and under the caps, the grade it
leaves, and the skip trace of a debtor whose contact was lost.

A part of the case (:class:`workflows.case.DelinquentAccountWorkflow`), which
it sees through :class:`LadderHost`: the contact itself is an activity
(``contact_debtor``), or a work item when people make the call
(:mod:`workflows.desk`); the letter's service is :mod:`workflows.notice`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import patches, presentation, rules
    from workflows.host import CaseHost
    from workflows.model import CaseContactRules, ContactRequest, ContactResult, LadderRecord, SkipTraceRequest
    from workflows.options import CONTACT_ACTIVITY, DB_ACTIVITY, contact_activity, not_started, replan_delay
    from workflows.status import Grade, Outcome, Stage
    from workflows import strategy as strategies

if TYPE_CHECKING:
    from workflows.effects import CaseEvents
    from workflows.negotiation import Negotiation
    from workflows.notice import LegalNotice
    from workflows.presentation import Showing


class LadderHost(CaseHost, Protocol):
    """What the ladder needs of its case beyond any part's :class:`CaseHost`."""

    ladder: list[rules.LadderStep]  # the steps of the case's strategy
    strategy: strategies.CaseStrategy | None
    contact_rules: rules.ContactRules  # the rules the case plans its contacts with
    showing: Showing
    notice: LegalNotice
    negotiation: Negotiation
    events: CaseEvents

    async def publish(self) -> None:
        """Show the case's state in its search attributes and current details."""


class WakeUpLadder:
    """A case's climb up its ladder, one step at a time."""

    def __init__(self, case: LadderHost, case_rules: CaseContactRules | None) -> None:
        self.case = case
        self.case_rules = case_rules  # the case's own contact rules, sent with each contact

    async def step(self, index: int) -> None:
        """Wait until step ``index`` is due and contact is allowed, then contact the debtor."""
        case = self.case
        step = case.ladder[index]
        at = strategies.step_times(case.strategy)[index]
        due = case.notice.retry_due() or rules.step_due(
            index,
            # the ladder's clock stands still while the case is protected
            opened_at=case.ev.occurred_at + timedelta(seconds=case.s.paused_seconds),
            tz=case.debtor.timezone,
            previous_step_at=case.s.ladder[-1].at if case.s.ladder else None,
            last_response_at=case.s.last_response_at,
            promised_date=date.fromisoformat(case.s.promised_date) if case.s.promised_date else None,
            ladder=case.ladder, at=time.fromisoformat(at) if at else None, start=case.s.ladder_start,
        )
        stage = Stage.PROMISE_TO_PAY if case.s.promised_date and workflow.now() < due else Stage.WAKE_UP_LADDER
        # Shown: when the contact can really happen (out of quiet hours).
        await case.set_stage(stage, step.name, self.contact_window(due))
        if not await case.wait_until(due, case.notice.label(step)):
            return  # an event arrived first: re-plan
        window = self.contact_window(workflow.now())
        if window > workflow.now():
            await self.quiet_hours_until(window, step.name)
            return
        actor = None
        if step.channel == "human" and case.desk.takes("human_call"):
            result, actor = await case.desk.human_call(step)  # a person calls: the same result, from the desk
            if result is None:
                return  # expired (a new task on the next contact day) or withdrawn: re-plan
        else:
            result = await self.contact(step)
        if result.outcome == Outcome.QUIET_HOURS:
            await self.quiet_hours_until(result.retry_at, step.name)
        elif result.outcome == Outcome.CAPPED:
            await case.set_stage(Stage.WAKE_UP_LADDER, step.name, result.retry_at, note=result.detail)
            await case.wait_until(result.retry_at, f"daily contact cap reached; {step.label} tomorrow")
        elif result.outcome == Outcome.NOT_STARTED:  # not placed: planned again (quiet hours, caps judged then)
            await case.set_stage(Stage.WAKE_UP_LADDER, step.name, result.retry_at, note=result.detail)
            await case.wait_until(result.retry_at, f"{step.label} not started in time; again")
        else:
            await self.after_contact(index, result, actor=actor)
            case.desk.taken_in()

    async def contact(self, step: rules.LadderStep) -> ContactResult:
        """Contact the debtor (the activity judges quiet hours and caps at the
        moment of the call).  A contact no worker started within its
        schedule-to-start limit was not placed: the case plans it again."""
        case = self.case
        case.s.attempt_no += 1
        request = ContactRequest(
            account_id=case.ev.account_id, step=step.name, attempt_no=case.s.attempt_no, debtor=case.debtor,
            team_id=case.ev.team_id, amount=case.s.outstanding, currency=case.ev.currency,
            contract_id=case.ev.contract_id, try_no=case.notice.next_try() if step.channel == "letter" else 1,
            contact_rules=self.case_rules,
        )
        if not case.patched(patches.CONTACT_START_LIMIT):
            return await workflow.execute_activity_method(
                CaseActivities.contact_debtor, request, summary=case.notice.label(step), **CONTACT_ACTIVITY)
        try:
            return await workflow.execute_activity_method(
                CaseActivities.contact_debtor, request, summary=case.notice.label(step), **contact_activity())
        except ActivityError as err:
            if not not_started(err):
                raise
        again = workflow.now() + replan_delay()
        return ContactResult(
            outcome=Outcome.NOT_STARTED, retry_at=again,
            detail=f"{step.label}: not started in time (worker backlog), not placed; planned again "
                   f"{presentation.local_stamp(again, case.debtor.timezone)}")

    async def after_contact(self, index: int, result: ContactResult, *, actor: str | None = None) -> None:
        case = self.case
        step = case.ladder[index]
        case.s.ladder.append(LadderRecord(step=step.name, at=result.attempted_at, outcome=result.outcome))
        case.s.next_step = index + 1
        case.s.promised_date = None  # a promise that reached this step was broken
        next_for_notice = ""
        if step.channel == "letter" and result.outcome == Outcome.DELIVERED:
            await case.notice.served(result.attempted_at, result.detail)
        elif step.channel == "letter" and case.patched(patches.LETTER_DELIVERY):
            next_for_notice = "; " + await case.notice.not_served(result)
        elif step.channel != "letter":
            self.regrade(result)
        if result.paid_amount:
            await case.events.call_payment(result.payment_id, Decimal(result.paid_amount), result.attempted_at)
        if case.s.closed_reason is None:
            await case.record(f"{step.label}: {result.outcome}{next_for_notice}" + case.negotiation.offer_note(),
                              actor=actor)

    def regrade(self, result: ContactResult) -> None:
        case = self.case
        answered = result.outcome == Outcome.ANSWERED
        case.s.unanswered_in_a_row = 0 if answered else case.s.unanswered_in_a_row + 1
        if result.promised_date:
            case.s.promised_date = result.promised_date
            case.s.last_response_at = result.attempted_at
            case.interrupt_limitation(rules.local_date(result.attempted_at, case.debtor.timezone))  # so does a promise
        previous_grade = case.s.grade
        case.s.grade = Grade(rules.regrade(
            case.s.grade, answered=answered, promised=bool(result.promised_date),
            paid=bool(result.paid_amount), unanswered_in_a_row=case.s.unanswered_in_a_row,
        ))
        if case.s.grade == Grade.III and previous_grade != Grade.III:
            case.s.skip_traced = False  # lost contact: look for a current number first

    async def quiet_hours_until(self, window: datetime, action: str) -> None:
        case = self.case
        case.showing.quiet_hours = True
        local = rules.local_datetime(window, case.debtor.timezone)
        await case.set_stage(case.s.stage, action, window)
        await case.wait_until(window, f"quiet hours until {local:%H:%M} {case.debtor.timezone}")
        case.showing.quiet_hours = False
        await case.publish()

    def contact_window(self, at: datetime) -> datetime:
        """``at``, or the end of quiet hours under the rules this case plans with."""
        case = self.case
        return rules.next_contact_window(at, case.debtor.timezone, case.contact_rules)

    async def skip_trace(self) -> None:
        case = self.case
        await case.set_stage(Stage.SKIP_TRACING, "skip_trace", workflow.now())
        found = await workflow.execute_activity_method(
            CaseActivities.skip_trace, SkipTraceRequest(account_id=case.ev.account_id, debtor=case.debtor),
            summary="skip trace (data lookup, no third-party contact)", **DB_ACTIVITY,
        )
        note, actor = f"skip trace: {'found a current number' if found.found else 'nothing found'}", None
        if not found.found and case.desk.takes("skip_trace_review"):
            review = await case.desk.skip_trace_review()  # an investigator looks (the number goes to the database)
            if review is None:
                return  # an event came first: the review stays open and the case comes back to it
            found_one = review.outcome == "found"
            note = f"skip trace review: {'a new number on file' if found_one else 'no number found'}"
            actor = review.completed_by
        case.s.skip_traced = True  # a number found is in the debtors table, where contact_debtor reads it
        await case.set_stage(Stage.WAKE_UP_LADDER, None, None)
        await case.record(note, actor=actor)
