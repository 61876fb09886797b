"""structlog JSON logging with personal data masked before output.

One JSON object per line on stderr.  Masking runs as the last processor
before rendering, so it covers bound context, event text and exception text
alike: phone numbers, PRC resident ID numbers, names and addresses never
reach a log line.  Inside an activity the case (workflow id), the activity
and its Temporal retry attempt are bound automatically, next to the
``account_id``, ``step`` and ``attempt`` (the contact attempt) that
activities bind themselves.

Standard-library loggers (the Temporal SDK's, SQLAlchemy's) go through the
same masking and JSON rendering.  The SDK's own loggers stay at WARNING, so
a worker writes one line per step it takes, not a line per poll; only the
workflow's own ``workflow.logger`` lines follow ``LOG_LEVEL`` (the SDK
already drops them while a case replays).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_NAME_KEYS = {
    "name", "names", "debtor_name", "full_name", "contact_name", "first_name", "last_name", "given_name",
    "family_name", "surname", "holder_name", "account_holder",
}
_PHONE_KEYS = {
    "phone", "phones", "phone_number", "mobile", "mobile_phone", "tel", "telephone", "found_phone",
    "contact_phone",
}
_ID_KEYS = {"id_number", "national_id", "id_card", "id_card_number", "id_no", "resident_id", "identity_number"}
_ADDRESS_KEYS = {"address", "home_address", "work_address", "email", "e_mail", "email_address"}

# 18-digit resident ID (last char may be X) and 15-digit legacy IDs.
_ID_RE = re.compile(r"(?<!\d)(\d{6})\d{8,11}([\dXx]{1})(?!\d)")
# Phone numbers: optional +country code, then 7–15 digits with optional separators.
_PHONE_RE = re.compile(r"(?<![\w.])(\+?\d[\d\s\-()]{6,18}\d)(?![\w.])")
# Dotted phone numbers (+86.138.0013.8501, 138.0013.8501): three or more groups;
# told apart from amounts, dates and addresses of machines by their digit count.
_DOTTED_PHONE_RE = re.compile(r"(?<![\w.])(\+?\d{1,4}(?:\.\d{2,5}){2,4})(?!\.?\w)")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

# Loggers of libraries that would otherwise log per poll or per statement.
QUIET_LOGGERS = ("temporalio", "sqlalchemy", "aiosqlite", "asyncio", "alembic")


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 4:
        return "***"
    return f"***{digits[-4:]}"


def mask_text(text: str) -> str:
    text = _ID_RE.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _EMAIL_RE.sub("[email]", text)

    def _dotted(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        return mask_phone(digits) if len(digits) >= 10 or (m.group(1).startswith("+") and len(digits) >= 7) \
            else m.group(1)

    text = _DOTTED_PHONE_RE.sub(_dotted, text)

    def _phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        if len(digits) < 7 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", m.group(1)):
            return m.group(1)  # not a phone number (short number, a date)
        return mask_phone(digits)

    return _PHONE_RE.sub(_phone, text)


def mask_name(name: str) -> str:
    return (name.strip()[:1] + "**") if name.strip() else name


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_mask_value(key, v) for v in value]
    if not isinstance(value, str):
        if isinstance(value, int) and key.lower() in _PHONE_KEYS | _ID_KEYS:
            return _mask_value(key, str(value))
        return value
    k = key.lower()
    if k in _PHONE_KEYS:
        return mask_phone(value)
    if k in _NAME_KEYS:
        return mask_name(value)
    if k in _ID_KEYS:
        return mask_text(value) if len(value) >= 15 else "***"
    if k in _ADDRESS_KEYS:
        return "[address]"
    return mask_text(value)


def mask_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: _mask_value(k, v) for k, v in event_dict.items()}


def add_case_context(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Bind the case: inside an activity from Temporal's activity info, else from ``account_id``."""
    try:
        from temporalio import activity

        if activity.in_activity():
            info = activity.info()
            event_dict.setdefault("case_id", info.workflow_id)
            event_dict.setdefault("activity", info.activity_type)
            event_dict.setdefault("activity_attempt", info.attempt)
    except Exception:  # logging never fails a step
        pass
    account = event_dict.get("account_id")
    if isinstance(account, str) and account and "case_id" not in event_dict:
        event_dict["case_id"] = f"case-{account}"
    return event_dict


def _from_stdlib(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A standard-library record (e.g. the SDK's): its logger name, and the
    case from the SDK's ``temporal_workflow`` / ``temporal_activity`` extras."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is None:
        return event_dict
    event_dict.setdefault("logger", record.name)
    for extra in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, extra, None)
        if isinstance(info, dict):
            if info.get("workflow_id"):
                event_dict.setdefault("case_id", info["workflow_id"])
            if info.get("activity_type"):
                event_dict.setdefault("activity", info["activity_type"])
            if info.get("attempt") is not None and extra == "temporal_activity":
                event_dict.setdefault("activity_attempt", info["attempt"])
    return event_dict


_configured = False


class _Stderr:
    """sys.stderr looked up at each write, so a replaced stream (tests, daemons) is followed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _JsonHandler(logging.StreamHandler):
    """Marks the root handler this module installs, so reconfiguring replaces it."""


def _shared_processors() -> list[Any]:
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on stderr (or ``stream``); safe to call more than once."""
    global _configured
    numeric = getattr(logging, str(level).upper(), logging.INFO)
    out = stream or _Stderr()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *_shared_processors(),
            add_case_context,
            structlog.processors.format_exc_info,
            mask_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Standard-library loggers: the same JSON, the same masking.
    handler = _JsonHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), _from_stdlib, structlog.processors.format_exc_info],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # The workflow's own lines (never written during replay) follow LOG_LEVEL;
    # their case id travels as an extra, not appended to the message.
    logging.getLogger("temporalio.workflow").setLevel(numeric)
    try:
        from temporalio import workflow

        workflow.logger.workflow_info_on_message = False
    except Exception:
        pass
    _configured = True


def get_logger(**bound: Any) -> Any:
    if not _configured:
        configure_logging()
    return structlog.get_logger("collections").bind(**bound)


def temporal_runtime(metrics_bind: str | None = None) -> Any:
    """A Temporal runtime whose Core (Rust) log lines go through these JSON
    logs, masked, instead of straight to the console in Core's own format.
    Core keeps WARN and above, like the SDK's Python loggers. With
    ``metrics_bind`` (HOST:PORT), Core serves the SDK's Prometheus metrics there."""
    from temporalio.runtime import (LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig,
                                    TelemetryFilter)

    metrics = PrometheusConfig(bind_address=metrics_bind, counters_total_suffix=True, unit_suffix=True,
                               durations_as_seconds=True) if metrics_bind else None
    return Runtime(telemetry=TelemetryConfig(metrics=metrics, logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"), append_target_to_name=False),
    )))
