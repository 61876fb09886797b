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

from workflows import rules

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


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


Money = Annotated[StrictStr, AfterValidator(_money)]
PositiveMoney = Annotated[StrictStr, AfterValidator(_positive_money)]
Aware = Annotated[datetime, AfterValidator(_aware)]
Id = Annotated[StrictStr, AfterValidator(_nonblank), Field(max_length=64)]


class _Event(BaseModel):
    # Unknown fields are refused (SPEC §5): a misspelt field must not pass as absent.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    event_id: Annotated[StrictStr, AfterValidator(_nonblank), Field(max_length=128)]
    occurred_at: Aware
    actor: Annotated[StrictStr, AfterValidator(_nonblank), Field(max_length=128)] | None = None  # who sent it

    @property
    def account(self) -> str | None:
        return getattr(self, "account_id", None)


class DebtorIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    debtor_id: Id
    phone: Annotated[StrictStr, AfterValidator(_nonblank)]
    timezone: Annotated[StrictStr, AfterValidator(_tz)] = rules.DEFAULT_TIMEZONE
    region: Annotated[StrictStr, AfterValidator(_nonblank)]
    age: Annotated[StrictInt, Field(ge=18, le=130)]
    dialect: StrictStr | None = None
    monthly_disposable_income: Money | None = None
    address: StrictStr | None = None
    simulation: dict[str, Any] = Field(default_factory=dict)


class AccountDefaulted(_Event):
    type: Literal["account.defaulted"]
    account_id: Id
    amount_due: Money  # zero is caught by verification and closes the case invalid_debt
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
    due_date: date
    contract_id: StrictStr
    debtor: DebtorIn
    grade: Literal["I", "II", "III"] | None = None
    asset_flight_risk: StrictBool = False
    team_id: StrictStr | None = None


class PaymentReceived(_Event):
    type: Literal["payment.received"]
    account_id: Id
    payment_id: Annotated[StrictStr, AfterValidator(_nonblank)]
    amount: PositiveMoney


class DisputeOpened(_Event):
    type: Literal["dispute.opened"]
    account_id: Id
    reason: Annotated[StrictStr, AfterValidator(_nonblank)]


class DisputeResolved(_Event):
    type: Literal["dispute.resolved"]
    account_id: Id
    upheld: StrictBool


class SuspensionGranted(_Event):
    type: Literal["suspension.granted"]
    account_id: Id
    months: Annotated[StrictInt, Field(ge=1, le=24)]
    reason: Annotated[StrictStr, AfterValidator(_nonblank)]


class SuspensionRevoked(_Event):
    type: Literal["suspension.revoked"]
    account_id: Id


class DisasterDeclared(_Event):
    type: Literal["disaster.declared"]
    region: Annotated[StrictStr, AfterValidator(_nonblank)]
    days: Annotated[StrictInt, Field(ge=1, le=366)] = 30


class ComplaintFiled(_Event):
    type: Literal["complaint.filed"]
    account_id: Id
    team_id: Annotated[StrictStr, AfterValidator(_nonblank)]
    text: StrictStr


class TeamReviewCleared(_Event):
    type: Literal["team.review_cleared"]
    team_id: Annotated[StrictStr, AfterValidator(_nonblank)]


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


def parse_event(line: str) -> _Event:
    """One JSON line → a validated event, or :class:`EventRejected` with the reason."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise EventRejected(f"not valid JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(raw, dict):
        raise EventRejected(f"an event must be a JSON object, got {type(raw).__name__}")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    kind = raw.get("type")
    if kind is None:
        raise EventRejected("missing field type", event_id)
    if not isinstance(kind, str):
        raise EventRejected("wrong type for type: must be a string", event_id)
    if kind not in _ADAPTERS:
        raise EventRejected(f"unknown event type {kind!r}", event_id)
    try:
        return _ADAPTERS[kind].validate_json(line, strict=True)
    except ValidationError as e:
        raise EventRejected(_describe(e.errors()[0]), event_id) from None


def canonical(raw_line: str) -> str:
    return json.dumps(json.loads(raw_line), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
