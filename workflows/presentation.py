"""How a case shows itself: the ``status`` query, the search attributes and
the Web UI's current details, as pure functions of the case's state.

The case keeps a :class:`Showing` beside its state: what it waits for next
and when, and whether quiet hours hold it.  That is not carried across
continue-as-new; each run sets it again as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from workflows import negotiation, protections, rules
from workflows.model import CaseState, DefaultEvent
from workflows.status import (
    CaseStatus,
    LadderEntry,
    LegalStatus,
    LegalStepStatus,
    PlanOffer,
    PlanStatus,
    ProtectionStatus,
    ScheduledInstallment,
)

# What ``next_action`` means, for people reading the UI's current details.
NEXT_ACTION_LABELS = {
    **{step.name: step.label for step in rules.LADDER},
    "legal_branch": "end of the legal notice's 15-day response window",
    "resume": "the protection to end",
    "skip_trace": "skip trace (data lookup)",
    "legal_filing": "legal filing",
    "court_acceptance": "court's decision on the payment order application (5 days)",
    "payment_order_issued": "court to issue and serve the payment order (15 days)",
    "objection_window_ends": "debtor to pay or object to the payment order (15 days)",
    "preservation_ruling": "court's ruling on asset preservation (24 h SLA)",
    "file_suit": "suit to be filed before the preservation lapses (30 days)",
}


@dataclass
class Showing:
    """What the case shows it waits for; ``quiet_hours`` while a contact waits for 08:00."""

    next_action: str | None = None
    next_action_at: datetime | None = None
    quiet_hours: bool = False


def local_stamp(at: datetime, tz: str) -> str:
    """``at`` in the debtor's wall-clock time, e.g. ``2027-03-01 10:00 Asia/Shanghai``."""
    return f"{rules.local_datetime(at, tz):%Y-%m-%d %H:%M} {tz}"


def case_status(ev: DefaultEvent, s: CaseState, showing: Showing, case_id: str) -> CaseStatus:
    """The ``status`` query's answer (SPEC §6)."""
    offer = negotiation.plan_offer(s, ev.debtor)
    return CaseStatus(
        account_id=ev.account_id, case_id=case_id, debtor_id=ev.debtor.debtor_id,
        stage=s.stage, grade=s.grade, currency=ev.currency, amount_due=ev.amount_due,
        outstanding=s.outstanding, paused_by=protections.paused_by(s, showing.quiet_hours),
        protections=[ProtectionStatus(p.kind, p.ref, p.since, p.until, p.reason) for p in s.pauses],
        next_action=showing.next_action, next_action_at=showing.next_action_at,
        closed_reason=s.closed_reason, closed_detail=s.closed_detail,
        limitation_expires_on=s.limitation_expires_on, promised_date=s.promised_date, timezone=ev.debtor.timezone,
        ladder=[LadderEntry(r.step, r.at, r.outcome) for r in s.ladder],
        plan_offer=PlanOffer(str(offer[0]), offer[1]) if offer else None,
        plan=plan_status(s),
        legal=legal_status(s),
        score=s.score,
    )


def plan_status(s: CaseState) -> PlanStatus | None:
    """The accepted plan, each installment marked paid once payments cover it."""
    plan = s.plan
    if plan is None:
        return None
    unpaid = rules.next_unpaid_installment(negotiation.plan_schedule(plan), Decimal(plan.paid))
    schedule = [ScheduledInstallment(i.due_on, i.amount, unpaid is None or n < unpaid)
                for n, i in enumerate(plan.schedule)]
    return PlanStatus(plan.periods, plan.installment, plan.accepted_at, plan.status, plan.paid, schedule)


def legal_status(s: CaseState) -> LegalStatus | None:
    legal = s.legal
    if legal is None:
        return None
    return LegalStatus(
        track=legal.track, reason=legal.reason, status=legal.status, application_ref=legal.application_ref,
        applied_at=legal.applied_at, deadline=legal.deadline,
        steps=[LegalStepStatus(st.step, st.at, st.detail) for st in legal.steps],
        escalations=list(legal.escalations),
    )


def search_attributes(ev: DefaultEvent, s: CaseState, showing: Showing) -> dict[str, Any]:
    """The case's search attributes (SPEC §6; pseudonymous: never a name or phone)."""
    return {
        "CaseStage": s.stage, "DebtorGrade": s.grade, "Region": ev.debtor.region,
        "PausedBy": protections.paused_by(s, showing.quiet_hours), "OutstandingAmount": s.outstanding,
        "DebtorId": ev.debtor.debtor_id,
        **({"RecoveryScore": s.score} if s.score is not None else {}),
    }


def next_action_label(ev: DefaultEvent, s: CaseState, action: str) -> str:
    """``next_action`` in words; an installment names its amount and due date."""
    if action.startswith("installment_") and s.plan is not None:
        n = int(action.rsplit("_", 1)[1])
        due = s.plan.schedule[n - 1]
        return (f"installment {n}/{s.plan.periods} ({due.amount} {ev.currency}, due {due.due_on});"
                " missed if unpaid")
    return NEXT_ACTION_LABELS.get(action, action.replace("_", " "))


def current_details(ev: DefaultEvent, s: CaseState, showing: Showing) -> str:
    """The Web UI's current details (Markdown): stage, what the case waits
    for and when (debtor-local), what holds it, its plan and legal track."""
    lines = [
        f"**Stage:** {s.stage}  ",
        f"**Grade:** {s.grade}  ",
        f"**Outstanding:** {s.outstanding} {ev.currency}  ",
    ]
    if s.closed_reason:
        lines.append(f"**Closed:** {s.closed_reason} ({s.closed_detail})")
    elif showing.next_action:
        when = f" at {local_stamp(showing.next_action_at, ev.debtor.timezone)}" if showing.next_action_at else ""
        lines.append(f"**Waiting for:** {next_action_label(ev, s, showing.next_action)}{when}  ")
    if showing.quiet_hours:
        lines.append("**Paused by:** quiet hours  ")
    for p in s.pauses:
        until = f"until {p.until:%Y-%m-%d %H:%M} UTC" if p.until else "until released"
        lines.append(f"**Paused by:** {p.kind} ({p.ref}) {until}  ")
    plan = s.plan
    if plan is not None:
        lines.append(f"**Installment plan:** {plan.status}, {plan.periods} x {plan.installment} "
                     f"{ev.currency}, paid {plan.paid}  ")
    legal = s.legal
    if legal is not None:
        lines.append(f"**Legal track:** {legal.track} ({legal.status}): {legal.reason}  ")
        lines.extend(f"**Escalated:** {e}  " for e in legal.escalations)
    lines.append(f"**Limitation expires:** {s.limitation_expires_on}")
    return "\n".join(lines)
