"""Activities of a case: every side effect and every database write.

Each activity is idempotent: a retry (or a second worker after a crash)
finds the row the first attempt wrote and returns its outcome instead of
calling, serving or writing again; a call in flight when its worker died is
looked up at the adapter before anything is dialled.  Time is the clock of
record: now, on the server's clock (:func:`activities.common.activity_now`).
The legal branch's activities are :mod:`activities.legal_activities`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.adapters import Adapters
from activities.common import activity_now
from activities.ledger import DatabaseLedger
from activities.contact_activities import ContactActivities
from activities.legal_activities import LegalActivities
from support.logs import get_logger, mask_phone
from support import metrics
from db import evidence
from db.models import (
    Case,
    CaseHistory,
    Debtor as DebtorRow,
    Disaster,
    IngestedEvent,
    InstallmentPlan,
    Payment,
    SkipTrace,
    TeamSuspension,
)
from db.session import Database
from workflows import rules
from workflows.model import (
    CaseSnapshot,
    Debtor,
    DebtorOnFile,
    DebtorOnFileRequest,
    EventEffectRecord,
    EvidenceRequest,
    OpenCaseRequest,
    OpenCaseResult,
    Pause,
    PaymentRecord,
    PaymentResult,
    PlanRecord,
    SkipTraceRequest,
    SkipTraceResult,
    case_workflow_id,
)


@dataclass(frozen=True)
class OnFile:
    """A debtor's contact details as an activity reads them (never returned to a case)."""

    phone: str
    address: str | None
    profile: dict[str, Any]


_DISASTERS = (select(Disaster).where(Disaster.region == bindparam("region"), Disaster.ends_at > bindparam("at"))
              .order_by(Disaster.ends_at))
_TEAM_SUSPENDED = select(func.count()).select_from(TeamSuspension).where(
    TeamSuspension.team_id == bindparam("team"), TeamSuspension.cleared_at.is_(None))


def active_protections(s: Session, *, region: str, team_id: str | None, at: datetime) -> list[Pause]:
    """Protections in force for a case opening now in ``region`` for ``team_id``."""
    disasters = s.scalars(_DISASTERS, {"region": region, "at": at}).all()
    suspended = team_id is not None and s.scalar(_TEAM_SUSPENDED, {"team": team_id})
    pauses = [Pause("disaster_grace", region, at, disasters[-1].ends_at, f"disaster in {region}")] if disasters else []
    if suspended:
        pauses.append(Pause("team_suspended", team_id, at, None, "complaint threshold exceeded"))
    return pauses


_EVENT_LINE = select(IngestedEvent.payload).where(IngestedEvent.event_id == bindparam("event_id"))
# The cases row moved forward to a snapshot's revision, only ever forward (a
# late retry must not roll it back); a closing also dates it.
_MOVE_FORWARD = update(Case.__table__).where(Case.account_id == bindparam("a"), Case.revision <= bindparam("r")).values(
    stage=bindparam("v_stage"), grade=bindparam("v_grade"), outstanding=bindparam("v_outstanding"),
    limitation_expires_on=bindparam("v_limitation"), closed_reason=bindparam("v_closed_reason"),
    revision=bindparam("r"), updated_at=bindparam("v_now"))
_MOVE_FORWARD_CLOSED = _MOVE_FORWARD.values(closed_at=bindparam("v_now"))
_CLOSED_REASON = select(Case.closed_reason).where(Case.account_id == bindparam("a"))


@dataclass(frozen=True)
class _Opened:
    """What open_case's transaction found and wrote."""

    new: bool  # the case's row was written now (not by an earlier attempt)
    entry: Any  # its default event's evidence entry
    income: Decimal | None  # the monthly disposable income on file
    protections: list[Pause] | None  # in force (None: read after the commit, on PostgreSQL)


class CaseActivities(ContactActivities, LegalActivities):
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
        found = await self.db.run(lambda s: self._open(s, req, team, now))
        protections = found.protections
        if protections is None:  # PostgreSQL: after the commit
            protections = await self.db.run(
                lambda s: active_protections(s, region=d.region, team_id=team, at=now), write=False)
            if req.opened is not None and not protections:
                await self.db.run(lambda s: self._write_snapshot(s, req.opened, now))
        if found.new:
            metrics.case_opened()
        recorded = req.opened is not None and not protections  # a protection changes the record: the case writes it
        share = rules.installment_share(found.income, Decimal(req.income_share))
        get_logger(account_id=ev.account_id, step="open_case").info(
            "case opened", evidence_seq=found.entry.seq, protections=[p.kind for p in protections], recorded=recorded)
        return OpenCaseResult(evidence_seq=found.entry.seq, evidence_sha256=found.entry.sha256, protections=protections,
                              installment_share=str(share) if share is not None else None, recorded=recorded)

    def _open(self, s: Session, req: OpenCaseRequest, team: str | None, now: datetime) -> _Opened:
        """open_case's transaction: the debtor's row (a case started before the
        intake wrote it), the case's row, the default event's evidence, and on
        SQLite the protections in force and the opening's record."""
        ev, d = req.event, req.event.debtor
        if d.phone is not None:  # a case started before the intake wrote the row
            s.execute(self.db.insert(DebtorRow).values(**DebtorRow.values_of(d, now)).on_conflict_do_nothing())
        amount = rules.parse_money(ev.amount_due) or Decimal(0)
        opened = s.execute(self.db.insert_ignoring(Case.__table__), dict(
            account_id=ev.account_id, workflow_id=case_workflow_id(ev.account_id), debtor_id=d.debtor_id,
            contract_id=ev.contract_id, currency=ev.currency, amount_due=amount, outstanding=amount,
            due_date=date.fromisoformat(ev.due_date), grade=req.grade, stage="verifying",
            team_id=team, region=d.region, limitation_expires_on=date.fromisoformat(req.limitation_expires_on),
            revision=0, opened_at=ev.occurred_at, updated_at=now, strategy=req.strategy,
            closed_reason=None, closed_at=None,
        ))
        # The evidence is the event as received: kept by the intake in
        # ingested_events (a case started before carries it in its input).
        line = ev.canonical_json or s.scalar(_EVENT_LINE, {"event_id": ev.event_id}) or ""
        payload = evidence.canonical_json({"event": line, "contract_id": ev.contract_id})
        entry = evidence.append_in(self.db, s, account_id=ev.account_id, kind="default_event",
                                   key=f"default:{ev.account_id}:{ev.event_id}", payload=payload, at=now)
        row = s.get(DebtorRow, d.debtor_id)
        # Protections are read after the case's row is written, so that a
        # disaster or suspension committed later finds the row in its fan-out.
        # On SQLite this transaction holds the database's write lock: none
        # can commit meanwhile, and the read and the record go in it.
        protections = active_protections(s, region=d.region, team_id=team, at=now) if self.db.one_writer else None
        if protections == [] and req.opened is not None:
            self._write_snapshot(s, req.opened, now)
        return _Opened(bool(opened.rowcount), entry, row.monthly_disposable_income if row else None, protections)

    async def _on_file(self, d: Debtor) -> OnFile:
        """:meth:`_on_file_in`, read in a transaction of its own."""
        return await self.db.run(lambda s: self._on_file_in(s, d), write=False)

    @staticmethod
    def _on_file_in(session: Session, d: Debtor) -> OnFile:
        """The debtor's contact details: the database's row (the intake's, the
        latest of the debtor's accounts; a skip trace's number), or for a case
        started before the row was written, its input's."""
        row = session.get(DebtorRow, d.debtor_id)
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
        was_closed = await self.db.run(lambda s: self._write_snapshot(s, snap, now))
        if snap.closed_reason and was_closed is None:
            metrics.case_closed(snap.closed_reason)
        get_logger(account_id=snap.account_id, step="record_case").info(
            "case stage", stage=snap.stage, grade=snap.grade, closed_reason=snap.closed_reason,
            next_action=snap.next_action,
        )

    def _write_snapshot(self, s: Session, snap: CaseSnapshot, now: datetime) -> str | None:
        """The case_history row of ``snap``'s revision (once) and the cases row
        moved forward to it; the case's closing reason before (a closing is counted once)."""
        s.execute(self.db.insert_ignoring(CaseHistory.__table__), dict(
            account_id=snap.account_id, revision=snap.revision, stage=snap.stage, grade=snap.grade,
            outstanding=Decimal(snap.outstanding), paused_by=snap.paused_by,
            next_action=snap.next_action, next_action_at=snap.next_action_at,
            note=snap.note, actor=snap.actor, recorded_at=now,
        ))
        values = dict(a=snap.account_id, r=snap.revision, v_stage=snap.stage, v_grade=snap.grade,
                      v_outstanding=Decimal(snap.outstanding),
                      v_limitation=date.fromisoformat(snap.limitation_expires_on),
                      v_closed_reason=snap.closed_reason, v_now=now)
        if not snap.closed_reason:
            s.execute(_MOVE_FORWARD, values)
            return None
        was_closed = s.scalar(_CLOSED_REASON, {"a": snap.account_id})
        s.execute(_MOVE_FORWARD_CLOSED, values)
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
        now = activity_now()
        entry = await self.db.run(lambda s: evidence.append_in(
            self.db, s, account_id=req.account_id, kind=req.kind, key=req.key, payload=req.payload, at=now))
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

    def all(self) -> list:
        return [self.open_case, self.debtor_on_file, self.record_case, self.record_payment, self.record_event_effect,
                self.append_evidence, self.skip_trace, self.contact_debtor, self.post_letter, self.record_plan,
                self.open_legal_action, self.legal_filing, self.court_docket, self.record_legal_step]
