"""What a person enters at the desk, and the desk's refusals (see :mod:`desk.store`).

Pure: the errors a person reads, the outcomes each kind of task takes, the
parsing of ids and amounts, and the one-line accounts of what was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from workflows import rules
from workflows.work_items import DeskEffect
from workflows.presentation import local_stamp

if TYPE_CHECKING:
    from desk.store import Task

OUTCOMES: dict[str, tuple[str, ...]] = {
    "human_call": ("answered", "no_answer", "wrong_number", "refused"),
    "court_entry": ("accepted", "rejected", "order_served", "objected", "granted", "denied"),
    "skip_trace_review": ("found", "not_found"),
    "compliance_review": ("cleared", "upheld"),
}


class DeskError(Exception):
    """An action refused; ``message`` is the one line a person reads.  Nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DeskError):
    """No such task, or no such operator."""


class Forbidden(DeskError):
    """The operator's role or teams do not allow it."""


class Conflict(DeskError):
    """The task's state does not allow it (claimed by another, expired, done, caps used up)."""


class Invalid(DeskError):
    """The input is wrong (an outcome not for this kind, a date in the past, not an amount)."""


@dataclass(frozen=True)
class Entry:
    """What a person enters to complete a task."""

    outcome: str
    promise_date: date | None = None  # human_call, answered: the debtor promises to pay by
    paid: str | None = None  # human_call: paid during the call (decimal string)
    note: str | None = None  # screened; stays in the database
    phone: str | None = None  # skip_trace_review, found: the new number
    reference: str | None = None  # court_entry: the court's reference
    on: date | None = None  # court_entry: the day the court decided (default: today)



def parse_id(task_id: int | str) -> int:
    text = str(task_id).strip()
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"no task {task_id!r}: a task id is a number (see `collections tasks list`)")
    return int(text)


def parse_amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    value = rules.parse_money(str(text).strip())
    if value is None or value <= 0 or value != value.quantize(rules.CENT):
        raise Invalid(f"payment {text!r} is not accepted: a positive decimal amount with at most 2 decimals, "
                      "like 200.00")
    return value



def describe(task: "Task", entry: Entry) -> str:
    """What was recorded, in one line."""
    if task.kind == "human_call":
        parts = [f"call recorded: {entry.outcome}"]
        if entry.promise_date:
            parts.append(f"promise to pay by {entry.promise_date}")
        if entry.paid:
            parts.append(f"paid {entry.paid}")
        return "; ".join(parts)
    if task.kind == "skip_trace_review":
        return "new number on file" if entry.outcome == "found" else "no number found"
    if task.kind == "court_entry":
        return f"court answer recorded: {entry.outcome} ({entry.reference})"
    return f"review {entry.outcome}"


def case_effect(effect: DeskEffect, tz: str | None) -> str:
    """The case's answer in one line."""
    if effect.closed_reason:
        return f"case closed: {effect.closed_reason}"
    when = f" at {local_stamp(effect.next_action_at, tz or 'UTC')}" if effect.next_action_at else ""
    paused = f" (paused: {', '.join(effect.paused_by)})" if effect.paused_by else ""
    return f"case now {effect.stage}, outstanding {effect.outstanding}; next: {effect.next_action or '-'}{when}{paused}"
