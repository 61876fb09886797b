"""structlog JSON logging with personal data masked before output.

Masking runs as the last processor before rendering, so it covers bound
context, event text and exception text alike: phone numbers, PRC resident ID
numbers and names never reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_NAME_KEYS = {"name", "debtor_name", "full_name", "contact_name"}
_PHONE_KEYS = {"phone", "phone_number", "mobile", "found_phone"}
_ID_KEYS = {"id_number", "national_id", "id_card"}
_ADDRESS_KEYS = {"address"}

# 18-digit resident ID (last char may be X) and 15-digit legacy IDs.
_ID_RE = re.compile(r"(?<!\d)(\d{6})\d{8,11}([\dXx]{1})(?!\d)")
# Phone numbers: optional +country code, then 7–15 digits with optional separators.
_PHONE_RE = re.compile(r"(?<![\w.])(\+?\d[\d\s\-()]{6,18}\d)(?![\w.])")


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 4:
        return "***"
    return f"***{digits[-4:]}"


def mask_text(text: str) -> str:
    text = _ID_RE.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)

    def _phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        if len(digits) < 7 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", m.group(1)):
            return m.group(1)  # not a phone number (short number, a date)
        return mask_phone(digits)

    return _PHONE_RE.sub(_phone, text)


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    if not isinstance(value, str):
        return value
    k = key.lower()
    if k in _PHONE_KEYS:
        return mask_phone(value)
    if k in _NAME_KEYS:
        return (value[:1] + "**") if value else value
    if k in _ID_KEYS:
        return mask_text(value) if len(value) >= 15 else "***"
    if k in _ADDRESS_KEYS:
        return "[address]"
    return mask_text(value)


def mask_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: _mask_value(k, v) for k, v in event_dict.items()}


_configured = False


class _Stderr:
    """sys.stderr looked up at each write, so a replaced stream (tests, daemons) is followed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on stderr (or ``stream``); safe to call more than once."""
    global _configured
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream or _Stderr()),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(**bound: Any) -> Any:
    if not _configured:
        configure_logging()
    return structlog.get_logger("collections").bind(**bound)
