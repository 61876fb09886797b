"""The legal branch of a case (SPEC §2.4), as a part of the case workflow.

After the legal notice's 15-day response window, an unpaid, undisputed,
unprotected debt that is not time-barred takes exactly one legal track:

Payment order (grade I/II with a known address)::

    chosen -> applied -> accepted -> order_served -> (objection window)
        rejected             -> referred_to_litigation
        objected             -> referred_to_litigation (the order lapses)
        unopposed and unpaid -> enforcement_requested

Asset preservation (grade III or flagged asset-flight risk)::

    chosen -> bond_posted -> applied -> granted -> suit filed (within 30 days)
        denied                  -> referred_to_litigation
        no ruling in 24 h / 48 h -> escalated (the SLA / the statutory maximum)
        held past 30 days        -> lapse escalated, never silent

Every filing interrupts the limitation period.  The court's answers are read
from its docket on durable timers (daily for a payment order, every few hours
for a preservation ruling); a late court is escalated, once per clock.  A
protection pauses the track between steps (the case waits in ``_advance``),
and a payment at any moment settles the case and stops the track.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import rules
    from workflows.model import (
        CourtQuery,
        LegalActionRequest,
        LegalFilingRequest,
        LegalFilingResult,
        LegalState,
        LegalStep,
        LegalStepRecord,
    )
    from workflows.rules import ASSET_PRESERVATION, PAYMENT_ORDER


# A filing calls the court: heartbeat, so a worker that dies mid-call is noticed
# and the retry (same key) finds the filing's row.
FILING_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
)


class LegalBranch:
    """Mixin of :class:`workflows.case.DelinquentAccountWorkflow` (uses its
    state ``self.s``, ``self.ev``, ``self.debtor`` and its helpers)."""

    legal_clocks: rules.LegalClocks = rules.DEFAULT_LEGAL_CLOCKS

    async def _legal_step(self) -> None:
        legal = self.s.legal
        if legal is None:
            await self._choose_legal_track()
        elif legal.track == PAYMENT_ORDER:
            await self._payment_order_step(legal)
        else:
            await self._preservation_step(legal)

    async def _choose_legal_track(self) -> None:
        track, reason = rules.choose_legal_track(self.s.grade, self.ev.asset_flight_risk, self.debtor.address)
        if track is None:
            await self._close("referred_to_litigation", reason)
            return
        # Held before any await, so an Update meanwhile sees the case in the legal branch.
        self.s.legal = LegalState(track=track, reason=reason)
        chosen = await workflow.execute_activity_method(
            CaseActivities.open_legal_action, LegalActionRequest(self.ev.account_id, track, reason),
            summary=f"legal track: {track}", **self.DB_ACTIVITY,
        )
        # The database keeps one track per debt: whatever it holds wins.
        self.s.legal = LegalState(track=chosen.track, reason=chosen.reason)
        self.s.legal.steps.append(LegalStep("track_chosen", workflow.now(), chosen.reason))
        await self._set_stage(chosen.track, "legal_filing", workflow.now())
        await self._record(f"legal branch: {chosen.track} ({chosen.reason})")

    # ------------------------------------------------------------ payment order

    async def _payment_order_step(self, legal: LegalState) -> None:
        c, now = self.legal_clocks, workflow.now()
        if legal.status == "chosen":
            if self._legal_must_wait():
                return
            filed = await self._file(legal, "payment_order", "applied", "apply for a payment order")
            legal.application_ref, legal.applied_at = filed.ref, filed.filed_at
            legal.deadline = filed.filed_at + timedelta(days=c.acceptance_days)
            await self._set_stage(PAYMENT_ORDER, "court_acceptance", legal.deadline)
            await self._record(f"payment order applied for ({filed.ref}); court decides by {self._local(legal.deadline)}")
            return
        if legal.status in ("applied", "accepted"):
            docket = await self._docket(legal, "payment_order")
            if docket.rejected_at:
                await self._court_event(legal, "rejected", docket.rejected_at, "court rejected the application")
                await self._close("referred_to_litigation", "the court rejected the payment order application")
            elif legal.status == "applied" and docket.accepted_at:
                await self._court_event(legal, "accepted", docket.accepted_at, "court accepted the application")
                legal.deadline = docket.accepted_at + timedelta(days=c.order_days)
                await self._set_stage(PAYMENT_ORDER, "payment_order_issued", legal.deadline)
                await self._record(f"payment order accepted; order due by {self._local(legal.deadline)}")
            elif legal.status == "accepted" and docket.order_served_at:
                await self._court_event(legal, "order_served", docket.order_served_at,
                                        "payment order issued and served on the debtor")
                legal.deadline = docket.order_served_at + timedelta(days=c.objection_days)
                await self._set_stage(PAYMENT_ORDER, "objection_window_ends", legal.deadline)
                await self._record(f"payment order served; debtor may pay or object until {self._local(legal.deadline)}")
            else:
                what, days = (("acceptance decision", c.acceptance_days) if legal.status == "applied"
                              else ("payment order", c.order_days))
                if now >= legal.deadline:
                    await self._escalate(legal, f"late_{legal.status}",
                                         f"court overdue: no {what} within the statutory {days} days "
                                         f"(due {self._local(legal.deadline)})")
                await self._poll_court(legal, timedelta(hours=c.court_poll_hours),
                                       f"court {what} due by {self._local(legal.deadline)}")
            return
        if legal.status == "order_served":
            if not await self._wait_until(legal.deadline, f"{c.objection_days} days for the debtor to pay or object"):
                return  # an event came first (a payment settles the case)
            docket = await self._docket(legal, "payment_order")
            if self._legal_must_wait():
                return  # a payment, a protection or an Update came meanwhile: it goes first
            # an objection counts only when filed inside the window
            if docket.objected_at and docket.objected_at <= legal.deadline:
                await self._court_event(legal, "objected", docket.objected_at,
                                        "debtor objected in writing: the payment order lapses")
                await self._close("referred_to_litigation",
                                  f"debtor objected to the payment order on {self._local(docket.objected_at)}")
                return
            filed = await self._file(legal, "enforcement", "enforcement_requested", "apply for enforcement")
            await self._close("enforcement_requested", f"payment order unopposed and unpaid; enforcement {filed.ref}")

    # ------------------------------------------------------- asset preservation

    async def _preservation_step(self, legal: LegalState) -> None:
        c, now = self.legal_clocks, workflow.now()
        if self._legal_must_wait():
            return
        if legal.status == "chosen":
            bond = await self._file(legal, "bond", "bond_posted", "post the preservation bond")
            await self._record(f"preservation bond posted ({bond.ref}) for {self.s.outstanding} {self.ev.currency}")
            return
        if legal.status == "bond_posted":
            filed = await self._file(legal, "preservation", "applied", "apply for pre-suit asset preservation")
            legal.application_ref, legal.applied_at = filed.ref, filed.filed_at
            legal.deadline = filed.filed_at + timedelta(hours=c.preservation_sla_hours)
            await self._set_stage(ASSET_PRESERVATION, "preservation_ruling", legal.deadline)
            await self._record(f"asset preservation applied for ({filed.ref}); ruling due by {self._local(legal.deadline)}")
            return
        if legal.status == "applied":
            docket = await self._docket(legal, "preservation")
            if docket.denied_at:
                await self._court_event(legal, "denied", docket.denied_at, "court denied the preservation")
                await self._close("referred_to_litigation", "asset preservation denied; the claim goes to litigation")
            elif docket.granted_at:
                await self._preservation_granted(legal, docket.granted_at, "asset preservation granted")
            else:
                sla = legal.applied_at + timedelta(hours=c.preservation_sla_hours)
                limit = legal.applied_at + timedelta(hours=c.preservation_max_hours)
                if now >= sla:
                    await self._escalate(legal, "late_ruling_sla",
                                         f"no preservation ruling within the {c.preservation_sla_hours} h SLA")
                if now >= limit:
                    await self._escalate(legal, "late_ruling_statutory",
                                         f"no preservation ruling within the statutory {c.preservation_max_hours} h")
                legal.deadline = sla if now < sla else limit if now < limit else None
                await self._poll_court(legal, timedelta(hours=c.preservation_poll_hours),
                                       f"preservation ruling (SLA {c.preservation_sla_hours} h, "
                                       f"statutory max {c.preservation_max_hours} h)")
            return
        if legal.status == "granted":
            lapsed = now > legal.deadline
            if lapsed:
                await self._escalate(legal, "preservation_lapsed",
                                     f"preservation lapsed on {self._local(legal.deadline)}: suit not filed in time")
                if self._legal_must_wait():
                    return
            filed = await self._file(legal, "suit", "suit_filed", "file the suit")
            detail = (f"suit filed ({filed.ref}) after the preservation lapsed" if lapsed else
                      f"suit filed ({filed.ref}) inside the {c.suit_days}-day window; preservation kept")
            await self._close("referred_to_litigation", detail)

    async def _legal_while_paused(self) -> datetime | None:
        """While a protection holds the case no legal step runs, but a
        preservation keeps its clocks: read the court's ruling, and escalate a
        granted preservation before and when it lapses (never silently).
        Returns when to look again (None = nothing to watch)."""
        legal, c, now = self.s.legal, self.legal_clocks, workflow.now()
        if legal is None or legal.track != ASSET_PRESERVATION:
            return None
        if legal.status == "applied":
            docket = await self._docket(legal, "preservation")
            if docket.granted_at is None:
                return now + timedelta(hours=c.preservation_poll_hours if docket.denied_at is None else 24 * 365)
            await self._preservation_granted(legal, docket.granted_at,
                                             "asset preservation granted while the case is protected")
        if legal.status != "granted" or legal.deadline is None:
            return None
        warn = legal.deadline - timedelta(days=c.lapse_warning_days)
        if now >= legal.deadline:
            await self._escalate(legal, "preservation_lapsed",
                                 f"preservation lapsed on {self._local(legal.deadline)} while the case was protected")
            return None
        if now >= warn:
            await self._escalate(legal, "preservation_lapsing",
                                 f"preservation lapses on {self._local(legal.deadline)}; the case is protected "
                                 "and the suit cannot be filed")
            return legal.deadline
        return warn

    # ---------------------------------------------------------------- helpers

    async def _preservation_granted(self, legal: LegalState, granted_at: datetime, note: str) -> None:
        """The ruling came: the 30 days to file the suit start at the grant."""
        await self._court_event(legal, "granted", granted_at, "court granted the preservation")
        legal.deadline = granted_at + timedelta(days=self.legal_clocks.suit_days)
        if not self.s.pauses:
            await self._set_stage(ASSET_PRESERVATION, "file_suit", legal.deadline)
        await self._record(f"{note}; suit to be filed by {self._local(legal.deadline)}")

    def _legal_must_wait(self) -> bool:
        """Before a filing: an event, an Update or a protection that arrived
        during the last await is dealt with first (a legal step never runs
        while protected, and a payment may have settled the case)."""
        return self._interrupted() or bool(self.s.pauses)

    async def _file(self, legal: LegalState, kind: str, status_after: str, summary: str) -> LegalFilingResult:
        filed = await workflow.execute_activity_method(
            CaseActivities.legal_filing,
            LegalFilingRequest(
                account_id=self.ev.account_id, track=legal.track, kind=kind, amount=self.s.outstanding,
                currency=self.ev.currency, contract_id=self.ev.contract_id, debtor=self.debtor,
                status_after=status_after,
            ),
            summary=summary, **FILING_ACTIVITY,
        )
        legal.status = status_after
        legal.steps.append(LegalStep(kind, filed.filed_at, filed.ref))
        if kind != "bond":  # a court filing interrupts the limitation period (art. 195)
            self._interrupt_limitation(rules.local_date(filed.filed_at, self.debtor.timezone))
        return filed

    async def _docket(self, legal: LegalState, kind: str):
        return await workflow.execute_activity_method(
            CaseActivities.court_docket,
            CourtQuery(self.ev.account_id, kind, legal.application_ref, legal.applied_at, self.debtor),
            summary=f"read the court docket ({kind})", **self.DB_ACTIVITY,
        )

    async def _court_event(self, legal: LegalState, step: str, at: datetime, detail: str) -> None:
        await self._legal_record(legal, step, at, detail, status=step)
        legal.status = step
        legal.steps.append(LegalStep(step, at, detail))

    async def _escalate(self, legal: LegalState, step: str, detail: str) -> None:
        """Raise an escalation once per clock: a legal_steps row and a warning log line."""
        if any(e.startswith(f"{step}:") for e in legal.escalations):
            return
        legal.escalations.append(f"{step}: {detail}")
        await self._legal_record(legal, step, workflow.now(), detail, status=legal.status, escalation=True)
        await self._record(f"escalated: {detail}")

    async def _legal_record(self, legal: LegalState, step: str, at: datetime, detail: str, *, status: str,
                            escalation: bool = False) -> None:
        await workflow.execute_activity_method(
            CaseActivities.record_legal_step,
            LegalStepRecord(self.ev.account_id, legal.track, step, detail, at, status, escalation),
            summary=f"legal: {detail}"[:200], **self.DB_ACTIVITY,
        )

    async def _poll_court(self, legal: LegalState, every: timedelta, summary: str) -> None:
        """Look at the docket again after ``every`` (or at the running clock's
        deadline, if that comes first), unless an event arrives."""
        now = workflow.now()
        at = now + every
        if legal.deadline is not None and now < legal.deadline < at:
            at = legal.deadline
        await self._wait_until(at, summary)

    async def _close_legal_track(self, reason: str, detail: str) -> None:
        legal = self.s.legal
        if legal is None or any(st.step == "closed" for st in legal.steps):
            return
        note = f"case closed {reason}: {detail}"
        await self._legal_record(legal, "closed", workflow.now(), note, status=reason)
        legal.steps.append(LegalStep("closed", workflow.now(), note))

    def _legal_status(self) -> dict[str, Any] | None:
        legal = self.s.legal
        if legal is None:
            return None
        return {
            "track": legal.track, "reason": legal.reason, "status": legal.status,
            "application_ref": legal.application_ref,
            "applied_at": legal.applied_at.isoformat() if legal.applied_at else None,
            "deadline": legal.deadline.isoformat() if legal.deadline else None,
            "steps": [{"step": st.step, "at": st.at.isoformat(), "detail": st.detail} for st in legal.steps],
            "escalations": list(legal.escalations),
        }

    def _local(self, at: datetime) -> str:
        return f"{rules.local_datetime(at, self.debtor.timezone):%Y-%m-%d %H:%M} {self.debtor.timezone}"
