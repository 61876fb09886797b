"""The auditable record of every case (SQLAlchemy 2.0 typed models).

The schema is created and changed only through Alembic (``migrations/``);
these models are what the migrations are generated from.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Every constraint and index gets a predictable name on every backend, so a
# migration can name what it alters (SQLite has no names otherwise, PostgreSQL
# its own).  Applied by migration 0004; new migrations get it from autogenerate.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2)
"""Every amount: a ``Decimal`` to the cent (never a float)."""


class UtcDateTimeType(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC instants")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcDateTime = UtcDateTimeType()


# A surrogate key: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite.
BigIntPk = Annotated[int, mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)]


class Base(DeclarativeBase):
    """``Mapped[datetime]`` is an aware UTC instant and ``Mapped[Decimal]`` money
    on every model; ``date``, ``int`` and ``bool`` keep SQLAlchemy's defaults."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime, Decimal: Money}


class Debtor(Base):
    __tablename__ = "debtors"

    debtor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32), index=True)
    age: Mapped[int] = mapped_column()
    dialect: Mapped[str | None] = mapped_column(String(32))
    monthly_disposable_income: Mapped[Decimal | None] = mapped_column()
    address: Mapped[str | None] = mapped_column(Text)
    # The adapters' simulation profile (SPEC §7; it may hold a skip-trace
    # number): read by activities, never carried by a case.  NULL: a row
    # written before migration 0006 (the case's input still holds it).
    simulation: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column()

    @staticmethod
    def values_of(d: Any, at: datetime) -> dict[str, Any]:
        """The row of a debtor as received: an intake ``DebtorIn``, or a case's
        :class:`~workflows.model.Debtor` from before the intake wrote the row."""
        income = d.monthly_disposable_income
        return dict(
            debtor_id=d.debtor_id, phone=d.phone, timezone=d.timezone, region=d.region, age=d.age,
            dialect=d.dialect, address=d.address, monthly_disposable_income=Decimal(income) if income else None,
            simulation=dict(d.simulation or {}), updated_at=at,
        )


class Case(Base):
    __tablename__ = "cases"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    debtor_id: Mapped[str] = mapped_column(String(64), index=True)
    contract_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    amount_due: Mapped[Decimal] = mapped_column()
    outstanding: Mapped[Decimal] = mapped_column()
    due_date: Mapped[date] = mapped_column()
    grade: Mapped[str] = mapped_column(String(3))
    stage: Mapped[str] = mapped_column(String(32), index=True)
    team_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32), index=True)
    limitation_expires_on: Mapped[date] = mapped_column()
    closed_reason: Mapped[str | None] = mapped_column(String(32))
    revision: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    strategy: Mapped[str | None] = mapped_column(String(80))  # name@version the case follows (SPEC §9)


class CaseHistory(Base):
    """One row per stage change of a case, as the workflow reported it."""

    __tablename__ = "case_history"
    __table_args__ = (UniqueConstraint("account_id", "revision"),)

    id: Mapped[BigIntPk]
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column()
    stage: Mapped[str] = mapped_column(String(32))
    grade: Mapped[str] = mapped_column(String(3))
    outstanding: Mapped[Decimal] = mapped_column()
    paused_by: Mapped[list[str]] = mapped_column(JSON)
    next_action: Mapped[str | None] = mapped_column(String(64))
    next_action_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(128))  # who sent the event this step applied
    recorded_at: Mapped[datetime] = mapped_column()


class ContactAttempt(Base):
    """Every contact attempt, exactly once (``idempotency_key`` = case, step, attempt)."""

    __tablename__ = "contact_attempts"
    __table_args__ = (
        Index("ix_contact_attempts_debtor_day", "debtor_id", "local_date"),
        Index("ix_contact_attempts_phone_day", "phone_hash", "local_date"),
    )

    id: Mapped[BigIntPk]
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    debtor_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(32))
    attempt_no: Mapped[int] = mapped_column()
    channel: Mapped[str] = mapped_column(String(16))  # voice | human | letter
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column()
    local_date: Mapped[date] = mapped_column()
    local_time: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    # dialing (in flight) | answered | no_answer | delivered | blocked_compliance
    outcome: Mapped[str] = mapped_column(String(24))
    connected: Mapped[bool] = mapped_column(default=False)
    promised_date: Mapped[date | None] = mapped_column()
    paid_amount: Mapped[Decimal | None] = mapped_column()  # paid during the call
    recording_ref: Mapped[str | None] = mapped_column(String(128))
    retain_until: Mapped[datetime | None] = mapped_column()
    receipt_ref: Mapped[str | None] = mapped_column(String(128))
    script_sha256: Mapped[str | None] = mapped_column(String(64))
    transcript: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column()


class SimulatedDial(Base):
    """The simulated voice robot's and call centre's own ledger (SPEC §7):
    one row per call they placed, by its attempt key, kept where a killed
    worker cannot lose it.  ``dial_requests`` counts how often they were
    asked to dial that key (more than 1: a retry asked again, which a vendor
    that does not de-duplicate would have rung again).  No personal data."""

    __tablename__ = "simulated_dials"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)  # contact_attempts.idempotency_key
    channel: Mapped[str] = mapped_column(String(16))  # voice | human
    dial_requests: Mapped[int] = mapped_column()
    outcome: Mapped[dict] = mapped_column(JSON)  # the call's outcome, as the status look-up answers it
    dialled_at: Mapped[datetime] = mapped_column()


class ComplianceIncident(Base):
    __tablename__ = "compliance_incidents"
    __table_args__ = (UniqueConstraint("attempt_key", "source"),)

    id: Mapped[BigIntPk]
    attempt_key: Mapped[str] = mapped_column(String(160))
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    team_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # script | transcript
    kinds: Mapped[list[str]] = mapped_column(JSON)
    excerpt: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column()


class Payment(Base):
    """A payment, once per account and ``payment_id``: the backstop against
    counting a payment twice (``request_key`` tells a retry of the same
    request, an event id or a call's attempt, from another use of the id)."""

    __tablename__ = "payments"
    __table_args__ = (PrimaryKeyConstraint("account_id", "payment_id"),)

    account_id: Mapped[str] = mapped_column(String(64), index=True)
    payment_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(16))  # event | call | late
    outstanding_after: Mapped[Decimal | None] = mapped_column()
    request_key: Mapped[str | None] = mapped_column(String(160))


class SkipTrace(Base):
    __tablename__ = "skip_traces"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    found: Mapped[bool] = mapped_column()
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(64))
    traced_at: Mapped[datetime] = mapped_column()


class InstallmentPlan(Base):
    """An installment plan a debtor accepted (grade I negotiation), and how it went."""

    __tablename__ = "installment_plans"
    __table_args__ = (UniqueConstraint("account_id", "accepted_at"),)

    id: Mapped[BigIntPk]
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    accepted_at: Mapped[datetime] = mapped_column()
    periods: Mapped[int] = mapped_column()
    installment: Mapped[Decimal] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    schedule: Mapped[list[dict]] = mapped_column(JSON)  # [{"due_on": "YYYY-MM-DD", "amount": "150.00"}, ...]
    paid: Mapped[Decimal] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # active | broken | completed
    updated_at: Mapped[datetime] = mapped_column()


class LegalAction(Base):
    """The one legal track a debt takes, and why (SPEC §2.4).

    One row per account: the primary key is what makes the payment order and
    asset preservation tracks mutually exclusive, whatever a workflow does.
    """

    __tablename__ = "legal_actions"
    __table_args__ = (  # named ck_legal_actions_track by the convention
        CheckConstraint("track IN ('payment_order', 'asset_preservation')", name="track"),
    )

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    track: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    bond_ref: Mapped[str | None] = mapped_column(String(80))
    application_ref: Mapped[str | None] = mapped_column(String(80))
    suit_ref: Mapped[str | None] = mapped_column(String(80))
    enforcement_ref: Mapped[str | None] = mapped_column(String(80))
    chosen_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class LegalStepRow(Base):
    """Every legal step, court event and escalation, exactly once per key."""

    __tablename__ = "legal_steps"

    id: Mapped[BigIntPk]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    track: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[str | None] = mapped_column(Text)
    escalation: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column()


class EvidenceEntry(Base):
    """Append-only, hash-chained: sha256 = SHA-256(prev_sha256 || fingerprint)."""

    __tablename__ = "evidence_log"

    seq: Mapped[BigIntPk]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    prev_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    recorded_at: Mapped[datetime] = mapped_column()


class IngestedEvent(Base):
    """Every accepted upstream event, keyed by its ``event_id`` (replays are no-ops)."""

    __tablename__ = "ingested_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    # pending | dispatched (signalled) | applied | no_effect | refused | recorded (late payment) | rejected
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)  # what the event did, or why it did nothing
    actor: Mapped[str | None] = mapped_column(String(128))  # who sent it (the envelope's actor)
    received_at: Mapped[datetime] = mapped_column()


class RejectedEvent(Base):
    __tablename__ = "rejected_events"

    id: Mapped[BigIntPk]
    source: Mapped[str] = mapped_column(String(512))
    line_no: Mapped[int] = mapped_column()
    event_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column()


class Disaster(Base):
    """A declared disaster: open cases of the region pause until ``ends_at``."""

    __tablename__ = "disasters"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), index=True)
    declared_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    cases_notified: Mapped[int] = mapped_column(default=0)


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_team_day", "team_id", "day"),)

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column()


class TeamSuspension(Base):
    """The team circuit breaker: a row per trip; open while ``cleared_at`` is null."""

    __tablename__ = "team_suspensions"

    id: Mapped[BigIntPk]
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    day: Mapped[date] = mapped_column()
    complaints: Mapped[int] = mapped_column()
    threshold: Mapped[int] = mapped_column()
    suspended_at: Mapped[datetime] = mapped_column()
    cleared_at: Mapped[datetime | None] = mapped_column()
    cleared_by_event: Mapped[str | None] = mapped_column(String(128))


class Operator(Base):
    """A person who works cases at the desk or the command line (SPEC §8)."""

    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint("role IN ('agent', 'legal', 'compliance', 'supervisor', 'admin')", name="role"),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    teams: Mapped[list[str]] = mapped_column(JSON)  # the teams whose work items they see and work
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2; NULL: no web sign-in
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class WorkItem(Base):
    """A step a case waits for a person to do (SPEC §8), once per ``key``.

    ``key`` is the case's idempotency key for the item (workflow id, kind,
    step and attempt), so an activity retried after a crash finds the item it
    opened instead of opening another.  ``status``: open -> claimed -> done,
    or expired (the window closed first; the case opens the next one).
    """

    __tablename__ = "work_items"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'claimed', 'done', 'expired')", name="status"),
        CheckConstraint(
            "kind IN ('human_call', 'court_entry', 'skip_trace_review', 'compliance_review')", name="kind"),
        Index("ix_work_items_status_team", "status", "team_id"),
        Index("ix_work_items_kind_status", "kind", "status"),
    )

    id: Mapped[BigIntPk]
    key: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)  # NULL: a team's review
    debtor_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    team_id: Mapped[str | None] = mapped_column(String(64))  # whose queue it is in
    step: Mapped[str | None] = mapped_column(String(40))  # the ladder or legal step it stands for
    window_start: Mapped[datetime | None] = mapped_column()  # claimable from (UTC)
    window_end: Mapped[datetime | None] = mapped_column()  # expires at (UTC)
    status: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column()
    attempt_key: Mapped[str | None] = mapped_column(String(160))  # the contact_attempts slot a claim reserved
    completed_by: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict | None] = mapped_column(JSON)  # promise date, amount paid, note, court reference...
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()


class DeskAction(Base):
    """The desk's audit trail: every action an operator took, allowed or refused."""

    __tablename__ = "desk_actions"

    id: Mapped[BigIntPk]
    at: Mapped[datetime] = mapped_column()
    operator: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32))  # sign_in | claim | release | complete | ...
    work_item_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    account_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))  # done | refused
    detail: Mapped[str | None] = mapped_column(Text)


class Lock(Base):
    """Rows locked FOR UPDATE to serialise rule checks across worker processes."""

    __tablename__ = "locks"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
