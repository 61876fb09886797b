"""What a part of a case needs from the case that holds it.

The case (:class:`workflows.case.DelinquentAccountWorkflow`) holds its parts
as objects — the legal track (:mod:`workflows.legal`), the negotiation
(:mod:`workflows.negotiation`), its events (:mod:`workflows.effects`) and the
service of its legal notice (:mod:`workflows.notice`) — and each part sees the case only through
this interface: the case's state, the account it is about, and the few
things a part may ask of it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from workflows.desk import Desk
    from workflows.model import CaseState, Debtor, DefaultEvent
    from workflows.status import ClosedReason, Stage


class CaseHost(Protocol):
    s: CaseState  # the case's state; a part changes its own share of it in place
    ev: DefaultEvent  # the default event that opened the case (account, currency, contract)
    debtor: Debtor
    desk: Desk  # the steps people do (SPEC §8): the legal track asks it for the court's answers

    async def record(self, note: str, *, actor: str | None = None) -> None:
        """Persist the case's state (one case_history row) and publish it;
        ``actor``: who sent the event that caused this step."""

    async def set_stage(self, stage: Stage, action: str | None, at: datetime | None,
                        note: str | None = None) -> None:
        """Show what the case waits for next, and when (``note``: record it too)."""

    async def close(self, reason: ClosedReason, detail: str, *, actor: str | None = None) -> None:
        """Close the case (the legal track, if any, is closed with it)."""

    async def wait_until(self, at: datetime | None, summary: str) -> bool:
        """Sleep on a durable timer until ``at`` (None = until an event);
        False when an event or Update came first."""

    def patched(self, patch_id: str) -> bool:
        """``workflow.patched`` through the run's epoch (:class:`workflows.patches.Patches`)."""

    def interrupted(self) -> bool:
        """An event or Update arrived that the case deals with before going on."""

    def replan(self) -> None:
        """Make the case re-plan before it goes ahead with what it waits for."""

    def interrupt_limitation(self, on: date) -> None:
        """A demand, promise, payment or court filing restarts the limitation period."""
