"""The compliance audit: a contact log checked against every rule of SPEC §3,
from the database alone.

It trusts nothing the activities derived: the debtor-local day and time of
each attempt are recomputed from ``attempted_at`` (UTC) and the attempt's
time zone (the ``local_date`` and ``local_time`` columns are not read), the
debtor's own numbers come from what upstream sent (``ingested_events``), the
debtor's row and the skip traces, and a 60+ debtor's age and dialect from
the debtor's row.  The rules' numbers are contact rules (the settings', or a
strategy's): the caps, the quiet hours, the retention and the dialect age.

Rules (one :class:`RuleResult` each, every violation named by account,
attempt key, rule and why):

- ``connected_calls``: at most N connected calls per debtor per local day;
- ``dials_per_number``: at most N dial attempts per number per local day;
- ``quiet_hours``: no attempt (call or letter) in quiet hours, debtor-local;
- ``own_channels``: every number used is one of the debtor's own (the one
  upstream sent for any of the debtor's accounts, the one on file, or one a
  skip trace found);
- ``dialect_routing``: a human call of a debtor aged 60+ went to the dialect
  team for the debtor's dialect;
- ``retention``: every call has ``retain_until`` ≥ ``attempted_at`` + the
  retention days (730 at least).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from db.models import ContactAttempt, IngestedEvent, SkipTrace
from db.models import Debtor as DebtorRow
from db.session import Database
from support.logs import mask_phone
from workflows import rules

CALLS = ("voice", "human")
CONTACTS = ("voice", "human", "letter")  # post is not a contact at a time of day
NOT_DIALLED = ("blocked_compliance",)  # the screen blocked it before any dial

RULES = {
    "connected_calls": "connected calls per debtor per local day",
    "dials_per_number": "dial attempts per number per local day",
    "quiet_hours": "no contact in quiet hours (debtor-local)",
    "own_channels": "contact only on the debtor's own numbers",
    "dialect_routing": "human calls of debtors aged 60+ by their dialect team",
    "retention": "call recordings retained long enough",
}


@dataclass
class Violation:
    rule: str
    account_id: str
    attempt_key: str
    why: str

    def __str__(self) -> str:
        return f"{self.account_id} {self.attempt_key} {self.rule}: {self.why}"


@dataclass
class RuleResult:
    rule: str
    title: str
    checked: int  # attempts (or groups) the rule looked at
    violations: list[Violation] = field(default_factory=list)


@dataclass
class AuditReport:
    attempts: int
    contact_rules: dict[str, Any]
    rules: list[RuleResult]

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.rules for v in r.violations]

    @property
    def clean(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "clean": self.clean, "violations": len(self.violations),
                "contact_rules": self.contact_rules, "rules": [asdict(r) for r in self.rules]}


def _hash(phone: str) -> str:
    """The contact log's ``phone_hash`` of a number (as activities.common.phone_hash)."""
    return hashlib.sha256(re.sub(r"\D", "", phone).encode()).hexdigest()


def _zone(row: ContactAttempt, debtor: DebtorRow | None) -> str:
    if rules.is_valid_timezone(row.timezone or ""):
        return row.timezone
    return debtor.timezone if debtor is not None else rules.DEFAULT_TIMEZONE


def _local_day(row: ContactAttempt, debtor: DebtorRow | None) -> tuple[date, str]:
    tz = _zone(row, debtor)
    return rules.local_date(row.attempted_at, tz), tz


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def check_caps(log: list[ContactAttempt], debtors: dict[str, DebtorRow],
               r: rules.ContactRules) -> tuple[RuleResult, RuleResult]:
    connected = RuleResult("connected_calls", RULES["connected_calls"], 0)
    dials = RuleResult("dials_per_number", RULES["dials_per_number"], 0)
    by_debtor: dict[tuple[str, date], list[ContactAttempt]] = defaultdict(list)
    by_number: dict[tuple[str, date], list[ContactAttempt]] = defaultdict(list)
    for row in log:
        if row.channel not in CALLS or row.outcome in NOT_DIALLED:
            continue
        day, _ = _local_day(row, debtors.get(row.debtor_id))
        if row.connected:
            by_debtor[(row.debtor_id, day)].append(row)
        if row.phone_hash:
            by_number[(row.phone_hash, day)].append(row)
    cap = r.max_connected_calls_per_debtor_per_day
    connected.checked = len(by_debtor)
    for (debtor_id, day), rows in sorted(by_debtor.items()):
        for n, row in enumerate(rows[cap:], start=cap + 1):
            connected.violations.append(Violation(
                "connected_calls", row.account_id, row.idempotency_key,
                f"{_ordinal(n)} connected call of debtor {debtor_id} on {day.isoformat()} (local); cap {cap}"))
    cap = r.max_dial_attempts_per_number_per_day
    dials.checked = len(by_number)
    for (_, day), rows in sorted(by_number.items()):
        for n, row in enumerate(rows[cap:], start=cap + 1):
            dials.violations.append(Violation(
                "dials_per_number", row.account_id, row.idempotency_key,
                f"{_ordinal(n)} dial of number {row.phone_masked or '(masked)'} on {day.isoformat()} (local); "
                f"cap {cap}"))
    return connected, dials


def check_quiet_hours(log: list[ContactAttempt], debtors: dict[str, DebtorRow], r: rules.ContactRules) -> RuleResult:
    result = RuleResult("quiet_hours", RULES["quiet_hours"], 0)
    for row in log:
        if row.channel not in CONTACTS or row.outcome in NOT_DIALLED:
            continue
        result.checked += 1
        tz = _zone(row, debtors.get(row.debtor_id))
        if rules.in_quiet_hours(row.attempted_at, tz, r):
            local = rules.local_datetime(row.attempted_at, tz)
            result.violations.append(Violation(
                "quiet_hours", row.account_id, row.idempotency_key,
                f"{row.channel} at {local:%Y-%m-%d %H:%M} {tz}, in quiet hours "
                f"{r.quiet_start:%H:%M}-{r.quiet_end:%H:%M}"))
    return result


def check_own_channels(log: list[ContactAttempt], own: dict[str, set[str]]) -> RuleResult:
    result = RuleResult("own_channels", RULES["own_channels"], 0)
    for row in log:
        if row.channel not in CONTACTS:
            continue
        result.checked += 1
        if row.phone_hash is None:
            why = f"{row.channel} with no number recorded: not shown to be the debtor's own"
        elif row.phone_hash not in own.get(row.debtor_id, set()):
            why = (f"{row.channel} to {row.phone_masked or 'a number'}, not a number of debtor {row.debtor_id} "
                   "(neither sent upstream, on file, nor found by a skip trace)")
        else:
            continue
        result.violations.append(Violation("own_channels", row.account_id, row.idempotency_key, why))
    return result


def check_dialect_routing(log: list[ContactAttempt], debtors: dict[str, DebtorRow],
                          r: rules.ContactRules) -> RuleResult:
    result = RuleResult("dialect_routing", RULES["dialect_routing"], 0)
    for row in log:
        debtor = debtors.get(row.debtor_id)
        if row.channel != "human" or debtor is None or debtor.age < r.dialect_team_min_age:
            continue
        result.checked += 1
        team = rules.route_team(debtor.age, debtor.dialect, None, r)
        if row.team_id != team:
            result.violations.append(Violation(
                "dialect_routing", row.account_id, row.idempotency_key,
                f"debtor {row.debtor_id} aged {debtor.age} called by team {row.team_id or '(none)'}, "
                f"not {team}"))
    return result


def check_retention(log: list[ContactAttempt], r: rules.ContactRules) -> RuleResult:
    result = RuleResult("retention", RULES["retention"], 0)
    days = max(r.recording_retention_days, rules.MIN_RECORDING_RETENTION_DAYS)
    for row in log:
        if row.channel not in CALLS or row.outcome in NOT_DIALLED:
            continue
        result.checked += 1
        needed = row.attempted_at + timedelta(days=days)
        if row.retain_until is None:
            why = f"call recording has no retain_until (needs {needed:%Y-%m-%d} UTC or later)"
        elif row.retain_until < needed:
            short = (needed - row.retain_until).days
            why = (f"call recording retained until {row.retain_until:%Y-%m-%d} UTC, {short} days short of "
                   f"{days} days after the call")
        else:
            continue
        result.violations.append(Violation("retention", row.account_id, row.idempotency_key, why))
    return result


async def _own_numbers(db: Database, debtors: dict[str, DebtorRow]) -> dict[str, set[str]]:
    """Each debtor's numbers, hashed: on file now, sent upstream with any of its
    accounts, and found by a skip trace of one of its accounts."""
    own: dict[str, set[str]] = defaultdict(set)
    for d in debtors.values():
        own[d.debtor_id].add(_hash(d.phone))
    async with db.sessions() as s:
        opened = (await s.execute(select(IngestedEvent.account_id, IngestedEvent.payload)
                                  .where(IngestedEvent.type == "account.defaulted"))).all()
        traces = {t.account_id: t for t in (await s.scalars(select(SkipTrace).where(SkipTrace.found))).all()}
    for account_id, payload in opened:
        try:
            debtor = json.loads(payload).get("debtor") or {}
        except (ValueError, AttributeError):
            continue
        debtor_id, phone = debtor.get("debtor_id"), debtor.get("phone")
        if not debtor_id or not isinstance(phone, str):
            continue
        own[debtor_id].add(_hash(phone))
        traced = (debtor.get("simulation") or {}).get("skip_trace_phone")
        trace = traces.get(account_id)
        if isinstance(traced, str) and trace is not None and trace.phone_masked == mask_phone(traced):
            own[debtor_id].add(_hash(traced))  # the number the skip trace of this account found
    return own


async def audit(db: Database, contact_rules: rules.ContactRules = rules.DEFAULT_RULES) -> AuditReport:
    """Check the whole contact log of ``db`` against SPEC §3 under ``contact_rules``."""
    async with db.sessions() as s:
        log = list((await s.scalars(select(ContactAttempt).order_by(ContactAttempt.attempted_at,
                                                                    ContactAttempt.id))).all())
        debtors = {d.debtor_id: d for d in (await s.scalars(select(DebtorRow))).all()}
    own = await _own_numbers(db, debtors)
    r = contact_rules
    connected, dials = check_caps(log, debtors, r)
    results = [connected, dials, check_quiet_hours(log, debtors, r), check_own_channels(log, own),
               check_dialect_routing(log, debtors, r), check_retention(log, r)]
    shown = {k: (f"{v:%H:%M}" if hasattr(v, "hour") else v) for k, v in asdict(r).items()}
    return AuditReport(attempts=len(log), contact_rules=shown, rules=results)


async def audit_database(url: str, contact_rules: rules.ContactRules = rules.DEFAULT_RULES) -> AuditReport:
    """:func:`audit` of the database at ``url`` (the lab's ``DIR/lab.db``, any contact log)."""
    async with Database(url) as db:
        return await audit(db, contact_rules)
