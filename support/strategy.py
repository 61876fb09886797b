"""A collection strategy as configuration: a validated TOML file (SPEC §9).

A strategy names its wake-up ladder (steps by day and channel, optionally at
a debtor-local time), the installment plan terms (share of income, maximum
periods, grace days), the legal thresholds (the minimum amount for a legal
track; amount bands that change the treatment) and the contact hours and
caps.  It may be stricter than the law's rules (SPEC §3), never looser: a
file that loosens one is refused with a message naming the key, and so is a
malformed file or an unknown key.  See ``samples/strategies/default.toml``
(today's constants) and ``docs/lab.md``.

``load_strategy(path)`` reads and validates a file (a :class:`StrategyError`
of one line when it is refused); :func:`default_strategy` is the built-in
default.  :meth:`Strategy.to_case` is what a case carries
(:class:`workflows.strategy.CaseStrategy`), :meth:`Strategy.contact_rules`
the contact rules it plans with and the activities enforce.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workflows import rules
from workflows.strategy import AmountBand, CaseStrategy, StrategyStep

LAW = rules.DEFAULT_RULES
MAX_INCOME_SHARE = Decimal("0.30")  # SPEC §2.2: an installment asks at most 30 % of disposable income
STRICTER_ONLY = "a strategy may be stricter than SPEC §3, never looser"


class StrategyError(ValueError):
    """A strategy file is refused: one line, naming the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _decimal(value: Any, what: str) -> Decimal:
    example = '"0.30"' if what == "share" else '"5000.00"'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a decimal {what} like {example}, got {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"must be a decimal {what} like {example}, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"must be a non-negative decimal {what}, got {value!r}")
    return d


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value  # TOML local time: 08:00:00
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"must be a time of day HH:MM, got {value!r}") from None


class Step(_Section):
    day: int = Field(ge=0, le=365)
    channel: Literal["voice", "human", "letter"]
    at: time | None = None  # debtor-local wall time; None: the time of day the case opened

    parse_at = field_validator("at", mode="before")(lambda v: None if v is None else _clock(v))


class Plan(_Section):
    income_share: Decimal = Decimal("0.30")
    max_periods: int = Field(rules.MAX_PLAN_PERIODS, ge=1)
    grace_days: int | None = Field(None, ge=0, le=31)  # None: COLLECTIONS_INSTALLMENT_GRACE_DAYS

    @field_validator("income_share", mode="before")
    @classmethod
    def _share(cls, v: Any) -> Decimal:
        share = _decimal(v, "share")
        if share <= 0:
            raise ValueError("must be above 0")
        if share > MAX_INCOME_SHARE:
            raise ValueError(f"{share} asks more of the debtor than {MAX_INCOME_SHARE} of disposable income "
                             f"(SPEC §2.2); {STRICTER_ONLY}")
        return share

    @field_validator("max_periods")
    @classmethod
    def _periods(cls, v: int) -> int:
        if v > rules.MAX_PLAN_PERIODS:
            raise ValueError(f"{v} periods is looser than the plan's {rules.MAX_PLAN_PERIODS} monthly periods "
                             f"at most (SPEC §2.2); {STRICTER_ONLY}")
        return v


class Band(_Section):
    from_amount: Decimal
    grade: Literal["I", "II", "III"] | None = None
    start_with: Literal["voice", "human", "letter"] | None = None

    parse_amount = field_validator("from_amount", mode="before")(lambda v: _decimal(v, "amount"))


class Legal(_Section):
    min_amount: Decimal = Decimal("0")
    bands: list[Band] = Field(default_factory=list)

    parse_amount = field_validator("min_amount", mode="before")(lambda v: _decimal(v, "amount"))


class Contact(_Section):
    quiet_start: time = LAW.quiet_start
    quiet_end: time = LAW.quiet_end
    max_connected_calls: int = Field(LAW.max_connected_calls_per_debtor_per_day, ge=1)
    max_dial_attempts: int = Field(LAW.max_dial_attempts_per_number_per_day, ge=1)
    recording_retention_days: int = LAW.recording_retention_days
    dialect_team_min_age: int = Field(LAW.dialect_team_min_age, ge=18)

    parse_clocks = field_validator("quiet_start", "quiet_end", mode="before")(lambda v: _clock(v))

    @field_validator("quiet_start")
    @classmethod
    def _quiet_start(cls, v: time) -> time:
        if v > LAW.quiet_start:
            raise ValueError(f"quiet hours starting at {v:%H:%M} are shorter than the law's "
                             f"{LAW.quiet_start:%H:%M}-{LAW.quiet_end:%H:%M}; {STRICTER_ONLY}")
        if v < time(12, 0):
            raise ValueError(f"quiet hours may start between 12:00 and {LAW.quiet_start:%H:%M}, got {v:%H:%M}")
        return v

    @field_validator("quiet_end")
    @classmethod
    def _quiet_end(cls, v: time) -> time:
        if v < LAW.quiet_end:
            raise ValueError(f"quiet hours ending at {v:%H:%M} are shorter than the law's "
                             f"{LAW.quiet_start:%H:%M}-{LAW.quiet_end:%H:%M}; {STRICTER_ONLY}")
        if v > time(12, 0):
            raise ValueError(f"quiet hours may end between {LAW.quiet_end:%H:%M} and 12:00, got {v:%H:%M}")
        return v

    @field_validator("max_connected_calls")
    @classmethod
    def _connected(cls, v: int) -> int:
        cap = LAW.max_connected_calls_per_debtor_per_day
        if v > cap:
            raise ValueError(f"{v} connected calls a day is above the cap of {cap} per debtor; {STRICTER_ONLY}")
        return v

    @field_validator("max_dial_attempts")
    @classmethod
    def _dials(cls, v: int) -> int:
        cap = LAW.max_dial_attempts_per_number_per_day
        if v > cap:
            raise ValueError(f"{v} dial attempts a day is above the cap of {cap} per number; {STRICTER_ONLY}")
        return v

    @field_validator("recording_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v < rules.MIN_RECORDING_RETENTION_DAYS:
            raise ValueError(f"{v} days is shorter than the {rules.MIN_RECORDING_RETENTION_DAYS} days a recording "
                             f"is kept at least; {STRICTER_ONLY}")
        return v

    @field_validator("dialect_team_min_age")
    @classmethod
    def _dialect(cls, v: int) -> int:
        if v > LAW.dialect_team_min_age:
            raise ValueError(f"{v} leaves debtors aged {LAW.dialect_team_min_age}-{v - 1} without their dialect "
                             f"team; {STRICTER_ONLY}")
        return v

    def to_rules(self) -> rules.ContactRules:
        return rules.ContactRules(
            max_connected_calls_per_debtor_per_day=self.max_connected_calls,
            max_dial_attempts_per_number_per_day=self.max_dial_attempts,
            quiet_start=self.quiet_start, quiet_end=self.quiet_end,
            recording_retention_days=self.recording_retention_days,
            dialect_team_min_age=self.dialect_team_min_age,
        )


class Score(_Section):
    """With COLLECTIONS_SCORE_MODEL: the initial grade from the recovery score
    when upstream gives none (``grade_thresholds = { I = "0.70", III = "0.20" }``:
    a score of at least 0.70 is grade I, below 0.20 grade III, else II)."""

    grade_thresholds: dict[Literal["I", "III"], Decimal] = Field(default_factory=dict)

    @field_validator("grade_thresholds", mode="before")
    @classmethod
    def _thresholds(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError(f"must be a table like {{ I = \"0.70\", III = \"0.20\" }}, got {v!r}")
        checked = {k: _decimal(x, "share") for k, x in v.items()}
        if any(x > 1 for x in checked.values()):
            raise ValueError("a score is between 0 and 1")
        if "I" in checked and "III" in checked and checked["III"] > checked["I"]:
            raise ValueError("the threshold of III must not be above the threshold of I")
        return checked


def _default_ladder() -> list[Step]:
    return [Step(day=s.day, channel=s.channel) for s in rules.LADDER]


class Strategy(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,47}$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")
    description: str = ""
    ladder: list[Step] = Field(default_factory=_default_ladder, min_length=1)
    plan: Plan = Field(default_factory=Plan)
    legal: Legal = Field(default_factory=Legal)
    contact: Contact = Field(default_factory=Contact)
    score: Score = Field(default_factory=Score)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _coherent(self) -> Strategy:
        ladder, contact = self.ladder, self.contact
        for i in range(1, len(ladder)):
            if ladder[i].day <= ladder[i - 1].day:
                raise _Refused(f"ladder[{i}].day", f"day {ladder[i].day} is not after the previous step's day "
                                                    f"{ladder[i - 1].day} (one step a day, in order)")
        letters = [i for i, s in enumerate(ladder) if s.channel == "letter"]
        if len(letters) != 1:
            raise _Refused("ladder", f"needs exactly one letter step (the legal notice), found {len(letters)}")
        quiet = contact.to_rules()
        for i, s in enumerate(ladder):
            if s.at is not None and rules.in_quiet_hours(
                    datetime.combine(date(2000, 1, 3), s.at, tzinfo=timezone.utc), "UTC", quiet):
                raise _Refused(f"ladder[{i}].at", f"{s.at:%H:%M} is in quiet hours ({contact.quiet_start:%H:%M}-"
                                                   f"{contact.quiet_end:%H:%M} debtor-local); {STRICTER_ONLY}")
        channels = [s.channel for s in ladder]
        for i, band in enumerate(self.legal.bands):
            if band.start_with is None:
                continue
            if band.start_with not in channels:
                raise _Refused(f"legal.bands[{i}].start_with", f"the ladder has no {band.start_with} step")
            if channels.index(band.start_with) > letters[0]:
                raise _Refused(f"legal.bands[{i}].start_with",
                                f"starting with the {band.start_with} step would skip the legal notice")
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def contact_rules(self) -> rules.ContactRules:
        return self.contact.to_rules()

    def to_case(self) -> CaseStrategy:
        """What a case carries (its input): ladder, plan terms and legal thresholds."""
        return CaseStrategy(
            name=self.name, version=self.version,
            ladder=[StrategyStep(s.day, s.channel, s.at.strftime("%H:%M") if s.at else None) for s in self.ladder],
            income_share=str(self.plan.income_share), max_periods=self.plan.max_periods,
            legal_min_amount=str(self.legal.min_amount),
            bands=[AmountBand(str(b.from_amount), b.grade, b.start_with) for b in self.legal.bands],
            score_grade_thresholds={k: str(v) for k, v in self.score.grade_thresholds.items()},
        )


class _Refused(ValueError):
    """A check across keys, naming the key it refuses."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")


def default_strategy() -> Strategy:
    """The built-in default: today's constants (``samples/strategies/default.toml``)."""
    return Strategy(name="default", version="1",
                    description="SPEC §2-§3 as they stand: the law's contact rules, the day 0/3/7 ladder")


def _key(loc: tuple) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _message(err: ValidationError) -> str:
    first = err.errors()[0]
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{_key(first['loc'])}: unknown key"
    if first["type"] == "missing":
        return f"{_key(first['loc'])}: missing"
    if not first["loc"]:  # a check across keys names its key itself
        return msg
    shown = first.get("input")
    if isinstance(shown, time):
        shown = shown.strftime("%H:%M")
    return f"{_key(first['loc'])} = {shown!r}: {msg}"


def parse_strategy(text: str, source: str = "strategy") -> Strategy:
    """A strategy from TOML text; :class:`StrategyError` (one line, naming ``source`` and the key)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StrategyError(f"{source}: not valid TOML: {e}") from None
    try:
        return Strategy.model_validate(data)
    except ValidationError as e:
        raise StrategyError(f"{source}: {_message(e)}") from None


def load_strategy(path: str | Path) -> Strategy:
    """Read and validate a strategy file; :class:`StrategyError` when it is refused."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyError(f"{p}: no such strategy file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StrategyError(f"{p}: cannot be read ({e.__class__.__name__}: {e})") from None
    return parse_strategy(text, str(p))
