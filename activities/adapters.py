"""Adapters to the outside world (SPEC §7): voice robot, call centre,
electronic service of letters, the post, skip-tracing data, court e-filing.

Activities call these small interfaces; the defaults are simulated and
deterministic for an account, driven by the debtor's ``simulation`` profile.
Real adapters replace them by configuration (``COLLECTIONS_ADAPTERS`` =
``module:factory`` returning an :class:`Adapters`), never by editing workflow
code.  Every adapter call carries an idempotency key: calling again with the
same key must return the first call's outcome without a second call.  The
call adapters also answer a status look-up (``placed(key=...)``): a retried
attempt asks it before it dials, so a call is placed once per attempt even
at a vendor that does not de-duplicate (the simulated ones keep a ledger,
:mod:`activities.ledger`).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from activities.common import activity_now
from activities.ledger import DialLedger, MemoryLedger
from workflows.model import CourtDocket as Docket  # what a court's docket shows


@dataclass(frozen=True)
class CallOutcome:
    answered: bool
    recording_ref: str
    transcript: str
    promises_in_days: int | None = None
    pays_amount: str | None = None  # "all" or a decimal string


@dataclass(frozen=True)
class ServiceReceipt:
    delivered: bool
    receipt_ref: str
    delivered_at: datetime


@dataclass(frozen=True)
class PostalReceipt:
    tracking_ref: str
    delivered_at: datetime | None  # when it is (or was) delivered; None: returned undeliverable


@dataclass(frozen=True)
class TraceOutcome:
    found: bool
    phone: str | None
    source: str


class VoiceRobot(Protocol):
    async def call(self, *, key: str, phone: str, script: str, profile: dict[str, Any]) -> CallOutcome: ...

    async def placed(self, *, key: str) -> CallOutcome | None:
        """The status look-up: the outcome of the call placed with ``key``, or
        None when no call was placed with it (a retry may dial then)."""
        ...


class CallCentre(Protocol):
    async def call(self, *, key: str, phone: str, team_id: str, script: str, profile: dict[str, Any]) -> CallOutcome: ...

    async def placed(self, *, key: str) -> CallOutcome | None: ...  # as VoiceRobot.placed


class ElectronicService(Protocol):
    """Electronic service of the legal notice; ``attempt`` is the how-many-th
    try for this notice (a notice not delivered is served again)."""

    async def serve(self, *, key: str, phone: str, document: str, at: datetime, profile: dict[str, Any],
                    attempt: int = 1) -> ServiceReceipt: ...


class PostalService(Protocol):
    """The legal notice by post, once the electronic tries are spent:
    idempotent per ``key``; answers a tracking reference and the delivery time."""

    async def post(self, *, key: str, address: str, document: str, at: datetime,
                   profile: dict[str, Any]) -> PostalReceipt: ...


class SkipTracer(Protocol):
    async def lookup(self, *, key: str, debtor_id: str, profile: dict[str, Any]) -> TraceOutcome: ...


class CourtFiling(Protocol):
    """Court e-filing: file a bond, an application, a suit or an enforcement
    request, and read an application's docket.

    ``file`` must be idempotent per ``key``: called again with a key it has
    seen (a retry after a worker died between the filing and its record), it
    returns the first filing's reference and files nothing new."""

    async def file(self, *, key: str, kind: str, amount: str, currency: str, contract_id: str, at: datetime,
                   profile: dict[str, Any]) -> str: ...

    async def docket(self, *, ref: str, kind: str, filed_at: datetime, now: datetime,
                     profile: dict[str, Any]) -> Docket: ...


@dataclass
class Adapters:
    voice: VoiceRobot
    human: CallCentre
    eservice: ElectronicService
    skip_trace: SkipTracer
    court: CourtFiling = None  # type: ignore[assignment]  # filled with the simulated court when omitted
    post: PostalService = None  # type: ignore[assignment]  # filled with the simulated post when omitted

    def __post_init__(self) -> None:
        if self.court is None:
            self.court = SimulatedCourt()
        if self.post is None:
            self.post = SimulatedPost()

    def keep_ledger(self, ledger: DialLedger) -> None:
        """Give the simulated call adapters that have none this ledger (the
        worker's database: it outlives the process)."""
        for adapter in (self.voice, self.human):
            if isinstance(adapter, SimulatedDialler) and adapter.ledger is None:
                adapter.ledger = ledger


# ---- the simulated defaults ---------------------------------------------------


def _ref(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _answers(profile: dict[str, Any], step: str) -> bool:
    answers = profile.get("answers", False)
    if isinstance(answers, list):
        return step in answers
    return bool(answers)


def _pays_here(profile: dict[str, Any], step: str) -> str | None:
    pays_after = profile.get("pays_after")
    aliases = {"voice": "voice_robot", "voice_robot": "voice_robot", "human": "human_call",
               "human_call": "human_call", "letter": "legal_notice", "legal_notice": "legal_notice"}
    if pays_after and aliases.get(str(pays_after)) == step:
        return str(profile.get("pays_amount", "all"))
    return None


def _digits(phone: Any) -> str:
    return "".join(c for c in str(phone or "") if c.isdigit())


def _share_of(key: str) -> float:
    """A number in [0, 1) fixed by the call's key: 'sometimes' that is the same on every run."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def _gets_through(profile: dict[str, Any], key: str, phone: str) -> bool | None:
    """The lab's reachability keys (lab/patterns.toml): ``answers_traced_only``
    (answers only the number the skip trace found), ``answers_hours`` [from,
    to) in the profile's ``timezone``, ``answer_rate`` (that share of calls,
    by the call's key).  None: the profile has none of them."""
    keys = ("answers_traced_only", "answers_hours", "answer_rate")
    if not any(k in profile for k in keys):
        return None
    if profile.get("answers_traced_only") and _digits(phone) != _digits(profile.get("skip_trace_phone")):
        return False
    hours = profile.get("answers_hours")
    if hours:
        local = activity_now().astimezone(ZoneInfo(str(profile.get("timezone") or "Asia/Shanghai")))
        if not int(hours[0]) <= local.hour < int(hours[1]):
            return False
    rate = profile.get("answer_rate")
    return rate is None or _share_of(key) < float(rate)


def _simulated_call(step: str, key: str, profile: dict[str, Any], script: str, phone: str = "") -> CallOutcome:
    through = _gets_through(profile, key, phone)
    pays = _pays_here(profile, step) if through is not False else None
    answered = through if through is not None else (_answers(profile, step) or pays is not None)
    promise = profile.get("promises_in_days") if answered else None
    if not answered:
        transcript = "[no answer]"
    else:
        agent = script
        if profile.get("agent_misconduct") and step == "human_call":
            agent += " If you do not pay we will contact your employer and your family."
        debtor = "I will pay on the date we agreed." if promise else "I understand."
        if pays:
            debtor = "I am paying now."
        transcript = f"AGENT: {agent}\nDEBTOR: {debtor}"
    return CallOutcome(
        answered=answered,
        recording_ref=_ref("rec", key),
        transcript=transcript,
        promises_in_days=int(promise) if promise else None,
        pays_amount=pays,
    )


class SimulatedDialler:
    """What the simulated robot and call centre share: a ledger of the calls
    placed (asked for the same key again, the first call's outcome, no second
    call) and its status look-up.  ``call_seconds``: how long a call lasts
    once placed (the ledger has it from the moment it rings)."""

    channel = "voice"
    ledger: DialLedger | None = None  # None: a ledger of this process, made at the first call
    call_seconds: float = 0.0

    def __init__(self, ledger: DialLedger | None = None, call_seconds: float = 0.0) -> None:
        self.ledger, self.call_seconds = ledger, call_seconds

    def _ledger(self) -> DialLedger:
        if self.ledger is None:
            self.ledger = MemoryLedger()
        return self.ledger

    async def _dial(self, step: str, key: str, phone: str, script: str, profile: dict[str, Any]) -> CallOutcome:
        outcome = await self._ledger().dial(key, self.channel, _simulated_call(step, key, profile, script, phone))
        if self.call_seconds:
            await asyncio.sleep(self.call_seconds)
        return outcome

    async def placed(self, *, key: str) -> CallOutcome | None:
        return await self._ledger().placed(key)


class SimulatedVoiceRobot(SimulatedDialler):
    async def call(self, *, key: str, phone: str, script: str, profile: dict[str, Any]) -> CallOutcome:
        return await self._dial("voice_robot", key, phone, script, profile)


class SimulatedCallCentre(SimulatedDialler):
    channel = "human"

    async def call(self, *, key: str, phone: str, team_id: str, script: str, profile: dict[str, Any]) -> CallOutcome:
        return await self._dial("human_call", key, phone, script, profile)


class SimulatedElectronicService:
    """Delivers, unless the profile says ``letter_undelivered`` (every try)
    or ``letter_undelivered_times: N`` (the first N tries)."""

    async def serve(self, *, key: str, phone: str, document: str, at: datetime, profile: dict[str, Any],
                    attempt: int = 1) -> ServiceReceipt:
        undelivered = bool(profile.get("letter_undelivered")) or attempt <= int(
            profile.get("letter_undelivered_times", 0))
        return ServiceReceipt(delivered=not undelivered, receipt_ref=_ref("esvc", key),
                              delivered_at=at + timedelta(seconds=1))


class SimulatedSkipTracer:
    async def lookup(self, *, key: str, debtor_id: str, profile: dict[str, Any]) -> TraceOutcome:
        phone = profile.get("skip_trace_phone")
        return TraceOutcome(found=bool(phone), phone=phone, source="simulated-registry")


HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _delay(profile: dict[str, Any], key: str, default: int, unit: timedelta) -> timedelta:
    """A profile's delay in ``unit``s (a JSON number, or a decimal string), to the second."""
    amount = Decimal(str(profile.get(key, default)))
    return timedelta(seconds=int(amount * int(unit.total_seconds())))


class SimulatedCourt:
    """A court that answers on the debtor profile's schedule (deterministic):

    - ``court_accepts_in_days`` (2): a payment order application is accepted
      (or rejected, with ``court_rejects_payment_order``) that many days after
      filing; the order is issued and served ``order_served_in_days`` (5)
      after acceptance; with ``objects_to_payment_order`` the debtor objects
      in writing ``objects_in_days`` (7) after service;
    - ``preservation_responds_in_hours`` (12): the ruling on a preservation
      application; ``preservation_granted`` (true) decides it.
    """

    async def file(self, *, key: str, kind: str, amount: str, currency: str, contract_id: str, at: datetime,
                   profile: dict[str, Any]) -> str:
        return _ref(f"court-{kind}", key)

    async def docket(self, *, ref: str, kind: str, filed_at: datetime, now: datetime,
                     profile: dict[str, Any]) -> Docket:
        def at(offset: timedelta) -> datetime | None:
            return filed_at + offset if filed_at + offset <= now else None

        if kind == "preservation":
            ruling = _delay(profile, "preservation_responds_in_hours", 12, HOUR)
            if profile.get("preservation_granted", True):
                return Docket(granted_at=at(ruling))
            return Docket(denied_at=at(ruling))
        decided = _delay(profile, "court_accepts_in_days", 2, DAY)
        if profile.get("court_rejects_payment_order"):
            return Docket(rejected_at=at(decided))
        served = decided + _delay(profile, "order_served_in_days", 5, DAY)
        objected = served + _delay(profile, "objects_in_days", 7, DAY)
        return Docket(
            accepted_at=at(decided), order_served_at=at(served),
            objected_at=at(objected) if profile.get("objects_to_payment_order") else None,
        )


class SimulatedPost:
    """Delivers ``post_delivered_in_days`` (3) days after posting, or returns
    the letter undeliverable with ``post_returned``."""

    async def post(self, *, key: str, address: str, document: str, at: datetime,
                   profile: dict[str, Any]) -> PostalReceipt:
        delivered = None if profile.get("post_returned") else at + _delay(profile, "post_delivered_in_days", 3, DAY)
        return PostalReceipt(tracking_ref=_ref("post", key), delivered_at=delivered)


def simulated_adapters() -> Adapters:
    return Adapters(SimulatedVoiceRobot(), SimulatedCallCentre(), SimulatedElectronicService(), SimulatedSkipTracer(),
                    SimulatedCourt(), SimulatedPost())


def load_adapters(spec: str | None = None) -> Adapters:
    """``simulated`` (default) or ``package.module:factory``."""
    spec = spec or "simulated"
    if spec == "simulated":
        return simulated_adapters()
    module, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module), attr or "adapters")
    adapters = factory()
    if not isinstance(adapters, Adapters):
        raise TypeError(f"{spec} returned {type(adapters).__name__}, expected Adapters")
    return adapters
