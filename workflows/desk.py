"""Steps people do (SPEC §8): the case's side of the work desk.

A case whose input gives a step to people (``CaseInput.desk_steps``, from
the settings at intake) opens a work item for it (the ``open_work_item``
activity, once per key: workflow id, kind, step, attempt) and waits — on a
durable timer and the ``work_item_done`` Update, never by polling — then
reads what was entered (``settle_work_item``):

- ``human_call``: the item is claimable inside the debtor's contact window
  of that local day; the call's outcome comes back as the
  :class:`~workflows.model.ContactResult` the automatic call centre's would,
  and the case handles it on the same path.  Unfinished when quiet hours
  begin, the item expires (recorded once) and the ladder offers a new one on
  the next contact day; an event that makes the case re-plan withdraws it.
- ``skip_trace_review``: the lookup found nothing; an investigator enters a
  new number (written to the debtors row by the desk) or "not found".
- ``court_entry``: legal staff enter the court's answers in place of the
  docket (the legal track's clocks run as before; see :mod:`workflows.legal`).

The Update's answer waits until the case has taken the outcome in, and says
what it did.  Every path here runs only under the ``work-desk-v1`` patch.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.desk_activities import DeskActivities
    from workflows import patches, rules
    from workflows.host import CaseHost
    from workflows.model import ContactResult, CourtDocket, LegalState, case_workflow_id
    from workflows.work_items import (
        DeskEffect, OpenWorkItemRequest, SettleWorkItemRequest, WorkItemDone, WorkItemSettled,
    )
    from workflows.options import DB_ACTIVITY
    from workflows.presentation import local_stamp
    from workflows.status import Stage

# What legal staff may enter while the track is in each status (court_entry).
COURT_EXPECTS = {
    ("payment_order", "applied"): ["accepted", "rejected"],
    ("payment_order", "accepted"): ["order_served"],
    ("payment_order", "order_served"): ["objected"],
    ("preservation", "applied"): ["granted", "denied"],
}
DOCKET_FIELD = {"accepted": "accepted_at", "rejected": "rejected_at", "order_served": "order_served_at",
                "objected": "objected_at", "granted": "granted_at", "denied": "denied_at"}


class Desk:
    def __init__(self, case: CaseHost, steps: list[str], contact_rules: rules.ContactRules) -> None:
        self.case = case
        self.steps = set(steps)
        self.contact_rules = contact_rules
        self.waiting: str | None = None  # the key of the item the case waits for now
        self.delivered: set[str] = set()  # keys the desk said are done (the Update)
        self.pending: str | None = None  # done, read, being applied by the case
        self.applied: set[str] = set()  # taken in: the Update may answer
        self.court_keys: set[str] = set()  # court_entry items (their Update makes the legal track look now)
        self.entered: set[str] = set()  # court answers already recorded in the case history
        self.leaving = False  # the run continues as new: an Update waiting for its item answers now

    def takes(self, kind: str) -> bool:
        """Whether people do ``kind`` for this case (a case without desk steps records no patch marker)."""
        return kind in self.steps and self.case.patched(patches.DESK)

    def _key(self, kind: str, step: str, attempt: int | str) -> str:
        """The item's key, from the case's input (its fixed workflow id ``case-<account>``), so a replay
        under another id (a test's, a replayer's) derives the same key the Update carries."""
        return f"{case_workflow_id(self.case.ev.account_id)}:{kind}:{step}:{attempt}"

    async def _open(self, req: OpenWorkItemRequest, summary: str):
        return await workflow.execute_activity_method(DeskActivities.open_work_item, req, summary=summary,
                                                      **DB_ACTIVITY)

    async def _settle(self, key: str, close_as: str | None) -> WorkItemSettled:
        return await workflow.execute_activity_method(
            DeskActivities.settle_work_item, SettleWorkItemRequest(key, close_as),
            summary=f"work item {close_as or 'outcome'}", **DB_ACTIVITY)

    async def _wait(self, key: str, until: datetime | None, summary: str, *, withdraw: bool) -> WorkItemSettled:
        """Wait for the item to be done, its window to end, or an event; then read (or close) it."""
        self.waiting = key
        try:
            while True:
                left = until - workflow.now() if until is not None else None
                try:
                    await workflow.wait_condition(lambda: key in self.delivered or self.case.interrupted(),
                                                  timeout=left, timeout_summary=summary[:200])
                    close_as = None if key in self.delivered or not withdraw else "withdrawn"
                except asyncio.TimeoutError:
                    close_as = "expired"
                settled = await self._settle(key, close_as)
                if settled.status == "done":
                    self.pending = key
                    return settled
                if close_as is not None:
                    self.applied.add(key)  # closed for good: an Update for it answers at once
                    return settled
                if self.case.interrupted():
                    return settled  # still open: the case waits for it again when it comes back to this step
                self.delivered.discard(key)  # told but not done in the database: wait on
        finally:
            self.waiting = None

    def taken_in(self) -> None:
        """The case has applied the outcome it read: the Update may answer."""
        if self.pending is not None:
            self.applied.add(self.pending)
            self.pending = None

    # ------------------------------------------------------------ human call

    async def human_call(self, step: rules.LadderStep) -> tuple[ContactResult | None, str | None]:
        """Open today's human call item and wait for it: (the call's result, the operator), or
        (None, None) when it expired or was withdrawn (the case re-plans)."""
        case, s = self.case, self.case.s
        s.attempt_no += 1
        tz, now = case.debtor.timezone, workflow.now()
        ends = rules.local_instant(rules.local_date(now, tz), self.contact_rules.quiet_start, tz)
        key = self._key("human_call", step.name, s.attempt_no)
        item = await self._open(OpenWorkItemRequest(
            key=key, workflow_id=workflow.info().workflow_id, account_id=case.ev.account_id, debtor=case.debtor,
            kind="human_call", team_id=case.ev.team_id, step=step.name, window_start=now, window_end=ends,
            attempt_no=s.attempt_no), f"{step.label}: open a task for the call centre")
        await case.set_stage(Stage.WAKE_UP_LADDER, step.name, ends)
        until = f"{rules.local_datetime(ends, tz):%H:%M} {tz}"
        settled = await self._wait(key, ends, f"{step.label}: task {item.id} for team {item.team_id} until {until}",
                                   withdraw=True)
        if settled.status == "done" and settled.contact is not None:
            return settled.contact, settled.completed_by
        if settled.status == "done":  # done but no call row (cannot happen through the desk): treat as not reached
            self.taken_in()
            return ContactResult(outcome="no_answer", attempted_at=workflow.now()), settled.completed_by
        why = ("expired unworked at " + local_stamp(ends, tz) + "; a new task opens on the next contact day"
               if workflow.now() >= ends else "withdrawn: the case re-plans first")
        await case.record(f"{step.label} task {item.id} {why}")
        return None, None

    # ------------------------------------------------------------ skip trace review

    async def skip_trace_review(self) -> WorkItemSettled | None:
        """An investigator looks for a number; None while nobody has (an event came first)."""
        case = self.case
        key = self._key("skip_trace_review", "skip_trace", "review")
        item = await self._open(OpenWorkItemRequest(
            key=key, workflow_id=workflow.info().workflow_id, account_id=case.ev.account_id, debtor=case.debtor,
            kind="skip_trace_review", team_id=case.ev.team_id, step="skip_trace"),
            "skip trace found nothing: open a review")
        await case.set_stage(Stage.SKIP_TRACING, "skip_trace_review", None)
        settled = await self._wait(key, None, f"skip trace review: task {item.id}", withdraw=False)
        if settled.status != "done":
            return None
        self.taken_in()
        return settled

    # ------------------------------------------------------------ court entry

    async def court_docket(self, legal: LegalState, kind: str, *, close: bool = False) -> CourtDocket:
        """The court's answer as legal staff entered it (an empty docket until they do).
        The item for the track's current status is opened once; ``close`` ends it (the window is over)."""
        case = self.case
        expects = COURT_EXPECTS.get((kind, legal.status))
        if expects is None:
            return CourtDocket()
        key = self._key("court_entry", f"{kind}:{legal.status}", legal.application_ref or "-")
        await self._open(OpenWorkItemRequest(
            key=key, workflow_id=workflow.info().workflow_id, account_id=case.ev.account_id, debtor=case.debtor,
            kind="court_entry", team_id=None, step=f"{kind}:{legal.status}", expects=expects),
            f"court entry: {' or '.join(expects)}")
        self.waiting = key
        self.court_keys.add(key)
        settled = await self._settle(key, "expired" if close else None)
        self.delivered.discard(key)
        if settled.status != "done" and not close:
            return CourtDocket()
        self.waiting = None
        if settled.status == "done" and key not in self.entered:
            self.entered.add(key)
            await case.record(f"court answer entered by {settled.completed_by}: {settled.outcome} "
                              f"({settled.reference})", actor=settled.completed_by)
        if settled.status != "done":
            self.applied.add(key)
            return CourtDocket()
        self.pending = key  # taken in once the legal track's step is over (the case calls taken_in)
        return CourtDocket(**{DOCKET_FIELD[settled.outcome]: settled.on})

    # ------------------------------------------------------------ the Update

    def validate(self, done: WorkItemDone) -> None:
        key = done.key
        if key != self.waiting and key != self.pending and key not in self.applied:
            raise ApplicationError("the case is not waiting for this task (it expired, was withdrawn, or the case "
                                   "is paused): it reads the outcome when it next takes this step",
                                   type="NotWaiting")

    async def done(self, done: WorkItemDone) -> DeskEffect:
        key = done.key
        self.delivered.add(key)
        if key in self.court_keys:
            self.case.replan()  # the legal track reads the docket again now
        await workflow.wait_condition(lambda: key in self.applied or self.leaving)
        st = self.case.status()
        return DeskEffect(applied=key in self.applied, stage=str(st.stage), outstanding=st.outstanding, next_action=st.next_action,
                          next_action_at=st.next_action_at, paused_by=[str(p) for p in st.paused_by],
                          closed_reason=str(st.closed_reason) if st.closed_reason else None)
