"""The supervisor page's figures, from the database (the record of every
case): open cases by stage and by protection, today's contacts against the
caps, overdue and expired tasks, complaints per team with the circuit
breaker's state, and the amount recovered with the recovery rate.

A few aggregate queries, each answered from an index or one pass over the
open cases (``bench/desk_pages.py`` measures the page with 10,000 open cases
and 1,000 open tasks). "Today" is each debtor's own calendar day, as the caps
count it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import String, and_, case, cast, func, select

from db.models import Case, CaseHistory, Complaint, ContactAttempt, Payment, TeamSuspension, WorkItem
from db.session import Database
from workflows import rules
from workflows.status import PauseKind

CALL_CHANNELS = ("voice", "human")
LISTED = 20  # overdue and expired tasks listed by name


@dataclass(frozen=True)
class TaskLine:
    id: int
    kind: str
    team_id: str | None
    account_id: str | None
    status: str
    due: datetime | None  # window end (overdue) or when it expired
    claimed_by: str | None
    closed: str | None = None  # an ended task: expired (window closed) or withdrawn (the case re-planned)


@dataclass(frozen=True)
class TeamLine:
    team_id: str
    complaints_today: int
    complaints_total: int
    suspended_since: datetime | None  # the circuit breaker is open (contacts paused) since


@dataclass(frozen=True)
class Recovery:
    currency: str
    recovered: Decimal
    due: Decimal

    @property
    def rate(self) -> Decimal:
        return (self.recovered / self.due * 100).quantize(Decimal("0.1")) if self.due > 0 else Decimal("0.0")


@dataclass
class Contacts:
    """Calls placed today (each debtor's local day) against the caps."""

    connected_cap: int
    dial_cap: int
    connected: int = 0
    dials: int = 0
    debtors: Counter = field(default_factory=Counter)  # connected calls today -> debtors with that many
    numbers_at_cap: int = 0


@dataclass
class Figures:
    at: datetime
    open_cases: int = 0
    by_stage: list[tuple[str, int]] = field(default_factory=list)
    by_protection: list[tuple[str, int]] = field(default_factory=list)
    contacts: Contacts | None = None
    open_tasks: list[tuple[str, int, int]] = field(default_factory=list)  # kind, open, claimed
    overdue_count: int = 0
    overdue: list[TaskLine] = field(default_factory=list)
    expired_count: int = 0  # in the last 24 hours
    expired: list[TaskLine] = field(default_factory=list)
    teams: list[TeamLine] = field(default_factory=list)
    complaint_threshold: int = rules.COMPLAINT_THRESHOLD
    recovery: list[Recovery] = field(default_factory=list)


def _open():
    return Case.closed_reason.is_(None)


async def _cases(s, f: Figures) -> None:
    stages = (await s.execute(select(Case.stage, func.count()).where(_open()).group_by(Case.stage))).all()
    f.by_stage = sorted(((st, n) for st, n in stages), key=lambda r: (-r[1], r[0]))
    f.open_cases = sum(n for _, n in stages)
    # The protections in force are on each open case's latest history row:
    # counted in the database (one row back), by the kind's quoted name in
    # the stored JSON list, so no list is read into Python.
    held = cast(CaseHistory.paused_by, String)
    counts = (await s.execute(
        select(func.count(), *(func.sum(case((held.like(f'%"{kind.value}"%'), 1), else_=0)) for kind in PauseKind))
        .select_from(Case).join(CaseHistory, and_(CaseHistory.account_id == Case.account_id,
                                                  CaseHistory.revision == Case.revision))
        .where(_open(), held != "[]"))).one()
    paused, per_kind = counts[0], counts[1:]
    f.by_protection = sorted(((kind.value, int(n or 0)) for kind, n in zip(PauseKind, per_kind) if n),
                             key=lambda r: (-r[1], r[0])) + [("none (not paused)", f.open_cases - int(paused or 0))]


async def _contacts(s, f: Figures, connected_cap: int, dial_cap: int) -> None:
    """Calls of the local days that can be 'today' somewhere (UTC date ± 1), kept where they are today."""
    utc_day = f.at.date()
    window = (ContactAttempt.local_date >= utc_day - timedelta(days=1),
              ContactAttempt.local_date <= utc_day + timedelta(days=1), ContactAttempt.channel.in_(CALL_CHANNELS))
    today: dict[str, date] = {}

    def is_today(tz: str, day: date) -> bool:
        if tz not in today:
            today[tz] = rules.local_date(f.at, tz)
        return today[tz] == day

    c = Contacts(connected_cap, dial_cap)
    # Counted per debtor (and per number) in the database, then the debtors
    # counted per (zone, day, calls): a few rows back, whatever the volume.
    connected = func.sum(case((ContactAttempt.connected.is_(True), 1), else_=0)).label("connected")
    per_debtor = (select(ContactAttempt.timezone, ContactAttempt.local_date, connected, func.count().label("dials"))
                  .where(*window)
                  .group_by(ContactAttempt.debtor_id, ContactAttempt.timezone, ContactAttempt.local_date).subquery())
    rows = await s.execute(
        select(per_debtor.c.timezone, per_debtor.c.local_date, per_debtor.c.connected, func.count(),
               func.sum(per_debtor.c.dials))
        .group_by(per_debtor.c.timezone, per_debtor.c.local_date, per_debtor.c.connected))
    for tz, day, calls, debtors, dials in rows:
        if is_today(tz, day):
            c.connected += int(calls or 0) * debtors
            c.dials += int(dials or 0)
            c.debtors[min(int(calls or 0), connected_cap)] += debtors
    per_number = (select(ContactAttempt.timezone, ContactAttempt.local_date)
                  .where(*window, ContactAttempt.outcome != "blocked_compliance", ContactAttempt.phone_hash.is_not(None))
                  .group_by(ContactAttempt.phone_hash, ContactAttempt.timezone, ContactAttempt.local_date)
                  .having(func.count() >= dial_cap).subquery())
    at_cap = await s.execute(select(per_number.c.timezone, per_number.c.local_date, func.count())
                             .group_by(per_number.c.timezone, per_number.c.local_date))
    c.numbers_at_cap = sum(n for tz, day, n in at_cap if is_today(tz, day))
    f.contacts = c


def _line(w: WorkItem, due: datetime | None) -> TaskLine:
    return TaskLine(w.id, w.kind, w.team_id, w.account_id, w.status, due, w.claimed_by,
                    (w.detail or {}).get("closed") if w.status == "expired" else None)


async def _tasks(s, f: Figures) -> None:
    waiting = WorkItem.status.in_(("open", "claimed"))
    rows = (await s.execute(select(WorkItem.kind, WorkItem.status, func.count()).where(waiting)
                            .group_by(WorkItem.kind, WorkItem.status))).all()
    by_kind: dict[str, list[int]] = {}
    for kind, status, n in rows:
        by_kind.setdefault(kind, [0, 0])[0 if status == "open" else 1] += n
    f.open_tasks = sorted((k, o, c) for k, (o, c) in by_kind.items())
    late = and_(waiting, WorkItem.window_end < f.at)
    f.overdue_count = await s.scalar(select(func.count()).select_from(WorkItem).where(late)) or 0
    f.overdue = [_line(w, w.window_end) for w in (await s.scalars(
        select(WorkItem).where(late).order_by(WorkItem.window_end, WorkItem.id).limit(LISTED))).all()]
    recent = and_(WorkItem.status == "expired", WorkItem.updated_at >= f.at - timedelta(days=1))
    f.expired_count = await s.scalar(select(func.count()).select_from(WorkItem).where(recent)) or 0
    f.expired = [_line(w, w.updated_at) for w in (await s.scalars(
        select(WorkItem).where(recent).order_by(WorkItem.updated_at.desc(), WorkItem.id).limit(LISTED))).all()]


async def _teams(s, f: Figures) -> None:
    today = f.at.date()
    rows = (await s.execute(
        select(Complaint.team_id, func.sum(case((Complaint.day == today, 1), else_=0)), func.count())
        .group_by(Complaint.team_id))).all()
    suspended = dict((await s.execute(
        select(TeamSuspension.team_id, func.min(TeamSuspension.suspended_at))
        .where(TeamSuspension.cleared_at.is_(None)).group_by(TeamSuspension.team_id))).all())
    counts = {team: (int(t or 0), int(total)) for team, t, total in rows}
    f.teams = sorted((TeamLine(team, *counts.get(team, (0, 0)), suspended.get(team))
                      for team in set(counts) | set(suspended)),
                     key=lambda t: (t.suspended_since is None, -t.complaints_today, t.team_id))


async def _recovery(s, f: Figures) -> None:
    paid = dict((await s.execute(select(Payment.currency, func.sum(Payment.amount)).group_by(Payment.currency)))
                .all())
    due = dict((await s.execute(select(Case.currency, func.sum(Case.amount_due)).group_by(Case.currency))).all())
    f.recovery = [Recovery(cur, Decimal(paid.get(cur) or 0), Decimal(due.get(cur) or 0))
                  for cur in sorted(set(paid) | set(due))]


async def figures(db: Database, at: datetime, *, contact_rules: rules.ContactRules = rules.DEFAULT_RULES,
                  complaint_threshold: int = rules.COMPLAINT_THRESHOLD) -> Figures:
    """Every figure of the supervisor page, as of ``at`` (aware UTC)."""
    f = Figures(at=at, complaint_threshold=complaint_threshold)
    async with db.sessions() as s:
        await _cases(s, f)
        await _contacts(s, f, contact_rules.max_connected_calls_per_debtor_per_day,
                        contact_rules.max_dial_attempts_per_number_per_day)
        await _tasks(s, f)
        await _teams(s, f)
        await _recovery(s, f)
    return f

