"""A lab run's report, read from its database (the auditable record).

Per strategy cohort: recovery rate by count (accounts closed ``paid``) and
by amount (payments, at most the amount due, over the amounts due), amount
recovered, days to resolution (closed cases, any reason: median and p90),
closures by reason, legal tracks and their outcomes, contacts per debtor,
complaints, plan uptake and break rate, and recovery by day for the plots.
The run adds the simulated debtor-days per second and the compliance
audit's result.  :func:`outcomes` is what ``lab train`` learns from.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from activities.score_activities import features
from db.models import Case, CaseHistory, Complaint, ContactAttempt, Debtor, InstallmentPlan, LegalAction, Payment
from db.session import Database

if TYPE_CHECKING:
    from lab.run import Cohort, LabRequest

FUNNEL = ("wake_up_ladder", "promise_to_pay", "skip_tracing", "installment", "awaiting_response", "payment_order",
          "asset_preservation", "closed")
RECOVERY_WINDOW_DAYS = 90  # the score predicts recovery within this many days


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=10, method="inclusive")[-1], 1)


async def _rows(db: Database, accounts: list[str]) -> dict[str, Any]:
    async with db.sessions() as s:
        def where(model):
            return select(model).where(model.account_id.in_(accounts))
        return {
            "cases": (await s.scalars(where(Case))).all(),
            "payments": (await s.scalars(where(Payment))).all(),
            "legal": (await s.scalars(where(LegalAction))).all(),
            "plans": (await s.scalars(where(InstallmentPlan))).all(),
            "complaints": await s.scalar(select(func.count()).select_from(Complaint)
                                         .where(Complaint.account_id.in_(accounts))),
            "contacts": (await s.execute(select(ContactAttempt.debtor_id, func.count())
                                         .where(ContactAttempt.account_id.in_(accounts),
                                                ContactAttempt.outcome != "dialing")
                                         .group_by(ContactAttempt.debtor_id))).all(),
            "stages": (await s.execute(select(CaseHistory.stage, func.count(func.distinct(CaseHistory.account_id)))
                                       .where(CaseHistory.account_id.in_(accounts))
                                       .group_by(CaseHistory.stage))).all(),
        }


def _recovered(cases, payments) -> dict[str, Decimal]:
    """Per account: what was paid, at most what was due."""
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        paid[p.account_id] += p.amount
    return {c.account_id: min(paid.get(c.account_id, Decimal(0)), c.amount_due) for c in cases}


def _by_day(cases, payments, started: datetime, days: int) -> list[float]:
    """Share of the amount due recovered by the end of each day (0 .. days), each account's at most its due."""
    due = {c.account_id: c.amount_due for c in cases}
    total = sum(due.values(), Decimal(0)) or Decimal(1)
    per_day = [Decimal(0)] * (days + 1)
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for p in sorted(payments, key=lambda p: p.received_at):
        day = min(max(int(_days(p.received_at, started)), 0), days)
        counted = max(min(p.amount, due.get(p.account_id, Decimal(0)) - paid[p.account_id]), Decimal(0))
        paid[p.account_id] += counted  # at most what was due, as the recovery rate counts it
        per_day[day] += counted
    out, running = [], Decimal(0)
    for amount in per_day:
        running += amount
        out.append(round(float(min(running, total) / total), 4))
    return out


def cohort_figures(rows: dict[str, Any], started: datetime, days: int, debtors: int) -> dict[str, Any]:
    cases, payments = rows["cases"], rows["payments"]
    recovered = _recovered(cases, payments)
    due = sum((c.amount_due for c in cases), Decimal(0))
    closed = [c for c in cases if c.closed_at is not None]
    resolution = sorted(_days(c.closed_at, c.opened_at) for c in closed)
    plans_by_account = {p.account_id: p for p in sorted(rows["plans"], key=lambda p: p.accepted_at)}
    plans = list(plans_by_account.values())
    contacts = sum(n for _, n in rows["contacts"])
    tracks: dict[str, Counter] = defaultdict(Counter)
    for action in rows["legal"]:
        tracks[action.track][action.status] += 1
    stages = dict(rows["stages"])
    return {
        "accounts": len(cases), "debtors": debtors,
        "recovery_rate_by_count": round(sum(c.closed_reason == "paid" for c in cases) / len(cases), 4) if cases else 0,
        "recovery_rate_by_amount": round(float(sum(recovered.values(), Decimal(0)) / due), 4) if due else 0,
        "amount_due": _money(due), "amount_recovered": _money(sum(recovered.values(), Decimal(0))),
        "days_to_resolution": {"closed": len(closed),
                               "median": round(statistics.median(resolution), 1) if resolution else None,
                               "p90": _p90(resolution)},
        "closures_by_reason": dict(sorted(Counter(c.closed_reason or "open" for c in cases).items())),
        "legal_tracks": {track: dict(sorted(outcomes.items())) for track, outcomes in sorted(tracks.items())},
        "contacts_per_debtor": round(contacts / debtors, 2) if debtors else 0,
        "contacts": contacts,
        "complaints": rows["complaints"] or 0,
        "plan_uptake": round(len(plans) / len(cases), 4) if cases else 0,
        "plan_break_rate": round(sum(p.status == "broken" for p in plans) / len(plans), 4) if plans else 0,
        "stage_funnel": {stage: stages.get(stage, 0) for stage in FUNNEL},
        "recovery_by_day": _by_day(cases, payments, started, days),
    }


async def audit(url: str) -> dict[str, Any]:
    """The compliance audit (:mod:`lab.audit`) of the run's whole contact log against SPEC §3's rules."""
    from lab.audit import audit_database

    result = await audit_database(url)
    return {"attempts": result.attempts, "violations": len(result.violations), "clean": result.clean,
            "rules": {r.rule: {"checked": r.checked, "violations": len(r.violations)} for r in result.rules},
            "details": [str(v) for v in result.violations[:20]]}


async def build(db: Database, url: str, req: LabRequest, cohorts: list[Cohort], started: datetime,
                wall_seconds: float) -> dict[str, Any]:
    strategies = {}
    for cohort in cohorts:
        rows = await _rows(db, cohort.accounts)
        async with db.sessions() as s:
            debtors = await s.scalar(select(func.count(func.distinct(Case.debtor_id)))
                                     .where(Case.account_id.in_(cohort.accounts)))
        strategies[cohort.name] = {"strategy": str(cohort.strategy) if cohort.strategy else "default",
                                   **cohort_figures(rows, started, req.days, debtors or 0)}
    debtors = sum(s["debtors"] for s in strategies.values())
    return {
        "run": {"debtors": debtors, "accounts": sum(s["accounts"] for s in strategies.values()), "days": req.days,
                "seed": req.seed, "split": req.split if req.challenger else None,
                "started_at": started.isoformat(), "wall_seconds": round(wall_seconds, 1),
                "debtor_days_per_second": round(debtors * req.days / wall_seconds, 1) if wall_seconds else None},
        "strategies": strategies,
        "audit": await audit(url),
    }


def write(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    from lab import plots  # matplotlib only when there is something to draw
    plots.draw(out, report)


async def outcomes(db: Database, population: Path) -> list[dict[str, Any]]:
    """What was known when each debt defaulted (its default event, in the run's
    ``population.jsonl``) and whether it was recovered within
    :data:`RECOVERY_WINDOW_DAYS` (closed ``paid`` by then): ``lab train``'s rows."""
    async with db.sessions() as s:
        cases = {c.account_id: c for c in (await s.scalars(select(Case))).all()}
    out = []
    for line in population.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        case = cases.get(event["account_id"])
        if case is None:
            continue
        recovered = case.closed_reason == "paid" and case.closed_at is not None and \
            _days(case.closed_at, case.opened_at) <= RECOVERY_WINDOW_DAYS
        out.append({**features_of(event), "recovered_90d": int(recovered)})
    return out


def features_of(event: dict[str, Any]) -> dict[str, Any]:
    """The score's inputs from a default event (as JSON): what is known when a debt defaults."""
    debtor = event["debtor"]
    return features(event["amount_due"], debtor["age"], debtor.get("monthly_disposable_income"), debtor["region"],
                    event.get("grade"), bool(event.get("asset_flight_risk")))
