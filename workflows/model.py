"""Dataclasses that cross Temporal payloads (workflow inputs, activity I/O).

Money travels as decimal strings, instants as aware UTC datetimes, dates as
ISO strings; nothing here is a float.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, time
from typing import Any

from workflows import rules
from workflows.status import ClosedReason, Grade, PauseKind, Stage
from workflows.strategy import CaseStrategy

WORKFLOW_TYPE = "DelinquentAccountWorkflow"
DEFAULT_TASK_QUEUE = "collections"


def case_workflow_id(account_id: str) -> str:
    return f"case-{account_id}"


@dataclass
class Debtor:
    """The debtor as a case sees it: the pseudonymous id and what its rules
    need (time zone, region, age, dialect).  The contact details (phone,
    address, income, the simulation profile) live in the ``debtors`` table,
    where activities read them; the fields below stay for the payloads of
    cases started before that (their input still carries them)."""

    debtor_id: str
    phone: str | None = None  # cases started before the intake wrote the debtor's row
    timezone: str = "Asia/Shanghai"
    region: str = ""
    age: int = 0
    dialect: str | None = None
    monthly_disposable_income: str | None = None  # the same: read from the database now
    address: str | None = None  # the same
    simulation: dict[str, Any] = field(default_factory=dict)  # the same


@dataclass
class DefaultEvent:
    """An ``account.defaulted`` event as accepted by ingest."""

    event_id: str
    occurred_at: datetime
    account_id: str
    amount_due: str
    currency: str
    due_date: str
    contract_id: str
    debtor: Debtor
    grade: str | None = None
    asset_flight_risk: bool = False
    team_id: str | None = None
    # The event as received, canonicalised: empty now (the evidence fingerprint
    # reads it from ingested_events.payload); cases started before carry it.
    canonical_json: str = ""
    actor: str | None = None  # who sent it


@dataclass
class CaseEvent:
    """Any later event for an account, delivered to its case as a signal or
    through the ``apply_event`` Update."""

    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None  # who sent it (the envelope's actor; None before it was carried)


@dataclass
class LadderRecord:
    step: str
    at: datetime
    outcome: str


@dataclass
class Pause:
    """One active protection; ``until`` None = until released by an event."""

    kind: PauseKind  # disaster_grace | suspension | dispute | team_suspended (a str is accepted)
    ref: str  # what it belongs to: a region, a team, an event id
    since: datetime
    until: datetime | None = None
    reason: str | None = None


@dataclass
class Installment:
    due_on: str  # YYYY-MM-DD
    amount: str


@dataclass
class PlanState:
    """An accepted installment plan (grade I negotiation)."""

    periods: int
    installment: str
    accepted_at: datetime
    schedule: list[Installment]
    paid: str = "0"  # paid since acceptance, applied to installments in order
    status: str = "active"  # active | broken | completed


@dataclass
class LegalStep:
    step: str
    at: datetime
    detail: str


@dataclass
class LegalState:
    """The one legal track a debt takes (SPEC §2.4)."""

    track: str  # payment_order | asset_preservation
    reason: str
    status: str = "chosen"  # see workflows/legal.py for the states of each track
    application_ref: str | None = None
    applied_at: datetime | None = None
    deadline: datetime | None = None  # the running clock: decision due, objection window, suit filing
    steps: list[LegalStep] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)


@dataclass
class NoticeState:
    """Service of the legal notice (SPEC §7): electronic tries, one a contact
    day, then post; served, ``CaseState.letter_served_at`` holds the delivery."""

    tries: int = 0  # electronic tries that did not serve it
    retry_at: datetime | None = None  # the next electronic try
    status: str = "serving"  # serving | posted | unserved (could not be served at all)
    tracking_ref: str | None = None  # the post's
    posted_at: datetime | None = None
    unserved_since: datetime | None = None  # unserved: the response window counts from here


@dataclass
class CaseState:
    """Everything a case needs to resume, carried across continue-as-new."""

    stage: Stage = Stage.VERIFYING
    grade: Grade = Grade.II
    outstanding: str = "0"
    limitation_expires_on: str = ""
    closed_reason: ClosedReason | None = None
    closed_detail: str | None = None
    next_step: int = 0
    attempt_no: int = 0
    unanswered_in_a_row: int = 0
    last_response_at: datetime | None = None
    promised_date: str | None = None
    skip_traced: bool = False
    letter_served_at: datetime | None = None
    ladder: list[LadderRecord] = field(default_factory=list)
    seen_event_ids: list[str] = field(default_factory=list)
    revision: int = 0
    pauses: list[Pause] = field(default_factory=list)
    paused_since: datetime | None = None  # when the current run of pauses began
    paused_seconds: int = 0  # total time paused: the ladder's clock stands still meanwhile
    resumed_at: datetime | None = None  # when the last run of pauses ended
    plan: PlanState | None = None
    plan_offered: bool = False
    legal: LegalState | None = None
    payment_ids: list[str] = field(default_factory=list)  # recorded for this case (the database is the backstop)
    notice: NoticeState | None = None  # a legal notice not served at the first try
    # 30 % of the debtor's monthly disposable income (to the cent): the
    # installment a plan offers, computed by open_case from the database
    # (None: income unknown, or a case opened before; see negotiation.monthly_share)
    installment_share: str | None = None
    ladder_start: int = 0  # the ladder step the case started with (an amount band of its strategy)
    plan_max_periods: int = rules.MAX_PLAN_PERIODS  # the longest plan the case's strategy offers and accepts
    score: float | None = None  # the recovery score when the case opened (COLLECTIONS_SCORE_MODEL; None: none)


_RULES = rules.DEFAULT_RULES


@dataclass(frozen=True)
class CaseContactRules:
    """:class:`workflows.rules.ContactRules` as they cross a payload.

    Temporal's JSON converter has no ``datetime.time``, so the quiet hours
    travel as ISO strings (``"22:00:00"``); :meth:`to_rules` turns them back.
    """

    max_connected_calls_per_debtor_per_day: int = _RULES.max_connected_calls_per_debtor_per_day
    max_dial_attempts_per_number_per_day: int = _RULES.max_dial_attempts_per_number_per_day
    quiet_start: str = _RULES.quiet_start.isoformat()
    quiet_end: str = _RULES.quiet_end.isoformat()
    recording_retention_days: int = _RULES.recording_retention_days
    dialect_team_min_age: int = _RULES.dialect_team_min_age

    @classmethod
    def of(cls, r: rules.ContactRules) -> CaseContactRules:
        """Every field of ``r`` (a field this class lacks is a TypeError, never dropped)."""
        return cls(**{f.name: _to_wire(getattr(r, f.name)) for f in fields(r)})

    def to_rules(self) -> rules.ContactRules:
        return rules.ContactRules(**{f.name: _from_wire(f.name, getattr(self, f.name)) for f in fields(self)})


def _to_wire(value: Any) -> Any:
    return value.isoformat() if isinstance(value, time) else value


def _from_wire(name: str, value: Any) -> Any:
    return time.fromisoformat(value) if isinstance(getattr(_RULES, name), time) else value


@dataclass
class CaseInput:
    event: DefaultEvent
    state: CaseState | None = None
    pending_events: list[CaseEvent] = field(default_factory=list)
    # Continue-as-new once the history reaches this many events (tests lower it).
    history_limit: int = 2000
    installment_grace_days: int = 3  # COLLECTIONS_INSTALLMENT_GRACE_DAYS at ingest
    # The rules the case plans its contact times with (the settings' at intake);
    # None: rules.DEFAULT_RULES (cases started before the field existed).
    # A rules.ContactRules given here is stored in its payload form.
    contact_rules: CaseContactRules | None = None
    letter_attempts: int = rules.LETTER_ATTEMPTS  # COLLECTIONS_LETTER_ATTEMPTS at ingest
    # The strategy the case started with (COLLECTIONS_STRATEGY at ingest: its
    # ladder, plan terms and legal thresholds); None: the default strategy.
    strategy: CaseStrategy | None = None
    # Scored when it opens (COLLECTIONS_SCORE_MODEL set at intake): the
    # score_case activity computes the recovery score; False: no score.
    score: bool = False
    # The steps people do at the desk for this case (SPEC §8): ``human_call``,
    # ``skip_trace_review``, ``court_entry``; decided at intake from the
    # settings (Settings.desk_steps), so a case keeps what it started with.
    desk_steps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.contact_rules, rules.ContactRules):
            self.contact_rules = CaseContactRules.of(self.contact_rules)

    def planning_rules(self) -> rules.ContactRules:
        """The contact rules this case plans with."""
        return self.contact_rules.to_rules() if self.contact_rules else rules.DEFAULT_RULES


# ---- activity inputs and results ------------------------------------------------


@dataclass
class OpenCaseRequest:
    event: DefaultEvent
    grade: str
    limitation_expires_on: str
    income_share: str = "0.30"  # the strategy's share of monthly disposable income a plan asks
    strategy: str | None = None  # name@version of the case's strategy, for the cases table
    # The "case opened" record, written in the same activity when no protection
    # holds the case (patch open-in-one-v1); with one, the case records it itself.
    opened: CaseSnapshot | None = None


@dataclass
class OpenCaseResult:
    evidence_seq: int
    evidence_sha256: str
    protections: list[Pause] = field(default_factory=list)  # active region/team protections
    installment_share: str | None = None  # 30 % of the income on file (None: unknown, or an old worker)
    recorded: bool = False  # the request's ``opened`` record was written


@dataclass
class SuspensionRequest:
    months: int
    reason: str = ""


@dataclass
class CaseSnapshot:
    account_id: str
    revision: int
    stage: str
    grade: str
    outstanding: str
    limitation_expires_on: str
    paused_by: list[str]
    next_action: str | None
    next_action_at: datetime | None
    closed_reason: str | None = None
    note: str | None = None
    actor: str | None = None  # who sent the event that caused this step


@dataclass
class ContactRequest:
    account_id: str
    step: str
    attempt_no: int
    debtor: Debtor
    team_id: str | None
    amount: str
    currency: str
    contract_id: str
    try_no: int = 1  # the legal notice: the how-many-th electronic try
    # The case's contact rules (its strategy's, if stricter): the activity keeps
    # the stricter of these and the worker's (None: a case from before, the worker's).
    contact_rules: CaseContactRules | None = None


@dataclass
class ContactResult:
    outcome: str  # answered | no_answer | delivered | capped | quiet_hours | blocked_compliance
    attempted_at: datetime | None = None
    connected: bool = False
    promised_date: str | None = None
    paid_amount: str | None = None
    payment_id: str | None = None
    retry_at: datetime | None = None
    team_id: str | None = None
    detail: str | None = None


@dataclass
class PaymentRecord:
    account_id: str
    payment_id: str
    amount: str
    currency: str
    received_at: datetime
    source: str  # event | call | late
    outstanding_after: str
    request_key: str | None = None  # the event id or call attempt that brings it (tells a retry from a reuse)


@dataclass
class PaymentResult:
    recorded: bool  # False: this payment id was recorded for the account before, by another request


@dataclass
class EventEffectRecord:
    """What an event for one account did, for its ``ingested_events`` row."""

    event_id: str
    status: str  # applied | no_effect | refused
    detail: str
    account_id: str | None = None


@dataclass
class PostRequest:
    """The legal notice by post (after the electronic tries)."""

    account_id: str
    debtor: Debtor  # the address is read from the database
    amount: str
    currency: str
    contract_id: str


@dataclass
class PostResult:
    posted: bool  # False: no postal address on file
    posted_at: datetime
    tracking_ref: str | None = None
    delivered_at: datetime | None = None  # None: not deliverable (returned, no address)
    detail: str | None = None


@dataclass
class SkipTraceRequest:
    account_id: str
    debtor: Debtor


@dataclass
class SkipTraceResult:
    found: bool  # a number found goes into the debtors table, never into the case
    phone: str | None = None  # only in histories from before that
    source: str | None = None


@dataclass
class DebtorOnFileRequest:
    account_id: str
    debtor_id: str


@dataclass
class DebtorOnFile:
    """What a case may know about the contact details on file: whether they exist."""

    has_address: bool


@dataclass
class EvidenceRequest:
    account_id: str
    kind: str
    key: str
    payload: str


@dataclass
class PlanRequest:
    periods: int


@dataclass
class PlanRecord:
    account_id: str
    accepted_at: datetime
    periods: int
    installment: str
    currency: str
    schedule: list[Installment]
    status: str
    paid: str


@dataclass
class LegalActionRequest:
    account_id: str
    track: str
    reason: str


@dataclass
class LegalActionResult:
    track: str
    reason: str
    status: str


@dataclass
class LegalFilingRequest:
    """One filing with the court (or the bond behind it)."""

    account_id: str
    track: str
    kind: str  # bond | payment_order | preservation | suit | enforcement
    amount: str
    currency: str
    contract_id: str
    debtor: Debtor
    status_after: str


@dataclass
class LegalFilingResult:
    ref: str
    filed_at: datetime


@dataclass
class CourtQuery:
    account_id: str
    kind: str  # payment_order | preservation
    ref: str
    filed_at: datetime
    debtor: Debtor


@dataclass
class CourtDocket:
    """What the court's docket shows now (None = not happened yet)."""

    accepted_at: datetime | None = None
    rejected_at: datetime | None = None
    order_served_at: datetime | None = None
    objected_at: datetime | None = None
    granted_at: datetime | None = None
    denied_at: datetime | None = None


@dataclass
class LegalStepRecord:
    account_id: str
    track: str
    step: str
    detail: str
    at: datetime
    status: str
    escalation: bool = False
