"""The input contract (SPEC §5): validation of one JSON line into an event.

Every rejection carries one clear, specific reason (the first problem found,
named by its field path).  Validation is strict: a number where a string is
due, a string where a bool is due, a float amount, a naive timestamp are all
wrong types, never coerced.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from db import limits
from workflows import rules

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_SURROGATE = re.compile("[\ud800-\udfff]")  # what undecodable bytes become (errors="surrogateescape")

MAX_LINE_BYTES = 64 * 1024  # far below Temporal's payload limits
MAX_NESTING = 6
MAX_SIMULATION_CHARS = 4096
# Far from any real date at both ends, yet clear of datetime overflow when a case adds
# years to it (the time-skipping test server itself runs decades ahead).
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)
# Numbers a simulated debtor's profile may hold, and their sane range.
SIMULATION_NUMBERS = {
    "promises_in_days": (1, 365), "court_accepts_in_days": (0, 365), "order_served_in_days": (0, 365),
    "objects_in_days": (0, 365), "preservation_responds_in_hours": (0, 24 * 30),
}


def _money(value: str) -> str:
    if not _DECIMAL.match(value):
        raise ValueError(f"must be a decimal string like \"1200.50\", got {value!r}")
    if value.startswith("-"):
        raise ValueError(f"must not be negative, got {value!r}")
    if rules.parse_money(value) is None:
        raise ValueError(f"is too large (at most {rules.MAX_MONEY_DIGITS} digits before the point): {value!r}")
    if Decimal(value) != Decimal(value).quantize(rules.CENT):
        raise ValueError(f"has fractions of a cent: {value!r}")
    return value


def _positive_money(value: str) -> str:
    _money(value)
    if Decimal(value) <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be ISO 8601 with a UTC offset")
    return value


def _tz(value: str) -> str:
    if not rules.is_valid_timezone(value):
        raise ValueError(f"unknown IANA time zone {value!r}")
    return value


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _printable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _sane_instant(value: datetime) -> datetime:
    if not EARLIEST.year <= value.year <= LATEST.year:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}, got {value.isoformat()}")
    return value


def _sane_date(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}, got {value}")
    return value


def _simulation(profile: dict[str, Any]) -> dict[str, Any]:
    """The simulated debtor's behaviour: bounded in size, known keys in range."""
    if len(json.dumps(profile)) > MAX_SIMULATION_CHARS:
        raise ValueError(f"is larger than {MAX_SIMULATION_CHARS} characters")
    for key, (low, high) in SIMULATION_NUMBERS.items():
        if key in profile:
            _bounded_number(key, profile[key], low, high)
    pays = profile.get("pays_amount")
    if pays is not None and pays != "all":
        if not isinstance(pays, str):
            raise ValueError("pays_amount must be \"all\" or a decimal string")
        _money(pays)
    return profile


def _bounded_number(key: str, value: Any, low: int, high: int) -> None:
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite() or not low <= number <= high:
        raise ValueError(f"{key} must be a number from {low} to {high}, got {value!r}")


def text(max_length: int, *, blank: bool = False) -> Any:
    """A string of at most ``max_length`` characters (db/limits.py), not blank unless allowed."""
    checks = [AfterValidator(_printable)] + ([] if blank else [AfterValidator(_nonblank)])
    return Annotated[StrictStr, Field(max_length=max_length), *checks]


Money = Annotated[StrictStr, Field(max_length=40), AfterValidator(_money)]
PositiveMoney = Annotated[StrictStr, Field(max_length=40), AfterValidator(_positive_money)]
Aware = Annotated[datetime, AfterValidator(_aware), AfterValidator(_sane_instant)]
Id = text(limits.ID)


class _Event(BaseModel):
    # Unknown fields are refused (SPEC §5): a misspelt field must not pass as absent.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    event_id: text(limits.EVENT_ID)
    occurred_at: Aware
    actor: text(limits.ACTOR) | None = None  # who sent it

    @property
    def account(self) -> str | None:
        return getattr(self, "account_id", None)


class DebtorIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    debtor_id: Id
    phone: text(limits.PHONE)
    timezone: Annotated[StrictStr, Field(max_length=limits.TIMEZONE), AfterValidator(_tz)] = rules.DEFAULT_TIMEZONE
    region: text(limits.REGION)
    age: Annotated[StrictInt, Field(ge=18, le=130)]
    dialect: text(limits.DIALECT, blank=True) | None = None
    monthly_disposable_income: Money | None = None
    address: text(limits.ADDRESS, blank=True) | None = None
    simulation: Annotated[dict[str, Any], AfterValidator(_simulation)] = Field(default_factory=dict)


class AccountDefaulted(_Event):
    type: Literal["account.defaulted"]
    account_id: Id
    amount_due: Money  # zero is caught by verification and closes the case invalid_debt
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
    due_date: Annotated[date, AfterValidator(_sane_date)]
    contract_id: text(limits.ID, blank=True)  # a blank one is caught by verification (invalid_debt)
    debtor: DebtorIn
    grade: Literal["I", "II", "III"] | None = None
    asset_flight_risk: StrictBool = False
    team_id: text(limits.ID) | None = None


class PaymentReceived(_Event):
    type: Literal["payment.received"]
    account_id: Id
    payment_id: text(limits.PAYMENT_ID)
    amount: PositiveMoney


class DisputeOpened(_Event):
    type: Literal["dispute.opened"]
    account_id: Id
    reason: text(limits.FREE_TEXT)


class DisputeResolved(_Event):
    type: Literal["dispute.resolved"]
    account_id: Id
    upheld: StrictBool


class SuspensionGranted(_Event):
    type: Literal["suspension.granted"]
    account_id: Id
    months: Annotated[StrictInt, Field(ge=1, le=24)]
    reason: text(limits.FREE_TEXT)


class SuspensionRevoked(_Event):
    type: Literal["suspension.revoked"]
    account_id: Id


class DisasterDeclared(_Event):
    type: Literal["disaster.declared"]
    region: text(limits.REGION)
    days: Annotated[StrictInt, Field(ge=1, le=366)] = 30


class ComplaintFiled(_Event):
    type: Literal["complaint.filed"]
    account_id: Id
    team_id: text(limits.ID)
    text: text(limits.FREE_TEXT, blank=True)


class TeamReviewCleared(_Event):
    type: Literal["team.review_cleared"]
    team_id: text(limits.ID)


class PlanAccepted(_Event):
    type: Literal["plan.accepted"]
    account_id: Id
    periods: Annotated[StrictInt, Field(ge=1, le=12)]


class CaseRecalled(_Event):
    type: Literal["case.recalled"]
    account_id: Id


EVENT_MODELS = (
    AccountDefaulted, PaymentReceived, DisputeOpened, DisputeResolved, SuspensionGranted, SuspensionRevoked,
    DisasterDeclared, ComplaintFiled, TeamReviewCleared, PlanAccepted, CaseRecalled,
)
EVENT_TYPES = {m.model_fields["type"].annotation.__args__[0]: m for m in EVENT_MODELS}
Event = Union[EVENT_MODELS]  # type: ignore[valid-type]
_ADAPTERS = {t: TypeAdapter(m) for t, m in EVENT_TYPES.items()}


class EventRejected(ValueError):
    def __init__(self, reason: str, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


def _describe(err: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"missing field {path}"
    if kind == "value_error":
        return f"invalid {path}: {err['msg'].removeprefix('Value error, ')}"
    if kind == "extra_forbidden":
        return f"unknown field {path}"
    if kind.endswith("_type") or kind in {"is_instance_of", "model_type", "dict_type"}:
        return f"wrong type for {path}: {err['msg'].lower()}"
    return f"invalid {path}: {err['msg']}"


def _too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _load(line: str) -> dict[str, Any]:
    """The line as a JSON object, within the size and shape an event may have."""
    if len(line) > MAX_LINE_BYTES or len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
        raise EventRejected(f"line is longer than {MAX_LINE_BYTES // 1024} KiB")
    if _SURROGATE.search(line):
        raise EventRejected("not valid UTF-8")
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise EventRejected(f"not valid JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise EventRejected(f"nested more than {MAX_NESTING} levels deep") from None
    if not isinstance(raw, dict):
        raise EventRejected(f"an event must be a JSON object, got {type(raw).__name__}")
    if _too_deep(raw):
        raise EventRejected(f"nested more than {MAX_NESTING} levels deep")
    return raw


def parse_event(line: str) -> _Event:
    """One JSON line → a validated event, or :class:`EventRejected` with the reason."""
    raw = _load(line)
    event_id = raw.get("event_id")
    if not (isinstance(event_id, str) and 0 < len(event_id) <= limits.EVENT_ID and "\x00" not in event_id):
        event_id = None  # not one to file a rejection under
    kind = raw.get("type")
    if kind is None:
        raise EventRejected("missing field type", event_id)
    if not isinstance(kind, str):
        raise EventRejected("wrong type for type: must be a string", event_id)
    if kind not in _ADAPTERS:
        raise EventRejected(f"unknown event type {kind[:64]!r}", event_id)
    try:
        return _ADAPTERS[kind].validate_json(line, strict=True)
    except ValidationError as e:
        raise EventRejected(_describe(e.errors()[0]), event_id) from None


def storable(raw_line: str, limit: int = 10_000) -> str:
    """A rejected line as it can be kept in any database and file: at most
    ``limit`` characters, NUL and undecodable bytes written as escapes."""
    return raw_line[:limit].replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def canonical(raw_line: str) -> str:
    return json.dumps(json.loads(raw_line), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
