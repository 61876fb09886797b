"""The collection strategy a case carries (SPEC §9), as it crosses a payload.

A strategy is configuration: a validated TOML file (read and checked by
:mod:`support.strategy`; never looser than SPEC §3), whose ladder, plan terms
and legal thresholds the intake writes into each new case's input as a
:class:`CaseStrategy`.  The case keeps the strategy it started with, across
continue-as-new, and shows ``name@version`` in the ``Strategy`` search
attribute.  The contact hours and caps of a strategy go into the case's
``contact_rules`` (the stricter of the strategy's and the settings').

Everything here is pure: the ladder and the amount bands as functions of the
strategy, so the workflow and unit tests use the same code.  ``None`` in a
case's input means :data:`DEFAULT_STRATEGY`, equal to the constants of
:mod:`workflows.rules` (cases started before strategies existed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from workflows import rules

CHANNELS = ("voice", "human", "letter")
# A ladder step's name by channel: the activities' scripts and caps know these names.
STEP_BY_CHANNEL = {step.channel: step for step in rules.LADDER}


@dataclass
class StrategyStep:
    day: int  # days after the default event (day 0)
    channel: str  # voice | human | letter
    at: str | None = None  # debtor-local wall time "HH:MM" (None: the time of day the case opened)


@dataclass
class AmountBand:
    """A treatment for debts of at least ``from_amount`` (the highest band that applies wins)."""

    from_amount: str  # decimal string
    grade: str | None = None  # initial grade when upstream gives none
    start_with: str | None = None  # a channel: the ladder starts at its first step of that channel


def _default_steps() -> list[StrategyStep]:
    return [StrategyStep(s.day, s.channel) for s in rules.LADDER]


@dataclass
class CaseStrategy:
    name: str = "default"
    version: str = "1"
    ladder: list[StrategyStep] = field(default_factory=_default_steps)
    income_share: str = "0.30"  # of monthly disposable income, the installment a plan offers
    max_periods: int = rules.MAX_PLAN_PERIODS
    legal_min_amount: str = "0"  # outstanding below this takes no legal track
    bands: list[AmountBand] = field(default_factory=list)
    # With a recovery score: grade I from this score up, III below this ({"I": "0.70", "III": "0.20"})
    score_grade_thresholds: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name@version``: the ``Strategy`` search attribute and the cases table's column."""
        return f"{self.name}@{self.version}"


DEFAULT_STRATEGY = CaseStrategy()


def ladder_of(strategy: CaseStrategy | None) -> tuple[rules.LadderStep, ...]:
    """The wake-up ladder of a strategy, as :data:`workflows.rules.LADDER` steps
    (name, day, channel, label); the default strategy's is ``rules.LADDER`` itself."""
    if strategy is None:
        return rules.LADDER
    steps = []
    for s in strategy.ladder:
        base = STEP_BY_CHANNEL[s.channel]
        when = f" {s.at}" if s.at else ""
        steps.append(rules.LadderStep(base.name, s.day, s.channel, f"day {s.day}{when} {base.label.split(' ', 2)[2]}"))
    ladder = tuple(steps)
    return rules.LADDER if ladder == rules.LADDER else ladder


def step_times(strategy: CaseStrategy | None) -> tuple[str | None, ...]:
    """The wall time of each ladder step (None: the time of day the case opened)."""
    return tuple(s.at for s in strategy.ladder) if strategy else (None,) * len(rules.LADDER)


def letter_index(ladder: tuple[rules.LadderStep, ...]) -> int:
    return next(i for i, step in enumerate(ladder) if step.channel == "letter")


def band_for(strategy: CaseStrategy | None, amount_due: str) -> AmountBand | None:
    """The amount band a debt of ``amount_due`` falls in (None: none)."""
    if strategy is None:
        return None
    amount = rules.parse_money(amount_due)
    if amount is None:
        return None
    fitting = [b for b in strategy.bands if amount >= Decimal(b.from_amount)]
    return max(fitting, key=lambda b: Decimal(b.from_amount), default=None)


def first_step(ladder: tuple[rules.LadderStep, ...], band: AmountBand | None) -> int:
    """Index of the ladder step a case starts with: its band may skip to a channel."""
    if band is None or band.start_with is None:
        return 0
    return next((i for i, step in enumerate(ladder) if step.channel == band.start_with), 0)


def grade_for_score(strategy: CaseStrategy | None, score: float | None) -> str | None:
    """The initial grade a strategy gives a recovery score (None: it gives none)."""
    thresholds = strategy.score_grade_thresholds if strategy else {}
    if score is None or not thresholds:
        return None
    if "I" in thresholds and Decimal(str(score)) >= Decimal(thresholds["I"]):
        return "I"
    if "III" in thresholds and Decimal(str(score)) < Decimal(thresholds["III"]):
        return "III"
    return "II"


def below_legal_minimum(strategy: CaseStrategy | None, outstanding: str) -> bool:
    if strategy is None:
        return False
    return Decimal(outstanding) < Decimal(strategy.legal_min_amount)
