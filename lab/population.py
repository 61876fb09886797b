"""A reproducible population of simulated debtors (SPEC §9, issue 14).

The behaviour patterns are data (``lab/patterns.toml``): three named axes
(how the debtor is reached, how they pay, one twist) whose combinations are
the patterns, ``reach.pay.twist``.  :func:`generate` draws a population from
a seed: each debtor gets a pattern (the patterns shuffled by the seed and
dealt in turn, so a population of at least as many debtors as patterns has
every one), a region, an income level, an age, an amount and a synthetic
phone number (the region's example mobile number from ``phonenumbers``, last
digits replaced: a valid format, nobody's number).  Each account is an
``account.defaulted`` event, valid per :mod:`intake.events`, whose
``debtor.simulation`` is what the simulated adapters read plus a ``lab``
part the lab's upstream systems act on (:mod:`lab.run`).

The same seed gives the same file, byte for byte: dates are relative to a
fixed day (:data:`BASE`); a lab run moves them to its server's clock.
"""

from __future__ import annotations

import json
import random
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import phonenumbers

from intake.events import AccountDefaulted, EventRejected, parse_event
from intake.regions import find

PATTERNS_FILE = Path(__file__).with_name("patterns.toml")
BASE = datetime(2026, 1, 5, 1, 0, tzinfo=timezone.utc)  # the population's "now"; a run moves it
AXES = ("reach", "pay", "twist")
TEAMS = ("team-north", "team-south")


class PopulationError(ValueError):
    """A bad request or file: one line for the strategist."""


@dataclass(frozen=True)
class Pattern:
    name: str
    simulation: dict[str, Any]
    lab: dict[str, Any]
    event: dict[str, Any]
    debtor: dict[str, Any]
    accounts: int = 1
    income: dict[str, int] = field(default_factory=dict)  # weights of the income levels


@dataclass(frozen=True)
class Catalogue:
    patterns: dict[str, Pattern]
    regions: dict[str, str]  # region -> dialect of its elderly debtors
    income: dict[str, str]  # level -> monthly disposable income
    disaster_region: str = field(default="")


def _merge(options: list[dict[str, Any]], part: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for option in options:
        merged.update(option.get(part, {}))
    return merged


@cache
def catalogue(path: Path = PATTERNS_FILE) -> Catalogue:
    """Every named pattern of the patterns file (see its header)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    patterns: dict[str, Pattern] = {}
    for reach_name, reach in data["reach"].items():
        for pay_name, pay in data["pay"].items():
            if not reach.get("reachable", True) and pay.get("needs_contact", True):
                continue  # never reached: only what needs no call
            for twist_name, twist in data["twist"].items():
                options = [reach, pay, twist]
                name = f"{reach_name}.{pay_name}.{twist_name}"
                patterns[name] = Pattern(
                    name, _merge(options, "simulation"), _merge(options, "lab"), _merge(options, "event"),
                    _merge(options, "debtor"), max(int(o.get("accounts", 1)) for o in options),
                    _merge(options, "income"))
    regions = dict(data["regions"])
    return Catalogue(patterns, regions, dict(data["income"]), disaster_region=next(iter(regions)))


def pattern_names() -> list[str]:
    return list(catalogue().patterns)


def choose(names: str | None) -> list[str]:
    """The patterns a population draws from: all, or the comma-separated names (checked)."""
    known = catalogue().patterns
    if not names:
        return list(known)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise PopulationError(f"unknown pattern {unknown[0]!r} (`collections lab population --list` names them; "
                              "a pattern is reach.pay.twist, e.g. always.full-on-call.plain)")
    if not chosen:
        raise PopulationError("--patterns names no pattern")
    return chosen


def synthetic_phone(country: str, n: int) -> str:
    """The region's example mobile number with its last four digits made from ``n``."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    number = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{n % 10000:04d}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _debtor(rng: random.Random, cat: Catalogue, pattern: Pattern, i: int) -> dict[str, Any]:
    region_code = cat.disaster_region if pattern.lab.get("disaster") else rng.choice(sorted(cat.regions))
    region = find(region_code)
    elderly = bool(pattern.debtor.get("elderly"))
    levels = sorted(cat.income)
    income_level = rng.choices(levels, weights=[pattern.income.get(level, 1) for level in levels])[0]
    simulation = dict(pattern.simulation)
    if simulation.get("skip_trace_phone") == "synthetic":
        simulation["skip_trace_phone"] = synthetic_phone(region.country, 5000 + i)
    if "answers_hours" in simulation:
        simulation["timezone"] = region.timezone
    debtor = {
        "debtor_id": f"LD-{i:05d}", "phone": synthetic_phone(region.country, i), "timezone": region.timezone,
        "region": region.code, "age": rng.randint(60, 88) if elderly else rng.randint(22, 59),
        "monthly_disposable_income": cat.income[income_level],
        "address": f"{100 + i % 900} Example Road, {region.name}",
    }
    if elderly:
        debtor["dialect"] = cat.regions[region_code]
    debtor["simulation"] = {**simulation, "pattern": pattern.name, "income_level": income_level,
                            "lab": dict(pattern.lab)}
    return {"debtor": debtor, "currency": region.currency}


def _accounts(rng: random.Random, pattern: Pattern, i: int, who: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    for k in range(pattern.accounts):
        amount = Decimal(rng.randint(300, 30000)) + Decimal(rng.randint(0, 99)) / 100
        debtor = json.loads(json.dumps(who["debtor"]))  # each event its own copy
        share = debtor["simulation"].pop("pays_amount_share", None)
        if share is not None:
            debtor["simulation"]["pays_amount"] = _money(amount * Decimal(str(share)))
        event = {
            "event_id": f"lab-default-{i:05d}-{k}", "type": "account.defaulted",
            "occurred_at": BASE.isoformat(), "account_id": f"LAB-{i:05d}-{k}", "amount_due": _money(amount),
            "currency": who["currency"], "due_date": (BASE.date() - timedelta(days=rng.randint(30, 200))).isoformat(),
            "contract_id": f"LK-{i:05d}-{k}", "debtor": debtor, "team_id": TEAMS[i % len(TEAMS)],
            **pattern.event,
        }
        events.append(event)
    return events


def generate(debtors: int, seed: int, patterns: str | None = None) -> list[dict[str, Any]]:
    """The population's default events: ``debtors`` debtors (a debtor of a
    several-accounts pattern has more than one account)."""
    if debtors < 1:
        raise PopulationError(f"--debtors must be at least 1, got {debtors}")
    names = choose(patterns)
    cat = catalogue()
    rng = random.Random(seed)
    order = list(names)
    rng.shuffle(order)
    events: list[dict[str, Any]] = []
    for i in range(debtors):
        pattern = cat.patterns[order[i % len(order)]]
        events.extend(_accounts(rng, pattern, i, _debtor(rng, cat, pattern, i)))
    return events


def dumps(events: list[dict[str, Any]]) -> str:
    """The population as JSON Lines (checked against the event contract)."""
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    for line in lines:
        parse_event(line)  # a pattern that breaks the contract is a bug here, not a bad file later
    return "".join(line + "\n" for line in lines)


def write(path: Path, debtors: int, seed: int, patterns: str | None = None) -> int:
    """Write the population; the number of accounts.  Nothing is written on a bad request."""
    text = dumps(generate(debtors, seed, patterns))
    path.write_text(text, encoding="utf-8")
    return text.count("\n")


def read(path: Path) -> list[AccountDefaulted]:
    """A population file's events, each valid, or :class:`PopulationError` naming the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PopulationError(f"cannot read population file {path}: {getattr(e, 'strerror', None) or e}") from None
    events = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ev = parse_event(line)
        except EventRejected as r:
            raise PopulationError(f"population file {path} line {n}: {r.reason}") from None
        if not isinstance(ev, AccountDefaulted):
            raise PopulationError(f"population file {path} line {n}: a population holds account.defaulted "
                                  f"events only, got {ev.type}")
        events.append(ev)
    if not events:
        raise PopulationError(f"population file {path} holds no events")
    return events
