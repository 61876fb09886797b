"""Protections (SPEC §4): what pauses a case, as functions of its state.

A disaster grace, a debt suspension, a dispute or a suspended team each add
a :class:`~workflows.model.Pause` to ``CaseState.pauses``; pauses stack, and
the case resumes only when none is left.  The ladder's clock stands still
meanwhile (``paused_seconds``), and a disaster in the limitation period's
last six months suspends it (PRC Civil Code art. 194).

Nothing here waits or does I/O: each function takes the instant it judges,
so the case calls them with ``workflow.now()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time

from workflows import rules
from workflows.model import CaseEvent, CaseState, Pause
from workflows.status import PauseKind

# The events that add or release a protection (see apply_event).
EVENT_TYPES = frozenset({
    "dispute.opened", "dispute.resolved", "suspension.granted", "suspension.revoked",
    "disaster.declared", "team.suspended", "team.review_cleared",
})


def paused_by(s: CaseState, quiet_hours: bool) -> list[PauseKind]:
    """What holds the case now, in the order of SPEC §6 (quiet hours first)."""
    kinds = sorted({PauseKind(p.kind) for p in s.pauses}, key=rules.PROTECTIONS.index)
    return ([PauseKind.QUIET_HOURS] if quiet_hours else []) + kinds


def add_pause(s: CaseState, pause: Pause, now: datetime, tz: str) -> None:
    """Hold the case (a pause already over is ignored; one of the same kind
    and ref is replaced)."""
    if pause.until is not None and pause.until <= now:
        return
    if not s.pauses:
        s.paused_since = now
    s.pauses = [p for p in s.pauses if (p.kind, p.ref) != (pause.kind, pause.ref)] + [pause]
    if pause.kind == PauseKind.DISASTER_GRACE and pause.until is not None:
        # force majeure in the last 6 months suspends the limitation period
        s.limitation_expires_on = rules.suspend_limitation(
            date.fromisoformat(s.limitation_expires_on), rules.local_date(now, tz), rules.local_date(pause.until, tz),
        ).isoformat()


def remove_pauses(s: CaseState, keep: Callable[[Pause], bool], now: datetime) -> bool:
    """Keep only the pauses ``keep`` accepts; True when any was removed.
    When the last one goes, the time paused is added to the ladder's clock."""
    before = len(s.pauses)
    s.pauses = [p for p in s.pauses if keep(p)]
    if not s.pauses and s.paused_since is not None:
        s.paused_seconds += int((now - s.paused_since).total_seconds())
        s.paused_since = None
        s.resumed_at = now
    return len(s.pauses) != before


def release_expired(s: CaseState, now: datetime) -> bool:
    return remove_pauses(s, lambda p: p.until is None or p.until > now, now)


def release_all(s: CaseState, now: datetime) -> None:
    remove_pauses(s, lambda p: False, now)


def suspension(months: int, reason: str, now: datetime, tz: str) -> Pause:
    """A debt suspension from now to the debtor-local midnight ``months`` calendar months on."""
    until = rules.local_instant(rules.add_months(rules.local_date(now, tz), months), time(0, 0), tz)
    return Pause(PauseKind.SUSPENSION, "suspension", now, until, reason or None)


def earliest_end(s: CaseState) -> datetime | None:
    """When the first timed protection ends (None: each waits to be released)."""
    timed = [p.until for p in s.pauses if p.until is not None]
    return min(timed) if timed else None


def holding(s: CaseState) -> str:
    """The protections in force, in words (for timer summaries)."""
    return ", ".join(f"{p.kind} until {p.until:%Y-%m-%d}" if p.until else f"{p.kind} until released"
                     for p in s.pauses)


def apply_event(s: CaseState, ev: CaseEvent, now: datetime, tz: str) -> str | None:
    """Apply a protection event (one of EVENT_TYPES); returns a note for the
    record, None when it changed nothing."""
    d = ev.data
    if ev.type == "dispute.opened":
        add_pause(s, Pause(PauseKind.DISPUTE, "dispute", now, None, d.get("reason")), now, tz)
        return "dispute opened: paused"
    if ev.type == "dispute.resolved":  # an upheld dispute closes the case before it gets here
        return "dispute rejected: resumed" if remove_pauses(s, lambda p: p.kind != PauseKind.DISPUTE, now) else None
    if ev.type == "suspension.granted":
        if rules.suspension_refusal(d.get("months")):
            return None  # validated at ingest; never trust a payload blindly
        add_pause(s, suspension(d["months"], d.get("reason", ""), now, tz), now, tz)
        return f"debt suspension granted for {d['months']} months"
    if ev.type == "suspension.revoked":
        revoked = remove_pauses(s, lambda p: p.kind != PauseKind.SUSPENSION, now)
        return "debt suspension revoked" if revoked else None
    if ev.type == "disaster.declared":
        until = datetime.fromisoformat(d["until"])
        add_pause(s, Pause(PauseKind.DISASTER_GRACE, d["region"], now, until, f"disaster in {d['region']}"), now, tz)
        return f"disaster grace in {d['region']} until {until:%Y-%m-%d}"
    if ev.type == "team.suspended":
        add_pause(s, Pause(PauseKind.TEAM_SUSPENDED, d["team_id"], now, None, "complaint threshold exceeded"), now, tz)
        return f"team {d['team_id']} suspended: contacts paused"
    if ev.type == "team.review_cleared":
        team = d["team_id"]
        cleared = remove_pauses(s, lambda p: not (p.kind == PauseKind.TEAM_SUSPENDED and p.ref == team), now)
        return f"team {team} cleared by review: resumed" if cleared else None
    return None
