"""``show ACCOUNT``: the page a person reads about one case.

From the case's typed ``status`` query (:class:`workflows.status.CaseStatus`)
and, from the database, its contact attempts, payments and the notes of its
history with who made each happen (the operator, or the upstream system that
sent the event). Times are the debtor's local time with the year and the
zone, and how far they are from now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy import select

from cli import render
from cli.render import local, relative
from db.models import CaseHistory, ContactAttempt, Payment
from db.session import Database
from workflows.status import CaseStatus, LegalStatus, PlanOffer, PlanStatus


@dataclass
class Contact:
    attempted_at: datetime
    local_date: date
    local_time: str
    timezone: str
    step: str
    attempt: int
    channel: str
    outcome: str
    team_id: str | None
    promised_date: date | None
    paid_amount: Decimal | None


@dataclass
class PaymentRow:
    payment_id: str
    amount: Decimal
    currency: str
    received_at: datetime
    source: str


@dataclass
class Note:
    """A step of the case's history that says what happened, and who made it happen."""

    at: datetime
    actor: str | None  # None: the case itself (a timer, a call outcome)
    note: str


@dataclass
class History:
    contacts: list[Contact] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


async def load_history(db: Database, account_id: str) -> History:
    """Contact attempts, payments and the case history's notes, from the database."""
    async with db.sessions() as s:
        attempts = (await s.scalars(
            select(ContactAttempt).where(ContactAttempt.account_id == account_id)
            .order_by(ContactAttempt.attempted_at, ContactAttempt.id))).all()
        payments = (await s.scalars(
            select(Payment).where(Payment.account_id == account_id).order_by(Payment.received_at))).all()
        steps = (await s.scalars(
            select(CaseHistory).where(CaseHistory.account_id == account_id, CaseHistory.note.is_not(None))
            .order_by(CaseHistory.revision))).all()
    return History(
        [Contact(a.attempted_at, a.local_date, a.local_time, a.timezone, a.step, a.attempt_no, a.channel, a.outcome,
                 a.team_id, a.promised_date, a.paid_amount) for a in attempts],
        [PaymentRow(p.payment_id, p.amount, p.currency, p.received_at, p.source) for p in payments],
        [Note(h.recorded_at, h.actor, h.note or "") for h in steps])


def _fields(rows: list[tuple[str, str]]) -> RenderableType:
    """Label / value rows, indented, labels 12 wide: ``  stage        closed · grade I``."""
    grid = Table.grid(Column(min_width=12, no_wrap=True), Column(), padding=(0, 1))
    for label, value in rows:
        grid.add_row(label, Text(value))
    return Padding(grid, (0, 0, 0, 2))


def _lines(rows: list[list[str]], *, right: tuple[int, ...] = ()) -> RenderableType:
    """Rows of a section, aligned in columns, indented."""
    grid = Table.grid(padding=(0, 2))
    for i in range(max((len(r) for r in rows), default=0)):
        grid.add_column(justify="right" if i in right else "left")
    for r in rows:
        grid.add_row(*(Text(str(v)) for v in r))
    return Padding(grid, (0, 0, 0, 2))


def _summary(st: CaseStatus, now: datetime) -> list[tuple[str, str]]:
    tz, cur = st.timezone, st.currency
    rows = [("stage", f"{st.stage} · grade {st.grade}"),
            ("balance", f"{st.outstanding} {cur} outstanding" + (f" of {st.amount_due} {cur} due" if st.amount_due
                                                                  else ""))]
    if st.closed_reason:
        rows.append(("closed", f"{st.closed_reason}" + (f" — {st.closed_detail}" if st.closed_detail else "")))
    held = [f"{p.kind}" + (f" ({p.ref})" if p.ref else "") + f" since {local(p.since, tz)}, "
            + (f"until {local(p.until, tz)}" if p.until else "until released") + (f": {p.reason}" if p.reason else "")
            for p in st.protections]
    held += [str(kind) for kind in st.paused_by if kind not in {p.kind for p in st.protections}]
    rows += [("paused by" if i == 0 else "", text) for i, text in enumerate(held)]
    if st.next_action:
        at = st.next_action_at
        rows.append(("waits for", st.next_action + (f" at {local(at, tz)} ({relative(at, now)})" if at else "")))
    elif not st.closed_reason:
        rows.append(("waits for", "an event (nothing scheduled)"))
    if st.promised_date:
        rows.append(("promised", f"to pay by {st.promised_date}"))
    if st.limitation_expires_on:
        rows.append(("limitation", f"expires {st.limitation_expires_on}"))
    return rows


def _plan(plan: PlanStatus | None, offer: PlanOffer | None, cur: str, tz: str) -> list[RenderableType]:
    if plan:
        head = Text(f"Installment plan ({plan.status}): {plan.periods} × {plan.installment} {cur}, "
                    f"accepted {local(plan.accepted_at, tz)}", style="bold")
        rows = [[f"due {i.due_on}", f"{i.amount} {cur}", "paid" if i.paid else "open"] for i in plan.schedule]
        return [Text(""), head, _lines(rows, right=(1,))]
    if offer:
        return [Text(""), Text(f"Plan offered (not accepted): {offer.periods} × {offer.installment} {cur}",
                               style="bold")]
    return []


def _legal(legal: LegalStatus | None, tz: str, now: datetime) -> list[RenderableType]:
    if not legal:
        return []
    out: list[RenderableType] = [Text(""), Text(f"Legal track: {legal.track}"
                                                + (f" — {legal.reason}" if legal.reason else ""), style="bold")]
    rows = [("status", legal.status)] if legal.status else []
    if legal.deadline:
        rows.append(("deadline", f"{local(legal.deadline, tz)} ({relative(legal.deadline, now)})"))
    if rows:
        out.append(_fields(rows))
    if legal.steps:
        out.append(_lines([[local(s.at, tz), s.step, s.detail or ""] for s in legal.steps]))
    if legal.escalations:
        out.append(_fields([("escalations", "; ".join(legal.escalations))]))
    return out


def _note(c: Contact) -> str:
    notes = [f"team {c.team_id}" if c.team_id else "", f"promised {c.promised_date}" if c.promised_date else "",
             f"paid {c.paid_amount}" if c.paid_amount is not None else ""]
    return ", ".join(n for n in notes if n)


def _history(st: CaseStatus, history: History | None) -> list[RenderableType]:
    tz = st.timezone
    contacts, payments = (history.contacts, history.payments) if history else (None, None)
    out: list[RenderableType] = [Text("")]
    if contacts:
        out.append(Text("Contact history (database)", style="bold"))
        out.append(_lines([[f"{c.local_date} {c.local_time[:5]} {c.timezone}", c.step, c.channel, c.outcome,
                            _note(c)] for c in contacts]))
    elif st.ladder:
        out.append(Text("Contact history (from the case)", style="bold"))
        out.append(_lines([[local(r.at, tz), r.step, r.outcome] for r in st.ladder]))
    else:
        out.append(Text("Contact history: no contact yet", style="bold"))
    if payments:
        out.append(Text("Payments", style="bold"))
        out.append(_lines([[local(p.received_at, tz), f"{p.amount} {p.currency or st.currency}",
                            f"{p.payment_id} ({p.source})"] for p in payments], right=(1,)))
    if history and history.notes:
        out.append(Text("Who did what", style="bold"))
        out.append(_lines([[local(n.at, tz), n.actor or "(the case)", n.note] for n in history.notes]))
    return out


def render_case(st: CaseStatus, history: History | None = None, now: datetime | None = None) -> Group:
    """A case summary for people."""
    now = now or datetime.now(timezone.utc)
    head = Text(f"Case {st.account_id}  (workflow {st.case_id}, debtor {st.debtor_id}; times in {st.timezone})",
                style="bold")
    return Group(head, _fields(_summary(st, now)), *_plan(st.plan, st.plan_offer, st.currency, st.timezone),
                 *_legal(st.legal, st.timezone, now), *_history(st, history))


def print_case(st: CaseStatus, history: History | None) -> None:
    render.wide(render_case(st, history))
