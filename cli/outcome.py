"""What an operator's event did, in words (and as JSON for scripts).

The case answers an event through its ``apply_event`` Update with an
:class:`~workflows.status.EventEffect`: applied, and what changed (a payment's
new balance, a suspension's end), or "no effect" and why. Exit codes: 0 when
it applied or was a duplicate event id (nothing to do twice), 1 when it was
rejected or changed nothing. Times are the debtor's, with the zone and year.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from cli import render
from cli.errors import FAILED, OK
from db.models import Case, Debtor
from db.session import Database
from intake.ingest import EventOutcome
from intake.protections import NO_EFFECT
from intake.regions import local_time


async def debtor_zone(db: Database, account_id: str | None) -> str | None:
    """The debtor's time zone for an account (None: not known here)."""
    if not account_id:
        return None
    async with db.sessions() as s:
        return await s.scalar(select(Debtor.timezone).join(Case, Case.debtor_id == Debtor.debtor_id)
                              .where(Case.account_id == account_id))


def changed_nothing(outcome: EventOutcome) -> bool:
    """Accepted but applied to nothing: the case (or the team, the region) said no effect.
    (A duplicate event id is not this: sending the same event twice is safe, exit 0.)"""
    return outcome.outcome == "no_effect" or (outcome.outcome == "accepted" and outcome.status == NO_EFFECT)


def _no_effect_text(outcome: EventOutcome) -> str:
    effect = getattr(outcome, "effect", None)
    text = (effect.effect if effect is not None else None) or outcome.reason or outcome.detail or "nothing changed"
    return text if text.startswith(("no effect", "refused")) else f"no effect: {text}"


def effect_lines(outcome: EventOutcome, tz: str | None) -> list[str]:
    """What changed, for people: the case's own words, then a payment's
    balance and the end of a protection it started (debtor-local) when the
    words do not say them."""
    effect = getattr(outcome, "effect", None)
    if effect is None:
        return [outcome.detail] if outcome.detail else []
    lines = [effect.effect]
    if effect.type == "payment.received" and effect.outstanding and "outstanding" not in effect.effect:
        lines.append(f"outstanding {effect.outstanding} {effect.currency}".rstrip())
    until: datetime | None = effect.until
    if until is not None and " until " not in f" {effect.effect}":
        lines.append(f"until {local_time(until, tz)}")
    if effect.closed_reason and "closed" not in effect.effect:
        lines.append(f"case closed: {effect.closed_reason}")
    return lines


def as_json(outcome: EventOutcome, event: dict) -> dict[str, Any]:
    """The outcome for scripts: UTC ISO times, the case's effect as it answered."""
    return {"effect": None, **outcome.as_dict(), "event": event}


def print_outcome(outcome: EventOutcome, event: dict, *, json_out: bool, tz: str | None = None) -> int:
    """Print what became of the event; its exit code."""
    nothing = changed_nothing(outcome)
    code = FAILED if outcome.outcome == "rejected" or nothing else OK
    if json_out:
        render.json_out(as_json(outcome, event))
        return code
    subject = event.get("account_id") or event.get("region") or event.get("team_id") or ""
    heading = f"{event['type']} for {subject}"
    if outcome.outcome == "rejected":
        render.error(f"rejected {heading}: {outcome.reason}")
    elif nothing:
        render.error(f"{heading}: {_no_effect_text(outcome)} (event {event['event_id']})")
    else:
        if outcome.outcome == "duplicate":
            was = f" ({outcome.status})" if outcome.status else ""
            render.say(f"duplicate: event {event['event_id']} was already ingested{was}; nothing changed", "yellow")
        else:
            render.say(f"accepted {heading} (event {event['event_id']}, by {event.get('actor')})", "green")
        for line in effect_lines(outcome, tz):
            render.say(f"  {line}")
    return code
