"""What a case answers: the ``status`` query and the Update results (SPEC §6).

Typed on both sides: the workflow returns these dataclasses and callers read
them through typed handles (``handle.query(DelinquentAccountWorkflow.status)``).
On the wire they are JSON objects with the keys below (fixed by SPEC §6);
instants travel as ISO 8601 strings, money as decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Stage(StrEnum):
    VERIFYING = "verifying"
    WAKE_UP_LADDER = "wake_up_ladder"
    PROMISE_TO_PAY = "promise_to_pay"
    SKIP_TRACING = "skip_tracing"
    INSTALLMENT = "installment"
    AWAITING_RESPONSE = "awaiting_response"
    LEGAL_PENDING = "legal_pending"  # cases from before the legal branch (v1)
    PAYMENT_ORDER = "payment_order"
    ASSET_PRESERVATION = "asset_preservation"
    CLOSED = "closed"


class Grade(StrEnum):
    I = "I"  # noqa: E741 - the grade's own name (SPEC §2.2)
    II = "II"
    III = "III"


class PauseKind(StrEnum):
    """What ``paused_by`` lists (SPEC §6)."""

    QUIET_HOURS = "quiet_hours"
    DISASTER_GRACE = "disaster_grace"
    SUSPENSION = "suspension"
    DISPUTE = "dispute"
    TEAM_SUSPENDED = "team_suspended"


class ClosedReason(StrEnum):
    PAID = "paid"
    INVALID_DEBT = "invalid_debt"
    TIME_BARRED = "time_barred"
    DISPUTE_UPHELD = "dispute_upheld"
    RECALLED = "recalled"
    REFERRED_TO_LITIGATION = "referred_to_litigation"
    ENFORCEMENT_REQUESTED = "enforcement_requested"


class Outcome(StrEnum):
    """What a contact attempt came to (``contact_attempts.outcome``)."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    DELIVERED = "delivered"
    CAPPED = "capped"
    QUIET_HOURS = "quiet_hours"
    BLOCKED_COMPLIANCE = "blocked_compliance"
    NOT_STARTED = "not_started"  # no worker started it in time: not placed, no row; the case plans it again


@dataclass
class ProtectionStatus:
    kind: PauseKind
    ref: str
    since: datetime
    until: datetime | None
    reason: str | None


@dataclass
class LadderEntry:
    step: str
    at: datetime
    outcome: str


@dataclass
class PlanOffer:
    installment: str
    periods: int


@dataclass
class ScheduledInstallment:
    due_on: str  # YYYY-MM-DD
    amount: str
    paid: bool


@dataclass
class PlanStatus:
    periods: int
    installment: str
    accepted_at: datetime
    status: str  # active | broken | completed
    paid: str
    schedule: list[ScheduledInstallment] = field(default_factory=list)


@dataclass
class LegalStepStatus:
    step: str
    at: datetime
    detail: str


@dataclass
class LegalStatus:
    track: str  # payment_order | asset_preservation
    reason: str
    status: str
    application_ref: str | None
    applied_at: datetime | None
    deadline: datetime | None
    steps: list[LegalStepStatus] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)


@dataclass
class CaseStatus:
    """The ``status`` query's answer; also the workflow's result when it closes."""

    account_id: str
    case_id: str
    debtor_id: str
    stage: Stage
    grade: Grade
    currency: str
    amount_due: str
    outstanding: str
    paused_by: list[PauseKind]
    protections: list[ProtectionStatus]
    next_action: str | None
    next_action_at: datetime | None
    closed_reason: ClosedReason | None
    closed_detail: str | None
    limitation_expires_on: str
    promised_date: str | None
    timezone: str
    ladder: list[LadderEntry] = field(default_factory=list)
    plan_offer: PlanOffer | None = None
    plan: PlanStatus | None = None
    legal: LegalStatus | None = None
    score: float | None = None  # the recovery score (0..1) when the case opened; None: not scored


@dataclass
class SuspensionGranted:
    """The ``grant_suspension`` Update's answer."""

    paused_by: list[PauseKind]
    until: datetime


@dataclass
class EventEffect:
    """What an event did to its case: the ``apply_event`` Update's answer, and
    what the case records (case_history, the event's ``ingested_events`` row).

    ``applied`` False: nothing changed, and ``effect`` says why
    (``"no effect: no open dispute"``, ``"refused: ..."``).  ``outstanding``
    and ``paused_by`` are the case's after the event; ``until`` is when the
    protection the event started ends (a suspension, a disaster grace);
    ``plan`` the plan an accepted ``plan.accepted`` started.
    """

    event_id: str
    type: str
    applied: bool
    effect: str  # e.g. "payment P-77 of 500.00 CNY recorded; outstanding 700.50 CNY"
    outstanding: str
    currency: str
    closed_reason: ClosedReason | None = None
    paused_by: list[PauseKind] = field(default_factory=list)
    until: datetime | None = None
    plan: PlanStatus | None = None
