"""What crosses Temporal for the work desk (SPEC §8): the work item
activities' requests and results (``activities/desk_activities.py``), the
``work_item_done`` Update and its answer (``workflows/desk.py``).

Pseudonymous ids only: notes, numbers and names stay in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflows.model import ContactResult, Debtor


@dataclass
class OpenWorkItemRequest:
    """Open a work item once per ``key`` (workflow id, kind, step, attempt)."""

    key: str
    workflow_id: str
    account_id: str
    debtor: Debtor  # pseudonymous: the team is routed from its age and dialect
    kind: str  # human_call | court_entry | skip_trace_review
    team_id: str | None
    step: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    expects: list[str] = field(default_factory=list)  # the outcomes a person may enter (court_entry)
    attempt_no: int = 0  # human_call: the case's contact attempt (its contact_attempts key)


@dataclass
class WorkItemRef:
    id: int
    team_id: str | None
    status: str


@dataclass
class SettleWorkItemRequest:
    """Read a work item's outcome; ``close_as`` (expired | withdrawn) closes
    an item nobody completed (and frees the call slot its claim reserved)."""

    key: str
    close_as: str | None = None


@dataclass
class WorkItemSettled:
    """What a person entered, as the case may know it (no notes, no numbers)."""

    status: str  # open | claimed | done | expired
    outcome: str | None = None
    completed_by: str | None = None  # the operator (the case history's actor)
    contact: ContactResult | None = None  # human_call: the call's row, as contact_debtor answers it
    on: datetime | None = None  # court_entry: when the court decided
    reference: str | None = None  # court_entry: the court's reference


@dataclass
class WorkItemDone:
    """The desk tells the case a work item is done (Update ``work_item_done``);
    the outcome itself is read from the database."""

    key: str
    operator: str | None = None


@dataclass
class DeskEffect:
    """What the case did with a completed work item (the Update's answer)."""

    applied: bool
    stage: str
    outstanding: str
    next_action: str | None = None
    next_action_at: datetime | None = None
    paused_by: list[str] = field(default_factory=list)
    closed_reason: str | None = None
