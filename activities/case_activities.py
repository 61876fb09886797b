"""Activities of a case: every side effect and every database write.

Each activity is idempotent: a retry (or a second worker after a crash)
finds the row the first attempt wrote and returns its outcome instead of
calling, serving or writing again; a call in flight when its worker died is
looked up at the adapter before anything is dialled.  Time is the clock of
record: now, on the server's clock (:func:`activities.common.activity_now`).
The legal branch's activities are :mod:`activities.legal_activities`.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

import compliance
from activities.adapters import Adapters, CallOutcome
from activities.common import activity_now, attempt_key, phone_hash, start_clock, with_heartbeat
from activities.ledger import DatabaseLedger
from activities.legal_activities import LegalActivities
from support.logs import get_logger, mask_phone
from support import metrics
from db import evidence
from db.models import (
    Case,
    CaseHistory,
    ComplianceIncident,
    ContactAttempt,
    Debtor as DebtorRow,
    Disaster,
    IngestedEvent,
    InstallmentPlan,
    Payment,
    SkipTrace,
    TeamSuspension,
    WorkItem,
)
from db.session import Database
from workflows import rules
from workflows.model import (
    CaseSnapshot,
    ContactRequest,
    Debtor,
    DebtorOnFile,
    DebtorOnFileRequest,
    ContactResult,
    EventEffectRecord,
    EvidenceRequest,
    OpenCaseRequest,
    OpenCaseResult,
    Pause,
    PaymentRecord,
    PaymentResult,
    PlanRecord,
    PostRequest,
    PostResult,
    SkipTraceRequest,
    SkipTraceResult,
    case_workflow_id,
)

CALL_CHANNELS = ("voice", "human")


@dataclass(frozen=True)
class OnFile:
    """A debtor's contact details as an activity reads them (never returned to a case)."""

    phone: str
    address: str | None
    profile: dict[str, Any]


def debtor_row_values(d: Any, at: datetime) -> dict[str, Any]:
    """The ``debtors`` row of a debtor (an intake ``DebtorIn`` or a legacy
    :class:`~workflows.model.Debtor` with its contact details)."""
    income = d.monthly_disposable_income
    return dict(
        debtor_id=d.debtor_id, phone=d.phone, timezone=d.timezone, region=d.region, age=d.age, dialect=d.dialect,
        address=d.address, monthly_disposable_income=Decimal(income) if income else None,
        simulation=dict(d.simulation or {}), updated_at=at,
    )


async def active_protections(db: Database, *, region: str, team_id: str | None, at: datetime) -> list[Pause]:
    """Protections in force for a case opening now in ``region`` for ``team_id``."""
    async with db.sessions() as s:
        disasters = (await s.scalars(
            select(Disaster).where(Disaster.region == region, Disaster.ends_at > at).order_by(Disaster.ends_at)
        )).all()
        suspended = team_id is not None and await s.scalar(
            select(func.count()).select_from(TeamSuspension).where(
                TeamSuspension.team_id == team_id, TeamSuspension.cleared_at.is_(None))
        )
    pauses = [Pause("disaster_grace", region, at, disasters[-1].ends_at, f"disaster in {region}")] if disasters else []
    if suspended:
        pauses.append(Pause("team_suspended", team_id, at, None, "complaint threshold exceeded"))
    return pauses


class CaseActivities(LegalActivities):
    def __init__(self, db: Database, adapters: Adapters, contact_rules: rules.ContactRules = rules.DEFAULT_RULES):
        self.db = db
        self.adapters = adapters
        self.rules = contact_rules
        adapters.keep_ledger(DatabaseLedger(db))  # the simulated calls' ledger outlives this process

    # ------------------------------------------------------------------ cases

    @activity.defn(name="open_case")
    async def open_case(self, req: OpenCaseRequest) -> OpenCaseResult:
        """Open the case's row and fingerprint the default event.  The intake
        wrote the debtor's row before it started the case; a case started
        before that carries the contact details in its input, written here."""
        ev, d = req.event, req.event.debtor
        now = activity_now()
        # The team that handles the case's human contact (a 60+ debtor's
        # dialect team): complaints against it and its suspension reach the case.
        team = rules.route_team(d.age, d.dialect, ev.team_id, self.rules)
        async with self.db.transaction() as s:
            if d.phone is not None:  # a case started before the intake wrote the row
                await s.execute(
                    self.db.insert(DebtorRow).values(**debtor_row_values(d, now)).on_conflict_do_nothing()
                )
            amount = rules.parse_money(ev.amount_due) or Decimal(0)
            opened = await s.execute(
                self.db.insert(Case).values(
                    account_id=ev.account_id, workflow_id=case_workflow_id(ev.account_id), debtor_id=d.debtor_id,
                    contract_id=ev.contract_id, currency=ev.currency, amount_due=amount, outstanding=amount,
                    due_date=date.fromisoformat(ev.due_date), grade=req.grade, stage="verifying",
                    team_id=team, region=d.region,
                    limitation_expires_on=date.fromisoformat(req.limitation_expires_on),
                    revision=0, opened_at=ev.occurred_at, updated_at=now, strategy=req.strategy,
                ).on_conflict_do_nothing()
            )
            # The evidence is the event as received: kept by the intake in
            # ingested_events (a case started before carries it in its input).
            line = ev.canonical_json or await s.scalar(
                select(IngestedEvent.payload).where(IngestedEvent.event_id == ev.event_id)) or ""
            payload = evidence.canonical_json({"event": line, "contract_id": ev.contract_id})
            entry = await evidence.append(
                self.db, s, account_id=ev.account_id, kind="default_event",
                key=f"default:{ev.account_id}:{ev.event_id}", payload=payload, at=now,
            )
            row = await s.get(DebtorRow, d.debtor_id)
        if opened.rowcount:
            metrics.case_opened()
        # Read after the case's row is written: a disaster declared later finds the row in its fan-out.
        protections = await active_protections(self.db, region=d.region, team_id=team, at=now)
        recorded = req.opened is not None and not protections  # a protection changes the record: the case writes it
        if recorded:
            async with self.db.transaction() as s:
                await self._write_snapshot(s, req.opened, now)
        share = rules.installment_share(row.monthly_disposable_income if row else None, Decimal(req.income_share))
        get_logger(account_id=ev.account_id, step="open_case").info(
            "case opened", evidence_seq=entry.seq, protections=[p.kind for p in protections], recorded=recorded)
        return OpenCaseResult(evidence_seq=entry.seq, evidence_sha256=entry.sha256, protections=protections,
                              installment_share=str(share) if share is not None else None, recorded=recorded)

    async def _on_file(self, d: Debtor) -> OnFile:
        """The debtor's contact details: the database's row (the intake's, the
        latest of the debtor's accounts; a skip trace's number), or for a case
        started before the row was written, its input's."""
        async with self.db.sessions() as s:
            row = await s.get(DebtorRow, d.debtor_id)
        if row is None:
            if d.phone is None:
                raise ApplicationError(f"debtor {d.debtor_id} has no row in the debtors table",
                                       type="DebtorNotOnFile")
            return OnFile(d.phone, d.address, d.simulation)
        profile = row.simulation if row.simulation is not None else d.simulation
        return OnFile(row.phone, row.address or d.address, profile or {})

    @activity.defn(name="debtor_on_file")
    async def debtor_on_file(self, req: DebtorOnFileRequest) -> DebtorOnFile:
        """Whether a postal address is on file (the legal track's choice); the address stays here."""
        async with self.db.sessions() as s:
            row = await s.get(DebtorRow, req.debtor_id)
        return DebtorOnFile(has_address=bool(row is not None and row.address and row.address.strip()))

    @activity.defn(name="record_case")
    async def record_case(self, snap: CaseSnapshot) -> None:
        """Persist a stage change (cases row + one case_history row per revision)."""
        now = activity_now()
        async with self.db.transaction() as s:
            was_closed = await self._write_snapshot(s, snap, now)
        if snap.closed_reason and was_closed is None:
            metrics.case_closed(snap.closed_reason)
        get_logger(account_id=snap.account_id, step="record_case").info(
            "case stage", stage=snap.stage, grade=snap.grade, closed_reason=snap.closed_reason,
            next_action=snap.next_action,
        )

    async def _write_snapshot(self, s, snap: CaseSnapshot, now: datetime) -> str | None:
        """The case_history row of ``snap``'s revision (once) and the cases row
        moved forward to it; the case's closing reason before (a closing is counted once)."""
        await s.execute(
            self.db.insert(CaseHistory).values(
                account_id=snap.account_id, revision=snap.revision, stage=snap.stage, grade=snap.grade,
                outstanding=Decimal(snap.outstanding), paused_by=snap.paused_by,
                next_action=snap.next_action, next_action_at=snap.next_action_at,
                note=snap.note, actor=snap.actor, recorded_at=now,
            ).on_conflict_do_nothing()
        )
        values = dict(
            stage=snap.stage, grade=snap.grade, outstanding=Decimal(snap.outstanding),
            limitation_expires_on=date.fromisoformat(snap.limitation_expires_on),
            closed_reason=snap.closed_reason, revision=snap.revision, updated_at=now,
        )
        if snap.closed_reason:
            values["closed_at"] = now
        was_closed = await s.scalar(select(Case.closed_reason).where(Case.account_id == snap.account_id)
                                    ) if snap.closed_reason else None
        # Only ever move a case's row forward (a late retry must not roll it back).
        await s.execute(
            update(Case).where(Case.account_id == snap.account_id, Case.revision <= snap.revision).values(**values)
        )
        return was_closed

    @activity.defn(name="record_payment")
    async def record_payment(self, rec: PaymentRecord) -> PaymentResult:
        """Record a payment once per account and payment id.  Not recorded
        (``recorded`` False) when that id was recorded before by another
        request (event or call): the case must not count it again.  A retry
        of the same request finds its own row and answers recorded."""
        async with self.db.transaction() as s:
            await s.execute(
                self.db.insert(Payment).values(
                    payment_id=rec.payment_id, account_id=rec.account_id, amount=Decimal(rec.amount),
                    currency=rec.currency, received_at=rec.received_at, source=rec.source,
                    outstanding_after=Decimal(rec.outstanding_after), request_key=rec.request_key,
                ).on_conflict_do_nothing()
            )
            row = await s.get(Payment, (rec.account_id, rec.payment_id))
        recorded = rec.request_key is None or row.request_key == rec.request_key
        log = get_logger(account_id=rec.account_id, step="payment")
        if recorded:
            log.info("payment recorded", amount=rec.amount, outstanding=rec.outstanding_after)
        else:
            log.warning("payment already recorded", payment_id=rec.payment_id, by=row.request_key)
        return PaymentResult(recorded=recorded)

    @activity.defn(name="record_event_effect")
    async def record_event_effect(self, rec: EventEffectRecord) -> None:
        """What an event did to its case, on its ``ingested_events`` row (none
        for an event that did not come through the intake).  Only the row of
        an event for this account: a region's or a team's row is the intake's."""
        where = [IngestedEvent.event_id == rec.event_id]
        if rec.account_id is not None:
            where.append(IngestedEvent.account_id == rec.account_id)
        async with self.db.transaction() as s:
            await s.execute(update(IngestedEvent).where(*where).values(status=rec.status, detail=rec.detail))

    @activity.defn(name="append_evidence")
    async def append_evidence(self, req: EvidenceRequest) -> int:
        async with self.db.transaction() as s:
            entry = await evidence.append(
                self.db, s, account_id=req.account_id, kind=req.kind, key=req.key, payload=req.payload,
                at=activity_now(),
            )
        return entry.seq

    @activity.defn(name="skip_trace")
    async def skip_trace(self, req: SkipTraceRequest) -> SkipTraceResult:
        """Look up a current contact in data sources; contacts nobody."""
        async with self.db.sessions() as s:
            row = await s.get(SkipTrace, req.account_id)
        if row is None:
            on_file = await self._on_file(req.debtor)
            out = await self.adapters.skip_trace.lookup(
                key=f"trace:{req.account_id}", debtor_id=req.debtor.debtor_id, profile=on_file.profile
            )
            async with self.db.transaction() as s:
                await s.execute(
                    self.db.insert(SkipTrace).values(
                        account_id=req.account_id, found=out.found, source=out.source, traced_at=activity_now(),
                        phone_masked=mask_phone(out.phone) if out.phone else None,
                    ).on_conflict_do_nothing()
                )
                if out.found and out.phone:
                    await s.execute(
                        update(DebtorRow).where(DebtorRow.debtor_id == req.debtor.debtor_id).values(phone=out.phone)
                    )
            found, source = out.found, out.source
        else:
            found, source = row.found, row.source
        get_logger(account_id=req.account_id, step="skip_trace").info("skip trace", found=found)
        return SkipTraceResult(found=found, source=source)  # the number stays in the database

    # ------------------------------------------------------------ negotiation

    @activity.defn(name="record_plan")
    async def record_plan(self, rec: PlanRecord) -> None:
        """Persist an accepted plan and every change of its status or payments."""
        now = activity_now()
        values = dict(paid=Decimal(rec.paid), status=rec.status, updated_at=now)
        async with self.db.transaction() as s:
            await s.execute(
                self.db.insert(InstallmentPlan).values(
                    account_id=rec.account_id, accepted_at=rec.accepted_at, periods=rec.periods,
                    installment=Decimal(rec.installment), currency=rec.currency,
                    schedule=[{"due_on": i.due_on, "amount": i.amount} for i in rec.schedule], **values,
                ).on_conflict_do_nothing()
            )
            await s.execute(
                update(InstallmentPlan)
                .where(InstallmentPlan.account_id == rec.account_id, InstallmentPlan.accepted_at == rec.accepted_at)
                .values(**values)
            )
        get_logger(account_id=rec.account_id, step="installment_plan").info(
            "installment plan", status=rec.status, periods=rec.periods, installment=rec.installment, paid=rec.paid)

    # ---------------------------------------------------------------- contact

    @activity.defn(name="contact_debtor")
    async def contact_debtor(self, req: ContactRequest) -> ContactResult:
        # The clock of record starts with the attempt (activities.common):
        # quiet hours and caps are judged, and the row dated, by it.
        start_clock()
        # Heartbeat through the whole attempt: waiting for the database lock
        # under load is as much a part of it as the call itself.
        return await with_heartbeat(self._contact(req))

    async def _contact(self, req: ContactRequest) -> ContactResult:
        key = attempt_key(req.account_id, req.step, req.attempt_no)
        step = rules.STEP_NAMES[req.step]
        d = req.debtor
        on_file = await self._on_file(d)
        log = get_logger(account_id=req.account_id, step=req.step, attempt=req.attempt_no)
        team = rules.route_team(d.age, d.dialect, req.team_id, self._rules_for(req)) if step.channel == "human" else None
        script = compliance.script_for(req.step, region=d.region, ref=compliance.spoken_ref(req.account_id),
                                       amount=req.amount, currency=req.currency, contract=req.contract_id)

        async with self.db.sessions() as s:  # a read: the reservation below writes under the lock
            row = await s.scalar(select(ContactAttempt).where(ContactAttempt.idempotency_key == key))
        if row is not None and row.outcome != "dialing":
            return self._result(row)  # a retry after the attempt completed: no second contact
        # A retry of an attempt in flight (its worker died mid-call): ask the
        # adapter whether the call was placed; only if not, it may be placed now.
        placed = await self._placed(step.channel, key, log) if row is not None else None
        if placed is None:
            async with self.db.transaction() as s:
                refusal = await self._reserve(s, req, on_file.phone, key, step.channel, team, script,
                                              again=row is not None)
            if isinstance(refusal, ContactResult):
                if refusal.outcome != "blocked_compliance":
                    log.info("contact deferred", outcome=refusal.outcome, retry_at=refusal.retry_at, detail=refusal.detail)
                return refusal
            row = refusal
        # Outside the transaction: the call itself (idempotent per key at the adapter).
        if placed is not None:
            result = await self._complete_call(key, req, placed)  # the call the dead attempt placed
        elif step.channel == "letter":
            receipt = await self.adapters.eservice.serve(
                key=key, phone=on_file.phone, document=script, at=row.attempted_at, profile=on_file.profile,
                attempt=req.try_no,
            )
            result = await self._complete_letter(key, receipt.receipt_ref, receipt.delivered)
        else:
            if step.channel == "voice":
                outcome = await self.adapters.voice.call(key=key, phone=on_file.phone, script=script,
                                                         profile=on_file.profile)
            else:
                outcome = await self.adapters.human.call(
                    key=key, phone=on_file.phone, team_id=team or "general", script=script, profile=on_file.profile
                )
            result = await self._complete_call(key, req, outcome)
        log.info("contact", channel=step.channel, outcome=result.outcome, team_id=result.team_id,
                 promised_date=result.promised_date)
        return result

    async def _placed(self, channel: str, key: str, log) -> CallOutcome | None:
        """The adapter's status look-up for a call in flight: the outcome of the
        call placed with ``key``, or None (none placed; letters: served again
        with the same key, the electronic service de-duplicates)."""
        adapter = {"voice": self.adapters.voice, "human": self.adapters.human}.get(channel)
        lookup = getattr(adapter, "placed", None)
        if lookup is None:
            if adapter is not None:
                log.warning("adapter has no status look-up: the retry dials again with the same key",
                            adapter=type(adapter).__name__)
            return None
        outcome = await lookup(key=key)
        log.info("call in flight looked up", placed=outcome is not None)
        return outcome

    def _rules_for(self, req: ContactRequest) -> rules.ContactRules:
        """The worker's contact rules, made stricter by the case's (its strategy's)."""
        return rules.strictest(self.rules, req.contact_rules.to_rules()) if req.contact_rules else self.rules

    async def _reserve(self, s, req: ContactRequest, phone: str, key: str, channel: str, team: str | None,
                       script: str, again: bool = False):
        """Check the rules and write the attempt row as in flight, or say why not.

        The moment judged and recorded is now, taken once the debtor's and the
        phone's locks are held: nothing between it and the dial can wait long.
        ``again``: the attempt's earlier reservation placed no call (its worker
        died first); it is released and the rules judged afresh, now."""
        d = req.debtor
        ph = phone_hash(phone)
        if channel in CALL_CHANNELS:
            await self.db.lock(s, f"debtor:{d.debtor_id}", f"phone:{ph}")
        if again:
            await s.execute(delete(ContactAttempt).where(ContactAttempt.idempotency_key == key,
                                                         ContactAttempt.outcome == "dialing"))
        now = activity_now()
        contact_rules = self._rules_for(req)
        if rules.in_quiet_hours(now, d.timezone, contact_rules):
            metrics.refused("quiet_hours")
            return ContactResult(outcome="quiet_hours", retry_at=rules.next_contact_window(now, d.timezone, contact_rules),
                                 detail=f"quiet hours ({contact_rules.quiet_start:%H:%M}-"
                                        f"{contact_rules.quiet_end:%H:%M} debtor-local)")
        today = rules.local_date(now, d.timezone)
        if channel in CALL_CHANNELS:
            connected = await s.scalar(
                select(func.count()).select_from(ContactAttempt).where(
                    ContactAttempt.debtor_id == d.debtor_id, ContactAttempt.local_date == today,
                    ContactAttempt.channel.in_(CALL_CHANNELS),
                    or_(ContactAttempt.connected.is_(True), ContactAttempt.outcome == "dialing"),
                )
            )
            dials = await s.scalar(
                select(func.count()).select_from(ContactAttempt).where(
                    ContactAttempt.phone_hash == ph, ContactAttempt.local_date == today,
                    ContactAttempt.channel.in_(CALL_CHANNELS), ContactAttempt.outcome != "blocked_compliance",
                )
            )
            reason = rules.cap_reason(connected or 0, dials or 0, contact_rules)
            if reason:
                metrics.refused("cap")
                return ContactResult(outcome="capped", retry_at=rules.next_local_day_opening(now, d.timezone, contact_rules),
                                     detail=reason)
        local = rules.local_datetime(now, d.timezone)
        row = ContactAttempt(
            idempotency_key=key, account_id=req.account_id, debtor_id=d.debtor_id, step=req.step,
            attempt_no=req.attempt_no, channel=channel, phone_hash=ph, phone_masked=mask_phone(phone),
            team_id=team, attempted_at=now, local_date=today, local_time=local.strftime("%H:%M:%S"),
            timezone=d.timezone, outcome="dialing", connected=False,
            script_sha256=hashlib.sha256(script.encode()).hexdigest(),
            retain_until=rules.retain_until(now, contact_rules) if channel in CALL_CHANNELS else None,
        )
        violations = compliance.screen_text(script)
        if violations:
            row.outcome, row.completed_at = "blocked_compliance", now
            metrics.refused("screen")
            metrics.contact(channel, row.outcome)
            s.add(row)
            s.add(ComplianceIncident(attempt_key=key, account_id=req.account_id, team_id=team, source="script",
                                     kinds=violations, excerpt=script[:500], raised_at=now))
            await s.flush()
            return self._result(row, detail=f"script failed compliance screen: {', '.join(violations)}")
        s.add(row)
        await s.flush()
        return row

    async def _complete_call(self, key: str, req: ContactRequest, out: CallOutcome) -> ContactResult:
        now = activity_now()
        async with self.db.transaction() as s:
            row = await s.scalar(select(ContactAttempt).where(ContactAttempt.idempotency_key == key))
            if row.outcome != "dialing":
                return self._result(row)
            row.outcome = "answered" if out.answered else "no_answer"
            row.connected = out.answered
            row.recording_ref = out.recording_ref
            row.transcript = out.transcript
            row.completed_at = now
            if out.promises_in_days:
                row.promised_date = row.local_date + timedelta(days=out.promises_in_days)
            if out.pays_amount:
                row.paid_amount = Decimal(req.amount if out.pays_amount == "all" else out.pays_amount)
            violations = compliance.screen_text(out.transcript)
            if violations:
                s.add(ComplianceIncident(attempt_key=key, account_id=req.account_id, team_id=row.team_id,
                                         source="transcript", kinds=violations, excerpt=out.transcript[:500],
                                         raised_at=now))
                await s.execute(self.db.insert(WorkItem).values(  # the desk's review of it (SPEC §8)
                    key=f"incident:{key}", account_id=req.account_id, debtor_id=req.debtor.debtor_id,
                    kind="compliance_review", team_id=row.team_id, step="incident_review", status="open",
                    detail={"incident": key, "kinds": violations}, created_at=now, updated_at=now,
                ).on_conflict_do_nothing())
            metrics.contact(row.channel, row.outcome)
            return self._result(row)

    async def _complete_letter(self, key: str, receipt_ref: str, delivered: bool) -> ContactResult:
        async with self.db.transaction() as s:
            row = await s.scalar(select(ContactAttempt).where(ContactAttempt.idempotency_key == key))
            if row.outcome == "dialing":
                row.outcome = "delivered" if delivered else "undelivered"
                row.receipt_ref = receipt_ref
                row.completed_at = activity_now()
                metrics.contact(row.channel, row.outcome)
            return self._result(row)

    @activity.defn(name="post_letter")
    async def post_letter(self, req: PostRequest) -> PostResult:
        """Send the legal notice by post, once per case: the attempt's row
        (channel ``post``) is written first, then the postal adapter is called
        with its key (a retry gets the first posting's receipt), then the
        tracking reference is written down.  The address is the database's."""
        start_clock()
        d, key = req.debtor, attempt_key(req.account_id, "legal_notice_post", 1)
        on_file = await self._on_file(d)
        address = on_file.address
        if not address:
            return PostResult(posted=False, posted_at=activity_now(), detail="no postal address on file")
        document = compliance.script_for("legal_notice", region=d.region, ref=compliance.spoken_ref(req.account_id),
                                         amount=req.amount, currency=req.currency, contract=req.contract_id)
        now = activity_now()
        async with self.db.transaction() as s:
            await s.execute(self.db.insert(ContactAttempt).values(
                idempotency_key=key, account_id=req.account_id, debtor_id=d.debtor_id, step="legal_notice_post",
                attempt_no=1, channel="post", attempted_at=now, local_date=rules.local_date(now, d.timezone),
                local_time=rules.local_datetime(now, d.timezone).strftime("%H:%M:%S"), timezone=d.timezone,
                outcome="posting", connected=False, script_sha256=hashlib.sha256(document.encode()).hexdigest(),
            ).on_conflict_do_nothing())
            posted_at = await s.scalar(select(ContactAttempt.attempted_at).where(ContactAttempt.idempotency_key == key))
        receipt = await with_heartbeat(self.adapters.post.post(
            key=key, address=address, document=document, at=posted_at, profile=on_file.profile))
        outcome = "posted" if receipt.delivered_at else "returned"
        async with self.db.transaction() as s:
            posted = await s.execute(update(ContactAttempt).where(ContactAttempt.idempotency_key == key,
                                                                  ContactAttempt.outcome == "posting")
                            .values(outcome=outcome, receipt_ref=receipt.tracking_ref, completed_at=activity_now()))
        if posted.rowcount:
            metrics.contact("post", outcome)
        get_logger(account_id=req.account_id, step="legal_notice_post").info(
            "legal notice posted", tracking_ref=receipt.tracking_ref, outcome=outcome)
        return PostResult(posted=True, posted_at=posted_at, tracking_ref=receipt.tracking_ref,
                          delivered_at=receipt.delivered_at,
                          detail=None if receipt.delivered_at else "returned undeliverable")

    @staticmethod
    def _result(row: ContactAttempt, detail: str | None = None) -> ContactResult:
        return ContactResult(
            outcome=row.outcome, attempted_at=row.attempted_at, connected=row.connected,
            promised_date=row.promised_date.isoformat() if row.promised_date else None,
            team_id=row.team_id, detail=detail or row.receipt_ref,
            paid_amount=str(row.paid_amount) if row.paid_amount is not None else None,
            payment_id=f"call-{row.idempotency_key}" if row.paid_amount is not None else None,
        )

    def all(self) -> list:
        return [self.open_case, self.debtor_on_file, self.record_case, self.record_payment, self.record_event_effect,
                self.append_evidence, self.skip_trace, self.contact_debtor, self.post_letter, self.record_plan,
                self.open_legal_action, self.legal_filing, self.court_docket, self.record_legal_step]
