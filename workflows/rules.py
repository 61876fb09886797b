"""Pure, deterministic rule functions of a collections case (SPEC §2–§3).

Nothing here does I/O or reads a clock: every function takes the instant it
judges as an argument, so the workflow can call them with ``workflow.now()``,
activities with the attempt's server-scheduled time, and unit tests with any
instant they like.  All instants are aware UTC datetimes; a debtor's IANA
zone is used only to apply local rules (quiet hours, calendar days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = timezone.utc
CENT = Decimal("0.01")
DEFAULT_TIMEZONE = "Asia/Shanghai"


# --------------------------------------------------------------------------
# Configuration (every number is configuration; the defaults are SPEC §3)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactRules:
    max_connected_calls_per_debtor_per_day: int = 3
    max_dial_attempts_per_number_per_day: int = 6
    quiet_start: time = time(22, 0)
    quiet_end: time = time(8, 0)
    recording_retention_days: int = 730
    dialect_team_min_age: int = 60


DEFAULT_RULES = ContactRules()
MIN_RECORDING_RETENTION_DAYS = 730  # a stricter rule set may raise it, never lower it

LIMITATION_YEARS = 3
SUSPENSION_MONTHS = (1, 24)
DISASTER_GRACE_DAYS = 30
COMPLAINT_THRESHOLD = 5  # complaints against a team in one day above this trip the breaker
PROTECTIONS = ("disaster_grace", "suspension", "dispute", "team_suspended")
LEGAL_NOTICE_RESPONSE_DAYS = 15
LETTER_ATTEMPTS = 3  # electronic service tries of the legal notice, one a contact day, before it goes by post
KNOWN_CURRENCIES = frozenset(
    {"CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "SGD", "JPY", "AUD", "CAD", "CHF"}
)


# --------------------------------------------------------------------------
# Time zones and quiet hours
# --------------------------------------------------------------------------


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_valid_timezone(name: str) -> bool:
    try:
        zone(name)
    except (KeyError, ValueError, OSError):
        return False
    return True


def local_datetime(at: datetime, tz: str) -> datetime:
    return at.astimezone(zone(tz))


def local_date(at: datetime, tz: str) -> date:
    return local_datetime(at, tz).date()


def local_instant(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``tz``."""
    return datetime.combine(day, at, tzinfo=zone(tz)).astimezone(UTC)


def in_quiet_hours(at: datetime, tz: str, rules: ContactRules = DEFAULT_RULES) -> bool:
    t = local_datetime(at, tz).time()
    if rules.quiet_start > rules.quiet_end:  # the window wraps midnight (22:00–08:00)
        return t >= rules.quiet_start or t < rules.quiet_end
    return rules.quiet_start <= t < rules.quiet_end


def next_contact_window(at: datetime, tz: str, rules: ContactRules = DEFAULT_RULES) -> datetime:
    """``at`` itself when contact is allowed then, else the end of quiet hours."""
    if not in_quiet_hours(at, tz, rules):
        return at
    local = local_datetime(at, tz)
    day = local.date()
    if local.time() >= rules.quiet_end:  # evening part: the window opens tomorrow
        day += timedelta(days=1)
    return local_instant(day, rules.quiet_end, tz)


def next_local_day_opening(at: datetime, tz: str, rules: ContactRules = DEFAULT_RULES) -> datetime:
    """The first contact-allowed instant of the debtor's next calendar day."""
    return local_instant(local_date(at, tz) + timedelta(days=1), rules.quiet_end, tz)


# --------------------------------------------------------------------------
# Contact caps
# --------------------------------------------------------------------------


def cap_reason(
    connected_calls_today: int,
    dial_attempts_today_for_number: int,
    rules: ContactRules = DEFAULT_RULES,
) -> str | None:
    """Why one more call may not be dialled today, or None when it may.

    ``connected_calls_today`` counts the debtor's answered calls across all of
    their accounts plus calls still in flight (their outcome is unknown, so
    they are counted as if answered: the cap must hold whatever they return).
    """
    if connected_calls_today >= rules.max_connected_calls_per_debtor_per_day:
        return (
            f"debtor already had {connected_calls_today} connected calls today "
            f"(cap {rules.max_connected_calls_per_debtor_per_day})"
        )
    if dial_attempts_today_for_number >= rules.max_dial_attempts_per_number_per_day:
        return (
            f"number already dialled {dial_attempts_today_for_number} times today "
            f"(cap {rules.max_dial_attempts_per_number_per_day})"
        )
    return None


def strictest(a: ContactRules, b: ContactRules) -> ContactRules:
    """The rules that keep both ``a`` and ``b``: the lower caps, the longer
    quiet hours, the longer retention, dialect routing from the lower age."""
    return ContactRules(
        max_connected_calls_per_debtor_per_day=min(a.max_connected_calls_per_debtor_per_day,
                                                   b.max_connected_calls_per_debtor_per_day),
        max_dial_attempts_per_number_per_day=min(a.max_dial_attempts_per_number_per_day,
                                                 b.max_dial_attempts_per_number_per_day),
        quiet_start=min(a.quiet_start, b.quiet_start),  # both evening starts (12:00-22:00)
        quiet_end=max(a.quiet_end, b.quiet_end),  # both morning ends (08:00-12:00)
        recording_retention_days=max(a.recording_retention_days, b.recording_retention_days),
        dialect_team_min_age=min(a.dialect_team_min_age, b.dialect_team_min_age),
    )


def retain_until(attempted_at: datetime, rules: ContactRules = DEFAULT_RULES) -> datetime:
    days = max(rules.recording_retention_days, MIN_RECORDING_RETENTION_DAYS)
    return attempted_at + timedelta(days=days)


def route_team(age: int, dialect: str | None, team_id: str | None, rules: ContactRules = DEFAULT_RULES) -> str:
    """The team that makes a human contact: debtors aged 60+ go to their dialect team."""
    if age >= rules.dialect_team_min_age:
        return f"dialect-{(dialect or '').strip().lower() or 'mandarin'}"
    return team_id or "general"


# --------------------------------------------------------------------------
# The wake-up ladder
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LadderStep:
    name: str
    day: int
    channel: str  # voice | human | letter
    label: str


LADDER: tuple[LadderStep, ...] = (
    LadderStep("voice_robot", 0, "voice", "day 0 voice robot"),
    LadderStep("human_call", 3, "human", "day 3 human call"),
    LadderStep("legal_notice", 7, "letter", "day 7 legal notice letter"),
)
STEP_NAMES = {s.name: s for s in LADDER}


def step_due(
    index: int,
    *,
    opened_at: datetime,
    tz: str,
    previous_step_at: datetime | None = None,
    last_response_at: datetime | None = None,
    promised_date: date | None = None,
    ladder: tuple[LadderStep, ...] = LADDER,
    at: time | None = None,
    start: int = 0,
) -> datetime:
    """When ladder step ``index`` of ``ladder`` (a strategy's; default
    :data:`LADDER`) is due (before quiet hours are applied).

    - its day counted from the default event (day 0), at the step's wall
      time ``at`` (default: the time of day the case opened); a case that
      starts at step ``start`` (an amount band skipped the earlier ones)
      counts the days from that step's;
    - at least its spacing after the previous step actually ran, counted in
      debtor-local calendar days, so two steps never share a day and a delay
      (quiet hours, caps, pauses) never bunches the remaining steps;
    - at least its spacing after the debtor's last response (partial payment);
    - not before the day after a promised payment date.
    """
    step = ladder[index]
    opened_local = local_datetime(opened_at, tz)  # day N = N local calendar days on, same wall time
    day = step.day - ladder[start].day if 0 < start <= index else step.day
    due = local_instant(opened_local.date() + timedelta(days=day), at or opened_local.time(), tz)
    gap = step.day - ladder[index - 1].day if index > 0 else 0
    midnight = time(0, 0)
    if previous_step_at is not None and index > 0:
        due = max(due, local_instant(local_date(previous_step_at, tz) + timedelta(days=gap), midnight, tz))
    if last_response_at is not None and index > 0:
        due = max(due, local_instant(local_date(last_response_at, tz) + timedelta(days=gap), midnight, tz))
    if promised_date is not None:
        due = max(due, local_instant(promised_date + timedelta(days=1), midnight, tz))
    return due


# --------------------------------------------------------------------------
# Verification and the limitation period
# --------------------------------------------------------------------------


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February into a common year
        return d.replace(year=d.year + years, day=28)


def limitation_expiry(start: date, years: int = LIMITATION_YEARS) -> date:
    """Last day on which the claim is enforceable, counted from ``start``
    (the due date, or the day of the latest interruption: demand, payment,
    promise or court filing restarts the full period, PRC Civil Code art. 195)."""
    return add_years(start, years)


def restart_limitation(current_expiry: date, interrupted_on: date) -> date:
    """An interruption restarts the period; it never shortens it."""
    return max(current_expiry, limitation_expiry(interrupted_on))


FORCE_MAJEURE_WINDOW_MONTHS = 6


def add_months(d: date, months: int) -> date:
    """Calendar months on, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, min(d.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def suspend_limitation(expiry: date, pause_start: date, pause_end: date) -> date:
    """Force majeure suspends the period (art. 194) only for the part of the
    pause inside the period's last 6 months; the expiry moves on by that part."""
    window_start = add_months(expiry, -FORCE_MAJEURE_WINDOW_MONTHS)
    overlap_start, overlap_end = max(pause_start, window_start), min(pause_end, expiry)
    if overlap_end <= overlap_start:
        return expiry
    return expiry + (overlap_end - overlap_start)


def is_time_barred(expiry: date, today: date) -> bool:
    return today > expiry


MAX_MONEY_DIGITS = 16  # whole-number digits the database's Numeric(18, 2) holds


def suspension_refusal(months: object) -> str | None:
    """Why a debt suspension of ``months`` may not be granted (None = it may)."""
    low, high = SUSPENSION_MONTHS
    if isinstance(months, bool) or not isinstance(months, int):
        return f"months must be a whole number of months, got {months!r}"
    if not low <= months <= high:
        return f"a debt suspension lasts {low} to {high} months; {months} months refused"
    return None


def parse_money(value: str) -> Decimal | None:
    """A finite Decimal the records can hold, else None."""
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not d.is_finite() or d.adjusted() >= MAX_MONEY_DIGITS:
        return None
    return d


def verify_debt(
    *, amount_due: str, currency: str, contract_id: str, due_date: date, today: date
) -> str | None:
    """The reason the debt is invalid, or None when it is valid (SPEC §2.1)."""
    amount = parse_money(amount_due)
    if amount is None or amount <= 0:
        return f"amount_due must be a positive amount of at most {MAX_MONEY_DIGITS} digits, got {amount_due!r}"
    if amount != amount.quantize(CENT):
        return f"amount_due has fractions of a cent: {amount_due!r}"
    if currency not in KNOWN_CURRENCIES:
        return f"unknown currency {currency!r}"
    if not contract_id.strip():
        return "missing contract reference"
    if due_date > today:
        return f"due date {due_date.isoformat()} is in the future"
    return None


# --------------------------------------------------------------------------
# Grading and negotiation
# --------------------------------------------------------------------------

GRADES = ("I", "II", "III")


def initial_grade(given: str | None, asset_flight_risk: bool) -> str:
    if given in GRADES:
        return given
    return "III" if asset_flight_risk else "II"


def regrade(grade: str, *, answered: bool, promised: bool, paid: bool, unanswered_in_a_row: int) -> str:
    """Contact outcomes re-grade the case: a promise or a payment lifts it to
    I; answering without a promise keeps I or II and lifts a lost-contact III
    to II; two unanswered contacts in a row mean lost contact (III)."""
    if paid or promised:
        return "I"
    if answered:
        return "II" if grade == "III" else grade
    if unanswered_in_a_row >= 2:
        return "III"
    return grade


def installment_plan(
    outstanding: Decimal, monthly_disposable_income: Decimal | None, max_periods: int = 12,
    income_share: Decimal = Decimal("0.30"),
) -> tuple[Decimal, int]:
    """(monthly installment, number of periods) for a grade I offer.

    Installment = 30 % of monthly disposable income; if that would need more
    than ``max_periods`` periods (or income is unknown), installment =
    outstanding / max_periods rounded up to the cent.  The last period may be
    smaller; the periods always sum to the outstanding amount exactly.
    """
    return installment_plan_for_share(outstanding, installment_share(monthly_disposable_income, income_share),
                                      max_periods)


def installment_share(monthly_disposable_income: Decimal | None,
                      income_share: Decimal = Decimal("0.30")) -> Decimal | None:
    """30 % of monthly disposable income, to the cent (None: income unknown).
    Computed where the income is (an activity), so only this travels."""
    return (monthly_disposable_income * income_share).quantize(CENT) if monthly_disposable_income else None


def installment_plan_for_share(outstanding: Decimal, share: Decimal | None,
                               max_periods: int = 12) -> tuple[Decimal, int]:
    """:func:`installment_plan` from the debtor's :func:`installment_share`."""
    if outstanding <= 0:
        raise ValueError("nothing outstanding to plan")
    floor = (outstanding / max_periods).quantize(CENT, rounding=ROUND_CEILING)
    share = share or Decimal(0)
    installment = share if share >= floor else floor
    installment = min(installment, outstanding)
    periods = int((outstanding / installment).to_integral_value(rounding=ROUND_CEILING))
    return installment, periods


def installment_schedule(outstanding: Decimal, installment: Decimal, periods: int) -> list[Decimal]:
    amounts = [installment] * (periods - 1)
    amounts.append(outstanding - installment * (periods - 1))
    return amounts


INSTALLMENT_GRACE_DAYS = 3  # days after an installment's due date before it counts as missed
MAX_PLAN_PERIODS = 12


def plan_refusal(periods: object, *, closed_reason: str | None, outstanding: Decimal,
                 plan_active: bool, legal_track: str | None, max_periods: int = MAX_PLAN_PERIODS) -> str | None:
    """Why a plan of ``periods`` may not be accepted now (None = it may);
    ``max_periods``: the strategy's, at most :data:`MAX_PLAN_PERIODS`."""
    if isinstance(periods, bool) or not isinstance(periods, int):
        return f"periods must be a whole number, got {periods!r}"
    if not 1 <= periods <= max_periods:
        return f"an installment plan has 1 to {max_periods} monthly periods; {periods} refused"
    if closed_reason is not None:
        return f"case is closed ({closed_reason}): no plan to accept"
    if outstanding <= 0:
        return "nothing outstanding to plan"
    if plan_active:
        return "an installment plan is already running"
    if legal_track is not None:
        return f"the case is in the legal branch ({legal_track}): a plan is settled with the court, not here"
    return None


def plan_schedule(accepted_on: date, outstanding: Decimal, monthly_disposable_income: Decimal | None,
                  periods: int) -> list[tuple[date, Decimal]]:
    """(due date, amount) of each installment of a plan accepted for at most
    ``periods`` months: 30 % of disposable income a month, or outstanding /
    ``periods`` rounded up to the cent when that would take longer; the first
    falls due one calendar month after acceptance."""
    return plan_schedule_for_share(accepted_on, outstanding, installment_share(monthly_disposable_income), periods)


def plan_schedule_for_share(accepted_on: date, outstanding: Decimal, share: Decimal | None,
                            periods: int) -> list[tuple[date, Decimal]]:
    """:func:`plan_schedule` from the debtor's :func:`installment_share`."""
    installment, count = installment_plan_for_share(outstanding, share, max_periods=periods)
    amounts = installment_schedule(outstanding, installment, count)
    return [(add_months(accepted_on, i + 1), amount) for i, amount in enumerate(amounts)]


def installment_missed_at(due_on: date, tz: str, grace_days: int = INSTALLMENT_GRACE_DAYS) -> datetime:
    """The instant an unpaid installment counts as missed: the end of the
    last grace day, debtor-local."""
    return local_instant(due_on + timedelta(days=grace_days + 1), time(0, 0), tz)


def next_unpaid_installment(schedule: list[tuple[date, Decimal]], paid: Decimal) -> int | None:
    """Index of the first installment that payments since acceptance
    (``paid``, applied in order) have not covered; None when all are."""
    total = Decimal(0)
    for i, (_, amount) in enumerate(schedule):
        total += amount
        if paid < total:
            return i
    return None


# --------------------------------------------------------------------------
# The legal branch (SPEC §2.4): payment order or asset preservation
# --------------------------------------------------------------------------

PAYMENT_ORDER = "payment_order"
ASSET_PRESERVATION = "asset_preservation"


@dataclass(frozen=True)
class LegalClocks:
    """Statutory and service-level clocks of the two legal tracks."""

    acceptance_days: int = 5  # court decides whether it accepts a payment order application
    order_days: int = 15  # court issues the order after accepting
    objection_days: int = 15  # debtor may pay or object after service
    preservation_sla_hours: int = 24  # response SLA to a preservation application
    preservation_max_hours: int = 48  # statutory maximum
    suit_days: int = 30  # suit to be filed after preservation is granted, or it lapses
    court_poll_hours: int = 24  # how often to read the court's docket for a payment order
    preservation_poll_hours: int = 4  # ... and for a preservation ruling
    lapse_warning_days: int = 5  # escalate when a granted preservation is this close to lapsing


DEFAULT_LEGAL_CLOCKS = LegalClocks()


def choose_legal_track(grade: str, asset_flight_risk: bool, address: str | None) -> tuple[str | None, str]:
    """(track, reason): preservation for grade III or asset-flight risk, a
    payment order for grade I/II with a known address; None = neither can be
    taken (hand the case over to litigation)."""
    if asset_flight_risk:
        return ASSET_PRESERVATION, "flagged asset-flight risk: pre-suit asset preservation"
    if grade == "III":
        return ASSET_PRESERVATION, "grade III (lost contact / resistant): asset-flight risk, pre-suit asset preservation"
    if address and address.strip():
        return PAYMENT_ORDER, f"grade {grade} debtor with a known address: payment order (non-litigation)"
    return None, f"grade {grade} debtor without a known address: a payment order cannot be served"
