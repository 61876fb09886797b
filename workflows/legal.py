"""The legal track of a case (SPEC §2.4): an object the case holds.

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
protection pauses the track between steps (the case waits it out and calls
:meth:`LegalTrack.while_paused`), and a payment at any moment settles the
case and stops the track.  The track sees its case only through
:class:`workflows.host.CaseHost`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import patches, rules
    from workflows.host import CaseHost
    from workflows.model import (
        CaseState,
        CourtDocket,
        CourtQuery,
        DebtorOnFileRequest,
        LegalActionRequest,
        LegalFilingRequest,
        LegalFilingResult,
        LegalState,
        LegalStep,
        LegalStepRecord,
    )
    from workflows.options import DB_ACTIVITY, FILING_ACTIVITY
    from workflows.presentation import local_stamp
    from workflows.rules import ASSET_PRESERVATION, PAYMENT_ORDER
    from workflows.status import ClosedReason, Stage
    from workflows.strategy import CaseStrategy, below_legal_minimum

REFERRED = ClosedReason.REFERRED_TO_LITIGATION
_INTERRUPTED = "\x00interrupted"  # _address: the case must re-plan before choosing


class LegalTrack:
    """The one legal track of a case: chosen, then taken a step per call of :meth:`step`."""

    def __init__(self, case: CaseHost, clocks: rules.LegalClocks = rules.DEFAULT_LEGAL_CLOCKS) -> None:
        self.case = case
        self.clocks = clocks
        self.strategy: CaseStrategy | None = None  # the case's (None: a history from before strategies)

    @property
    def s(self) -> CaseState:
        return self.case.s

    async def step(self) -> None:
        """Choose the track, or take the chosen one a step further (or wait for the court)."""
        legal = self.s.legal
        if legal is None:
            await self._choose()
        elif legal.track == PAYMENT_ORDER:
            await self._payment_order_step(legal)
        else:
            await self._preservation_step(legal)

    async def _choose(self) -> None:
        case = self.case
        if below_legal_minimum(self.strategy, self.s.outstanding):
            await self._below_minimum()
            return
        address = None
        if rules.choose_legal_track(self.s.grade, case.ev.asset_flight_risk, "known")[0] == PAYMENT_ORDER:
            address = await self._address()  # only a payment order needs one
            if address is _INTERRUPTED:
                return  # an event or Update came while the database was asked: it goes first
        track, reason = rules.choose_legal_track(self.s.grade, case.ev.asset_flight_risk, address)
        if track is None:
            await case.close(REFERRED, reason)
            return
        # Held before any await, so an Update meanwhile sees the case in the legal branch.
        self.s.legal = LegalState(track=track, reason=reason)
        chosen = await workflow.execute_activity_method(
            CaseActivities.open_legal_action, LegalActionRequest(case.ev.account_id, track, reason),
            summary=f"legal track: {track}", **DB_ACTIVITY,
        )
        # The database keeps one track per debt: whatever it holds wins.
        self.s.legal = LegalState(track=chosen.track, reason=chosen.reason)
        self.s.legal.steps.append(LegalStep("track_chosen", workflow.now(), chosen.reason))
        await case.set_stage(Stage(chosen.track), "legal_filing", workflow.now())
        await case.record(f"legal branch: {chosen.track} ({chosen.reason})")

    async def _below_minimum(self) -> None:
        """Below the strategy's legal minimum no track is taken: the case stays
        open for payments until the limitation period expires."""
        case, minimum = self.case, self.strategy.legal_min_amount
        expiry = rules.local_instant(date.fromisoformat(self.s.limitation_expires_on) + timedelta(days=1),
                                     time(0, 0), case.debtor.timezone)
        note = None
        if self.s.stage != Stage.LEGAL_PENDING:
            note = (f"no legal track: outstanding {self.s.outstanding} {case.ev.currency} is below the strategy's "
                    f"legal minimum {minimum}; open for payments until the limitation period expires")
        await case.set_stage(Stage.LEGAL_PENDING, "limitation_expiry", expiry, note=note)
        await case.wait_until(expiry, f"below the legal minimum ({minimum}): limitation period expiry")

    async def _address(self) -> str | None:
        """Whether the debtor has a known address, as ``choose_legal_track``
        reads it: asked of the database (the case never holds the address);
        a history from before that replays reading its input's address."""
        case = self.case
        if not case.patched(patches.ADDRESS_ON_FILE):
            return case.debtor.address
        on_file = await workflow.execute_activity_method(
            CaseActivities.debtor_on_file, DebtorOnFileRequest(case.ev.account_id, case.debtor.debtor_id),
            summary="is a postal address on file", **DB_ACTIVITY,
        )
        if case.interrupted():
            return _INTERRUPTED
        return "on file" if on_file.has_address else None

    # ------------------------------------------------------------ payment order

    async def _payment_order_step(self, legal: LegalState) -> None:
        if legal.status == "chosen":
            await self._apply_for_payment_order(legal)
        elif legal.status in ("applied", "accepted"):
            await self._read_payment_order_docket(legal)
        elif legal.status == "order_served":
            await self._end_objection_window(legal)

    async def _apply_for_payment_order(self, legal: LegalState) -> None:
        if self.must_wait():
            return
        filed = await self._apply(legal, "payment_order", "apply for a payment order")
        await self._start_clock(legal, Stage.PAYMENT_ORDER, "court_acceptance",
                                filed.filed_at + timedelta(days=self.clocks.acceptance_days),
                                f"payment order applied for ({filed.ref}); court decides by")

    async def _read_payment_order_docket(self, legal: LegalState) -> None:
        c, now = self.clocks, workflow.now()
        docket = await self._docket(legal, "payment_order")
        if docket.rejected_at:
            await self._court_event(legal, "rejected", docket.rejected_at, "court rejected the application")
            await self.case.close(REFERRED, "the court rejected the payment order application")
        elif legal.status == "applied" and docket.accepted_at:
            await self._court_event(legal, "accepted", docket.accepted_at, "court accepted the application")
            await self._start_clock(legal, Stage.PAYMENT_ORDER, "payment_order_issued",
                                    docket.accepted_at + timedelta(days=c.order_days),
                                    "payment order accepted; order due by")
        elif legal.status == "accepted" and docket.order_served_at:
            await self._court_event(legal, "order_served", docket.order_served_at,
                                    "payment order issued and served on the debtor")
            await self._start_clock(legal, Stage.PAYMENT_ORDER, "objection_window_ends",
                                    docket.order_served_at + timedelta(days=c.objection_days),
                                    "payment order served; debtor may pay or object until")
        else:
            what, days = (("acceptance decision", c.acceptance_days) if legal.status == "applied"
                          else ("payment order", c.order_days))
            if now >= legal.deadline:
                await self._escalate(legal, f"late_{legal.status}",
                                     f"court overdue: no {what} within the statutory {days} days "
                                     f"(due {self._local(legal.deadline)})")
            await self._poll_court(legal, timedelta(hours=c.court_poll_hours),
                                   f"court {what} due by {self._local(legal.deadline)}")

    async def _end_objection_window(self, legal: LegalState) -> None:
        desk = self._desk_court()
        docket = await self._docket(legal, "payment_order") if desk else None  # an objection entered meanwhile
        if docket is None or not docket.objected_at:
            if not await self.case.wait_until(legal.deadline,
                                              f"{self.clocks.objection_days} days for the debtor to pay or object"):
                return  # an event came first (a payment settles the case)
            docket = await self._docket(legal, "payment_order", close=desk)
        if self.must_wait():
            return  # a payment, a protection or an Update came meanwhile: it goes first
        # an objection counts only when filed inside the window
        if docket.objected_at and docket.objected_at <= legal.deadline:
            await self._court_event(legal, "objected", docket.objected_at,
                                    "debtor objected in writing: the payment order lapses")
            await self.case.close(REFERRED,
                                  f"debtor objected to the payment order on {self._local(docket.objected_at)}")
            return
        filed = await self._file(legal, "enforcement", "enforcement_requested", "apply for enforcement")
        await self.case.close(ClosedReason.ENFORCEMENT_REQUESTED,
                              f"payment order unopposed and unpaid; enforcement {filed.ref}")

    # ------------------------------------------------------- asset preservation

    async def _preservation_step(self, legal: LegalState) -> None:
        if self.must_wait():
            return
        if legal.status == "chosen":
            bond = await self._file(legal, "bond", "bond_posted", "post the preservation bond")
            await self.case.record(f"preservation bond posted ({bond.ref}) for {self.s.outstanding} "
                                   f"{self.case.ev.currency}")
        elif legal.status == "bond_posted":
            await self._apply_for_preservation(legal)
        elif legal.status == "applied":
            await self._read_preservation_ruling(legal)
        elif legal.status == "granted":
            await self._file_suit(legal)

    async def _apply_for_preservation(self, legal: LegalState) -> None:
        filed = await self._apply(legal, "preservation", "apply for pre-suit asset preservation")
        await self._start_clock(legal, Stage.ASSET_PRESERVATION, "preservation_ruling",
                                filed.filed_at + timedelta(hours=self.clocks.preservation_sla_hours),
                                f"asset preservation applied for ({filed.ref}); ruling due by")

    async def _read_preservation_ruling(self, legal: LegalState) -> None:
        c, now = self.clocks, workflow.now()
        docket = await self._docket(legal, "preservation")
        if docket.denied_at:
            await self._court_event(legal, "denied", docket.denied_at, "court denied the preservation")
            await self.case.close(REFERRED, "asset preservation denied; the claim goes to litigation")
            return
        if docket.granted_at:
            await self._preservation_granted(legal, docket.granted_at, "asset preservation granted")
            return
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

    async def _file_suit(self, legal: LegalState) -> None:
        lapsed = workflow.now() > legal.deadline
        if lapsed:
            await self._escalate(legal, "preservation_lapsed",
                                 f"preservation lapsed on {self._local(legal.deadline)}: suit not filed in time")
            if self.must_wait():
                return
        filed = await self._file(legal, "suit", "suit_filed", "file the suit")
        detail = (f"suit filed ({filed.ref}) after the preservation lapsed" if lapsed else
                  f"suit filed ({filed.ref}) inside the {self.clocks.suit_days}-day window; preservation kept")
        await self.case.close(REFERRED, detail)

    async def while_paused(self) -> datetime | None:
        """While a protection holds the case no legal step runs, but a
        preservation keeps its clocks: read the court's ruling, and escalate a
        granted preservation before and when it lapses (never silently).
        Returns when to look again (None = nothing to watch)."""
        legal, c, now = self.s.legal, self.clocks, workflow.now()
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

    async def close_track(self, reason: ClosedReason, detail: str) -> None:
        """The case closes: a running track records why it stops (once)."""
        legal = self.s.legal
        if legal is None or any(st.step == "closed" for st in legal.steps):
            return
        note = f"case closed {reason}: {detail}"
        await self._legal_record(legal, "closed", workflow.now(), note, status=reason)
        legal.steps.append(LegalStep("closed", workflow.now(), note))

    def must_wait(self) -> bool:
        """Before a filing: an event, an Update or a protection that arrived
        during the last await is dealt with first (a legal step never runs
        while protected, and a payment may have settled the case)."""
        return self.case.interrupted() or bool(self.s.pauses)

    # ---------------------------------------------------------------- helpers

    async def _preservation_granted(self, legal: LegalState, granted_at: datetime, note: str) -> None:
        """The ruling came: the 30 days to file the suit start at the grant."""
        await self._court_event(legal, "granted", granted_at, "court granted the preservation")
        await self._start_clock(legal, Stage.ASSET_PRESERVATION, "file_suit",
                                granted_at + timedelta(days=self.clocks.suit_days), f"{note}; suit to be filed by",
                                shown=not self.s.pauses)  # a protected case shows what holds it

    async def _start_clock(self, legal: LegalState, stage: Stage, action: str, deadline: datetime, note: str, *,
                           shown: bool = True) -> None:
        """A statutory clock starts: the case shows it as what it waits for
        (unless ``shown`` is False) and records ``note`` with the deadline."""
        legal.deadline = deadline
        if shown:
            await self.case.set_stage(stage, action, deadline)
        await self.case.record(f"{note} {self._local(deadline)}")

    async def _apply(self, legal: LegalState, kind: str, summary: str) -> LegalFilingResult:
        """File an application with the court; its clocks run from the filing."""
        filed = await self._file(legal, kind, "applied", summary)
        legal.application_ref, legal.applied_at = filed.ref, filed.filed_at
        return filed

    async def _file(self, legal: LegalState, kind: str, status_after: str, summary: str) -> LegalFilingResult:
        case = self.case
        filed = await workflow.execute_activity_method(
            CaseActivities.legal_filing,
            LegalFilingRequest(
                account_id=case.ev.account_id, track=legal.track, kind=kind, amount=self.s.outstanding,
                currency=case.ev.currency, contract_id=case.ev.contract_id, debtor=case.debtor,
                status_after=status_after,
            ),
            summary=summary, **FILING_ACTIVITY,
        )
        legal.status = status_after
        legal.steps.append(LegalStep(kind, filed.filed_at, filed.ref))
        if kind != "bond":  # a court filing interrupts the limitation period (art. 195)
            case.interrupt_limitation(rules.local_date(filed.filed_at, case.debtor.timezone))
        return filed

    def _desk_court(self) -> bool:
        """Legal staff enter the court's answers (COLLECTIONS_COURT=desk at intake) instead of the docket."""
        return self.case.desk.takes("court_entry")

    async def _docket(self, legal: LegalState, kind: str, *, close: bool = False) -> CourtDocket:
        if self._desk_court():  # a court_entry work item; ``close``: its window is over
            return await self.case.desk.court_docket(legal, kind, close=close)
        return await workflow.execute_activity_method(
            CaseActivities.court_docket,
            CourtQuery(self.case.ev.account_id, kind, legal.application_ref, legal.applied_at, self.case.debtor),
            summary=f"read the court docket ({kind})", **DB_ACTIVITY,
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
        await self.case.record(f"escalated: {detail}")

    async def _legal_record(self, legal: LegalState, step: str, at: datetime, detail: str, *, status: str,
                            escalation: bool = False) -> None:
        await workflow.execute_activity_method(
            CaseActivities.record_legal_step,
            LegalStepRecord(self.case.ev.account_id, legal.track, step, detail, at, status, escalation),
            summary=f"legal: {detail}"[:200], **DB_ACTIVITY,
        )

    async def _poll_court(self, legal: LegalState, every: timedelta, summary: str) -> None:
        """Look at the docket again after ``every`` (or at the running clock's
        deadline, if that comes first), unless an event arrives."""
        now = workflow.now()
        at = now + every
        if legal.deadline is not None and now < legal.deadline < at:
            at = legal.deadline
        if self._desk_court():  # people enter the answer (the Update wakes the case): wait for the clock only
            at = legal.deadline if legal.deadline is not None and now < legal.deadline else None
        await self.case.wait_until(at, summary)

    def _local(self, at: datetime) -> str:
        return local_stamp(at, self.case.debtor.timezone)
