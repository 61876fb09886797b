"""What starts a case from its ``account.defaulted`` event: the default event
as the case receives it (no personal data), the search attributes it opens
with, and the plain JSON form of its input's parts (intake/ingest.py builds
a new case's start payload from them)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import timezone
from typing import Any

from intake.events import AccountDefaulted
from workflows import rules
from workflows.model import Debtor, DefaultEvent
from workflows.search import initial_search_attributes
from workflows.status import Stage


def to_default_event(ev: AccountDefaulted, raw_line: str | None = None) -> DefaultEvent:
    """The default event as its case receives it: no personal data (SPEC §8).
    The debtor travels as the pseudonymous id and what the case's rules need
    (time zone, region, age, dialect); the phone, address, income and
    simulation profile go to the ``debtors`` table (``Debtor.values_of``, db/models.py), the
    raw line to ``ingested_events.payload`` (the evidence fingerprint reads
    it there).  ``raw_line`` is not used any more."""
    d = ev.debtor
    return DefaultEvent(
        event_id=ev.event_id, occurred_at=ev.occurred_at.astimezone(timezone.utc), account_id=ev.account_id,
        amount_due=ev.amount_due, currency=ev.currency, due_date=ev.due_date.isoformat(),
        contract_id=ev.contract_id, grade=ev.grade, asset_flight_risk=ev.asset_flight_risk, team_id=ev.team_id,
        debtor=Debtor(debtor_id=d.debtor_id, timezone=d.timezone, region=d.region, age=d.age, dialect=d.dialect),
        actor=ev.actor,
    )


def plain(value: Any) -> Any:
    """What the JSON payload converter encodes for ``value``: ``dataclasses.asdict``
    without its deep copies (a value only encoded needs none), the same JSON."""
    if is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def opening_attributes(ev: AccountDefaulted, strategy: str):
    """The search attributes a case starts with (supervisors find it at once in the Web UI)."""
    d = ev.debtor
    return initial_search_attributes({
        "CaseStage": Stage.VERIFYING, "DebtorGrade": rules.initial_grade(ev.grade, ev.asset_flight_risk),
        "Region": d.region, "PausedBy": [], "OutstandingAmount": ev.amount_due,
        "DebtorId": d.debtor_id, "Strategy": strategy,
    })
