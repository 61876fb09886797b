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
   a payment order or asset preservation;
5. close ``paid`` the moment the outstanding balance reaches zero, or
   ``recalled`` when the creditor withdraws.

Protections pause every step (:mod:`workflows.protections`).  An event
changes the case only when it applies (:mod:`workflows.effects`; operators
send it through the ``apply_event`` Update and get its effect back), and no
outcome of serving the legal notice wedges it (:mod:`workflows.notice`).
The case holds its parts as objects — the wake-up ladder
(:mod:`workflows.ladder`), the negotiation (:mod:`workflows.negotiation`), its
events, its legal notice and the legal track (:mod:`workflows.legal`) — which
see it only through :class:`workflows.host.CaseHost` (the ladder through its
:class:`workflows.ladder.LadderHost`).  How the case shows itself (status,
search attributes, current details) is :mod:`workflows.presentation`; rules
are :mod:`workflows.rules` (pure functions), I/O happens in activities
(options in :mod:`workflows.options`), and every ``workflow.patched`` id is
in the ledger :mod:`workflows.patches`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, time, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from activities.score_activities import ScoreActivities, ScoreRequest
    from workflows import patches, presentation, protections, rules
    from workflows.effects import NO_EFFECT, CaseEvents
    from workflows.desk import Desk
    from workflows.ladder import WakeUpLadder
    from workflows.legal import LegalTrack
    from workflows.model import (
        CaseEvent, CaseInput, CaseSnapshot, CaseState, OpenCaseRequest, PlanRequest, SuspensionRequest,
    )
    from workflows.negotiation import Negotiation, plan_refusal, plan_running
    from workflows.notice import LegalNotice
    from workflows.options import DB_ACTIVITY, DB_LOCAL_ACTIVITY
    from workflows.presentation import Showing
    from workflows.search import search_attribute_updates
    from workflows.status import (
        CaseStatus, ClosedReason, EventEffect, Grade, PauseKind, PlanStatus, Stage, SuspensionGranted,
    )
    from workflows import strategy as strategies
    from workflows.work_items import DeskEffect, WorkItemDone

OPENED = "case opened"  # the note of a case's first record


@workflow.defn(name="DelinquentAccountWorkflow")
class DelinquentAccountWorkflow:
    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self._input = inp  # what continue-as-new carries on, with the state and the inbox of the moment
        self.ev = inp.event
        self.debtor = inp.event.debtor
        self.s: CaseState = inp.state or CaseState()
        self.inbox: list[CaseEvent] = list(inp.pending_events)
        self.contact_rules = inp.planning_rules()
        self.showing = Showing()  # what the case shows it waits for (presentation)
        self.negotiation = Negotiation(self, inp.installment_grace_days)
        self.events = CaseEvents(self, self.negotiation)
        self.notice = LegalNotice(self, inp.letter_attempts, self.contact_rules)
        self.desk = Desk(self, inp.desk_steps, self.contact_rules)  # steps people do (SPEC §8)
        self.wake_up = WakeUpLadder(self, inp.contact_rules)  # the ladder's steps and contacts
        self.legal_track = LegalTrack(self)
        self._applying = 0  # apply_event Updates in progress: the case takes no step meanwhile
        self._replan = False  # set by an update that changes what the case waits for
        self._continue_now = False  # continue as new at the next turn of the loop
        self._opening = False  # open_case is writing the case's first record (open-in-one-v1)
        self._legacy_wakes = 0  # wake-ups in the pre-legal-branch wait (see _legacy_legal_wait)
        self._published: dict[str, Any] = {}
        self._patches = patches.Patches()  # this run's workflow.patched, through its epoch
        self.strategy: strategies.CaseStrategy | None = None  # set by _follow_strategy
        self.ladder = rules.LADDER

    def patched(self, patch_id: str) -> bool:
        """``workflow.patched`` for this run: a run born under an epoch of
        :mod:`workflows.patches` records that one marker, not one a patch."""
        return self._patches(patch_id)

    def _follow_strategy(self) -> None:
        """The case follows the strategy of its input (the default one when it
        carries none); a history from before strategies replays on the
        constants of ``rules``, without the ``Strategy`` search attribute."""
        if not self.patched(patches.STRATEGY):
            return
        self.strategy = self._input.strategy or strategies.DEFAULT_STRATEGY
        self.ladder = strategies.ladder_of(self.strategy)
        self.notice.letter = strategies.letter_index(self.ladder)
        self.negotiation.terms(self.strategy, self.ladder)
        self.legal_track.strategy = self.strategy

    # ------------------------------------------------------------------ story

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseStatus:
        """Open the case, then take it a step at a time — the events that came
        first, then the next step — until it closes; a long history goes on
        in a new run.  The result is the closed case's status."""
        self._follow_strategy()
        if self.s.stage == Stage.VERIFYING:
            await self._open_case()
        while self.s.closed_reason is None:
            await self._updates_applied()
            await self._handle_events()
            if self.s.closed_reason is not None:
                break
            if self._history_is_long() or self._continue_now:
                await self._continue_as_new()
            await self._advance()
            self.desk.taken_in()  # a work item's outcome read in this step is taken in: its Update answers
        await self._handle_events()  # payments that arrived with the closing step are still recorded
        await workflow.wait_condition(workflow.all_handlers_finished)  # an Update in flight finishes its writes
        return self.status()

    async def _open_case(self) -> None:
        """Verify the debt and fingerprint its evidence; an invalid or
        time-barred debt closes at once, without any contact."""
        today = self._today()
        due = date.fromisoformat(self.ev.due_date)
        band = strategies.band_for(self.strategy, self.ev.amount_due)  # the strategy's treatment of the amount
        self.s.grade = Grade(rules.initial_grade(self.ev.grade or (band.grade if band else None),
                                                 self.ev.asset_flight_risk))
        self.s.next_step = self.s.ladder_start = strategies.first_step(self.ladder, band)
        self.s.outstanding = self.ev.amount_due
        self.s.limitation_expires_on = rules.limitation_expiry(due).isoformat()
        if self._input.score and self.patched(patches.RECOVERY_SCORE):
            await self._score()
        invalid = rules.verify_debt(
            amount_due=self.ev.amount_due, currency=self.ev.currency, contract_id=self.ev.contract_id,
            due_date=due, today=today,
        )
        # The usual opening is recorded by open_case itself, one activity less:
        # a valid debt, in time, graded other than I (grade I is offered a plan
        # from the income on file, which only the activity reads).
        in_one = (not invalid and not self._time_barred(today) and self.s.grade != Grade.I
                  and self.patched(patches.OPEN_IN_ONE))
        snapshot = None
        if in_one:  # its revision taken now: a record an Update makes meanwhile waits and comes after it
            self.s.revision += 1
            snapshot = self._snapshot(OPENED, Stage.WAKE_UP_LADDER, self.ev.actor, revision=self.s.revision)
            self._opening = True
        opened = await self._db_step(
            CaseActivities.open_case,
            OpenCaseRequest(event=self.ev, grade=self.s.grade, limitation_expires_on=self.s.limitation_expires_on,
                            income_share=(self.strategy or strategies.DEFAULT_STRATEGY).income_share,
                            strategy=self.strategy.label if self.strategy else None, opened=snapshot),
            "verify debt, fingerprint evidence",
        )
        self.s.installment_share = opened.installment_share  # derived in the activity: the income stays there
        for pause in opened.protections:  # a disaster or team suspension already in force
            protections.add_pause(self.s, pause, workflow.now(), self.debtor.timezone)
        if invalid:
            await self.close(ClosedReason.INVALID_DEBT, invalid)
        elif self._time_barred(today):
            await self._close_time_barred()
        elif snapshot is not None:
            if self.s.closed_reason is None:  # an Update meanwhile may have closed it (its record waits)
                self.s.stage = Stage.WAKE_UP_LADDER
            self._opening = False
            if opened.recorded:
                await self.publish()
            else:  # a protection found in force: the record shows it, in the revision taken
                await self.record(OPENED, actor=self.ev.actor, revision=snapshot.revision)
        else:
            self.s.stage = Stage.WAKE_UP_LADDER
            await self.record(OPENED + self.negotiation.offer_note(), actor=self.ev.actor)

    async def _score(self) -> None:
        """The recovery score (COLLECTIONS_SCORE_MODEL), computed from the debtor's row by an activity."""
        self.s.score = await workflow.execute_activity_method(
            ScoreActivities.score_case, ScoreRequest(self.ev.account_id, self.debtor.debtor_id, self.ev.amount_due,
                                                     self.ev.grade, self.ev.asset_flight_risk),
            summary="recovery score", **DB_ACTIVITY)
        by_score = strategies.grade_for_score(self.strategy, self.s.score) if self.ev.grade is None else None
        if by_score is not None:  # the strategy grades by the score when upstream gave no grade
            self.s.grade = Grade(rules.initial_grade(by_score, self.ev.asset_flight_risk))

    async def _advance(self) -> None:
        """Take the case one step further, or wait for the next thing to happen."""
        self._replan = False
        if self._time_barred(self._today()):
            await self._close_time_barred()
            return
        if protections.release_expired(self.s, workflow.now()):
            await self.record("protection expired")
        if self.s.pauses:
            await self._wait_out_pauses()
        elif plan_running(self.s):
            await self.negotiation.installment_step()
        elif self.s.grade == Grade.III and not self.s.skip_traced and self.s.legal is None:
            await self.wake_up.skip_trace()
        elif self.s.next_step < len(self.ladder):
            await self.wake_up.step(self.s.next_step)
        elif workflow.now() < self._response_window_ends():
            await self._await_response()
        elif self.patched(patches.LEGAL_BRANCH):
            await self.legal_track.step()
        else:
            await self._legacy_legal_wait()

    # ------------------------------------------------- towards the legal branch

    def _response_window_ends(self) -> datetime:
        return self.notice.window_opens() + timedelta(days=rules.LEGAL_NOTICE_RESPONSE_DAYS)

    async def _await_response(self) -> None:
        window_ends = self._response_window_ends()
        await self.set_stage(Stage.AWAITING_RESPONSE, "legal_branch", window_ends)
        await self.wait_until(window_ends, "legal notice response window (15 days)")

    async def _legacy_legal_wait(self) -> None:
        """Cases started before the legal branch existed (v1) wait here when
        their history replays.  The first time one wakes up under this code,
        it continues as new, and the new run takes the legal branch (see
        :func:`workflows.patches.legacy_legal_wait`)."""
        expiry = rules.local_instant(
            date.fromisoformat(self.s.limitation_expires_on) + timedelta(days=1), time(0, 0), self.debtor.timezone
        )
        await self.set_stage(Stage.LEGAL_PENDING, "legal_branch", None)
        await self.wait_until(expiry, "limitation period expiry")
        self._legacy_wakes += 1
        if self.patched(patches.legacy_legal_wait(self._legacy_wakes)):
            self._continue_now = True

    # ----------------------------------------------------------- protections

    @property
    def paused_by(self) -> list[PauseKind]:
        return protections.paused_by(self.s, self.showing.quiet_hours)

    async def _wait_out_pauses(self) -> None:
        """Wait, on a timer and for events, until the earliest timed protection ends."""
        until = protections.earliest_end(self.s)
        await self.set_stage(self.s.stage, "resume", until)
        holding = protections.holding(self.s)
        if self.s.legal is not None:  # a preservation keeps its clocks meanwhile
            wake = await self.legal_track.while_paused()
            if wake is not None and (until is None or wake < until):
                await self.wait_until(wake, f"protected: {holding}; watching the preservation's clocks"[:200])
                return
        await self.wait_until(until, f"protected: {holding}"[:200])

    @workflow.update(name="grant_suspension")
    async def grant_suspension(self, req: SuspensionRequest) -> SuspensionGranted:
        """Operators grant a debt suspension (1–24 months) and get its end back."""
        now = workflow.now()
        pause = protections.suspension(req.months, req.reason, now, self.debtor.timezone)
        protections.add_pause(self.s, pause, now, self.debtor.timezone)
        if self.patched(patches.EARLY_REPLAN):
            self._replan = True  # before any await: nothing may be filed or dialled meanwhile
        await self.record(f"debt suspension granted for {req.months} months")
        self._replan = True
        return SuspensionGranted(paused_by=self.paused_by, until=pause.until)

    @grant_suspension.validator
    def _validate_grant_suspension(self, req: SuspensionRequest) -> None:
        if self.s.closed_reason is not None:
            raise ValueError(f"case is closed ({self.s.closed_reason}): nothing to suspend")
        refusal = rules.suspension_refusal(req.months)
        if refusal:
            raise ValueError(refusal)

    # ------------------------------------------------------------ negotiation

    @workflow.update(name="accept_plan")
    async def accept_plan(self, req: PlanRequest) -> PlanStatus | None:
        """The debtor accepts an installment plan of at most ``periods`` months."""
        await self.negotiation.accept(req.periods)
        self._replan = True
        return presentation.plan_status(self.s)

    @accept_plan.validator
    def _validate_accept_plan(self, req: PlanRequest) -> None:
        refusal = plan_refusal(self.s, req.periods)
        if refusal:
            raise ValueError(refusal)

    # ---------------------------------------------------------------- events

    @workflow.signal(name="event")
    def event(self, ev: CaseEvent) -> None:
        if ev.event_id in self.s.seen_event_ids or any(e.event_id == ev.event_id for e in self.inbox):
            return  # a replayed event is a no-op
        self.inbox.append(ev)

    async def _handle_events(self) -> None:
        while self.inbox:
            ev = self.inbox.pop(0)
            self.events.seen(ev)
            if self.patched(patches.EVENT_EFFECTS):
                await self.events.apply(ev)
            else:
                await self.events.legacy(ev)

    @workflow.update(name="apply_event")
    async def apply_event(self, ev: CaseEvent) -> EventEffect:
        """Apply an event now and answer what it did (the operator's path; the
        ``event`` signal applies the same way, from the inbox)."""
        self._applying += 1
        self._replan = True  # before any await: the case takes no step on the state before the event
        try:
            self.events.seen(ev)
            return await self.events.apply(ev)
        finally:
            self._applying -= 1
            self._replan = True

    @apply_event.validator
    def _validate_apply_event(self, ev: CaseEvent) -> None:
        """Refuse, with the reason, an event that would change nothing (nothing
        is written for it), and anything but a payment on a closed case."""
        if ev.event_id in self.s.seen_event_ids or any(e.event_id == ev.event_id for e in self.inbox):
            raise ApplicationError(f"{NO_EFFECT}: event {ev.event_id} was already applied", type="NoEffect")
        why = self.events.refusal(ev)
        if why is not None and why.kind == NO_EFFECT:
            raise ApplicationError(str(why), type="NoEffect")  # "no effect: no open dispute"
        if why is not None:
            raise ApplicationError(why.reason, type="Refused")  # a request the case does not grant

    @workflow.update(name="work_item_done")
    async def work_item_done(self, done: WorkItemDone) -> DeskEffect:
        """The desk says a work item is done; the answer comes once the case has taken it in."""
        return await self.desk.done(done)

    @work_item_done.validator
    def _validate_work_item_done(self, done: WorkItemDone) -> None:
        self.desk.validate(done)

    async def _updates_applied(self) -> None:
        """Take no step while an apply_event Update is applying its event."""
        if self._applying:
            await workflow.wait_condition(lambda: not self._applying)

    @workflow.query(name="status")
    def status(self) -> CaseStatus:
        return presentation.case_status(self.ev, self.s, self.showing, workflow.info().workflow_id)

    # ------------------------------------- what the parts ask of the case (CaseHost)

    async def record(self, note: str, *, actor: str | None = None, revision: int | None = None) -> None:
        """Persist the case's current state (one case_history row: the next
        revision, or ``revision`` taken before) and publish it.  While open_case
        writes the case's first record, a record waits for it to be written."""
        if self._opening:
            await workflow.wait_condition(lambda: not self._opening)
        if revision is None:
            self.s.revision += 1
            revision = self.s.revision
        await self._db_step(CaseActivities.record_case, self._snapshot(note, self.s.stage, actor, revision=revision),
                            f"record: {note}"[:200])
        await self.publish()

    def _db_step(self, activity: Any, arg: Any, summary: str) -> Any:
        """The case's opening or a record: a local activity (local-db-steps-v1), before it an activity."""
        if self.patched(patches.LOCAL_DB_STEPS):
            return workflow.execute_local_activity_method(activity, arg, summary=summary, **DB_LOCAL_ACTIVITY)
        return workflow.execute_activity_method(activity, arg, summary=summary, **DB_ACTIVITY)

    def _snapshot(self, note: str, stage: Stage, actor: str | None, *, revision: int) -> CaseSnapshot:
        """The case as the case_history row of ``revision``."""
        return CaseSnapshot(
            account_id=self.ev.account_id, revision=revision,
            stage=stage, grade=self.s.grade, outstanding=self.s.outstanding,
            limitation_expires_on=self.s.limitation_expires_on, paused_by=list(self.paused_by),
            next_action=self.showing.next_action, next_action_at=self.showing.next_action_at,
            closed_reason=self.s.closed_reason, note=note, actor=actor,
        )

    async def set_stage(self, stage: Stage, action: str | None, at: datetime | None, note: str | None = None) -> None:
        showing = self.showing
        changed = (stage, action, at) != (self.s.stage, showing.next_action, showing.next_action_at)
        self.s.stage, showing.next_action, showing.next_action_at = stage, action, at
        if changed:
            await self.publish()
        if note:
            await self.record(note)

    async def close(self, reason: ClosedReason, detail: str, *, actor: str | None = None) -> None:
        self.s.closed_reason, self.s.closed_detail = reason, detail
        self.s.stage, self.showing = Stage.CLOSED, Showing()
        protections.release_all(self.s, workflow.now())
        await self.legal_track.close_track(reason, detail)  # a payment or recall stops a running track
        await self.record(f"closed {reason}: {detail}", actor=actor)

    async def wait_until(self, at: datetime | None, summary: str) -> bool:
        if at is None:
            await workflow.wait_condition(self.interrupted)
            return False
        delay = at - workflow.now()
        if delay <= timedelta(0):
            return True
        try:
            await workflow.wait_condition(self.interrupted, timeout=delay, timeout_summary=summary)
        except asyncio.TimeoutError:
            # An event or Update that came with the timer wins: re-plan first.
            if self.interrupted() and self.patched(patches.EVENTS_BEAT_TIMERS):
                return False
            return True
        return False

    def interrupted(self) -> bool:
        return bool(self.inbox) or self._replan

    def replan(self) -> None:
        self._replan = True

    def interrupt_limitation(self, on: date) -> None:
        current = date.fromisoformat(self.s.limitation_expires_on)
        self.s.limitation_expires_on = rules.restart_limitation(current, on).isoformat()

    # --------------------------------------------------------------- helpers

    def _today(self) -> date:
        return rules.local_date(workflow.now(), self.debtor.timezone)

    def _time_barred(self, today: date) -> bool:
        return rules.is_time_barred(date.fromisoformat(self.s.limitation_expires_on), today)

    async def _close_time_barred(self) -> None:
        await self.close(ClosedReason.TIME_BARRED, f"limitation period expired on {self.s.limitation_expires_on}")

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() >= self._input.history_limit or info.is_continue_as_new_suggested()

    async def _continue_as_new(self) -> NoReturn:
        self.desk.leaving = True  # a work_item_done Update answers now; the new run reads the item again
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(dataclasses.replace(self._input, state=self.s, pending_events=self.inbox))

    async def publish(self) -> None:
        """Keep search attributes and the UI's current details in step with the case."""
        values = presentation.search_attributes(self.ev, self.s, self.showing)
        if self.strategy is not None:
            values["Strategy"] = self.strategy.label
        updates = search_attribute_updates(values, self._published)
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = values
        workflow.set_current_details(presentation.current_details(self.ev, self.s, self.showing))
