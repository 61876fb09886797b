"""Dataclasses that cross Temporal payloads (workflow inputs, activity I/O).

Money travels as decimal strings, instants as aware UTC datetimes, dates as
ISO strings; nothing here is a float.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WORKFLOW_TYPE = "DelinquentAccountWorkflow"
DEFAULT_TASK_QUEUE = "collections"


def case_workflow_id(account_id: str) -> str:
    return f"case-{account_id}"


@dataclass
class Debtor:
    debtor_id: str
    phone: str
    timezone: str = "Asia/Shanghai"
    region: str = ""
    age: int = 0
    dialect: str | None = None
    monthly_disposable_income: str | None = None
    address: str | None = None
    simulation: dict[str, Any] = field(default_factory=dict)


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
    canonical_json: str = ""  # the event as received, canonicalised, for the evidence fingerprint


@dataclass
class CaseEvent:
    """Any later event for an account, delivered to its case as a signal."""

    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LadderRecord:
    step: str
    at: datetime
    outcome: str


@dataclass
class Pause:
    """One active protection; ``until`` None = until released by an event."""

    kind: str  # disaster_grace | suspension | dispute | team_suspended
    ref: str  # what it belongs to: a region, a team, an event id
    since: datetime
    until: datetime | None = None
    reason: str | None = None


@dataclass
class CaseState:
    """Everything a case needs to resume, carried across continue-as-new."""

    stage: str = "verifying"
    grade: str = "II"
    outstanding: str = "0"
    limitation_expires_on: str = ""
    closed_reason: str | None = None
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


@dataclass
class CaseInput:
    event: DefaultEvent
    state: CaseState | None = None
    pending_events: list[CaseEvent] = field(default_factory=list)
    # Continue-as-new once the history reaches this many events (tests lower it).
    history_limit: int = 2000


# ---- activity inputs and results ------------------------------------------------


@dataclass
class OpenCaseRequest:
    event: DefaultEvent
    grade: str
    limitation_expires_on: str


@dataclass
class OpenCaseResult:
    evidence_seq: int
    evidence_sha256: str
    protections: list[Pause] = field(default_factory=list)  # active region/team protections


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
    source: str  # event | call
    outstanding_after: str


@dataclass
class SkipTraceRequest:
    account_id: str
    debtor: Debtor


@dataclass
class SkipTraceResult:
    found: bool
    phone: str | None = None
    source: str | None = None


@dataclass
class EvidenceRequest:
    account_id: str
    kind: str
    key: str
    payload: str
