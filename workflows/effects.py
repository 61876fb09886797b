"""What an event does to its case (SPEC §5): it changes the case only when it applies.

A dispute resolution applies to an open dispute, a revocation to a suspension
in force, a review clearance to a suspended team, a recall (or anything but a
payment) to an open case, a payment to a ``payment_id`` not recorded before
for the account.  An event that does not apply changes nothing: its effect,
``"no effect: <reason>"``, is recorded in the case history and on the
event's ``ingested_events`` row, as is what an applied event did.  A request
the case does not grant (a second installment plan, a suspension of 30
months) is ``"refused: <reason>"``, recorded the same way.

Events reach the case as ``event`` signals (file ingest, through the case's
inbox) or through the ``apply_event`` Update (operators), whose validator
refuses what does not apply so that the operator gets the reason at once.
Both apply through :meth:`CaseEvents.apply`, one event at a time (a lock the
case's own payments, from calls, take too).  A payment's id is checked
against the ids the case recorded, and the ``payments`` table is the
backstop: ``record_payment`` reports an id recorded before by another
request, and the balance is not lowered.

Histories from before this (``patches.EVENT_EFFECTS``) replay through
:meth:`CaseEvents.legacy`, the way events were applied then.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import patches, presentation, protections, rules
    from workflows.host import CaseHost
    from workflows.model import CaseEvent, CaseState, EventEffectRecord, PaymentRecord
    from workflows.negotiation import Negotiation, accepted_note, plan_refusal
    from workflows.options import DB_ACTIVITY
    from workflows.status import ClosedReason, EventEffect, Grade, PauseKind

SEEN_EVENT_IDS_KEPT = 500
PAYMENT = "payment.received"
NO_EFFECT, REFUSED = "no effect", "refused"
# The events a case acts on (others, e.g. complaints, are the intake's).
CASE_EVENT_TYPES = frozenset({PAYMENT, "case.recalled", "plan.accepted"}) | protections.EVENT_TYPES
RELEASES = frozenset({"dispute.resolved", "suspension.revoked", "team.review_cleared"})


@dataclass(frozen=True)
class Refusal:
    """Why an event does not apply: ``no effect`` (there is nothing for it to
    act on) or ``refused`` (a request the case does not grant)."""

    kind: str  # NO_EFFECT | REFUSED
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


def in_force(s: CaseState, kind: PauseKind, now: datetime, ref: str | None = None) -> bool:
    return any(p.kind == kind and (ref is None or p.ref == ref) and (p.until is None or p.until > now)
               for p in s.pauses)


def refusal(s: CaseState, ev: CaseEvent, now: datetime) -> Refusal | None:
    """Why ``ev`` does not apply to the case now (None: it applies)."""
    d = ev.data
    if ev.type == PAYMENT:  # a closed case still records a late payment
        known = d.get("payment_id") in s.payment_ids
        return Refusal(NO_EFFECT, f"payment {d.get('payment_id')} was already recorded") if known else None
    if s.closed_reason is not None:
        return Refusal(NO_EFFECT, f"case is closed ({s.closed_reason})")
    reason = _no_effect(s, ev, now)
    if reason:
        return Refusal(NO_EFFECT, reason)
    refused = (rules.suspension_refusal(d.get("months")) if ev.type == "suspension.granted"
               else plan_refusal(s, d.get("periods")) if ev.type == "plan.accepted" else None)
    return Refusal(REFUSED, refused) if refused else None


def _no_effect(s: CaseState, ev: CaseEvent, now: datetime) -> str | None:
    d, open_dispute = ev.data, in_force(s, PauseKind.DISPUTE, now)
    if ev.type not in CASE_EVENT_TYPES:
        return f"{ev.type} does not apply to a case"
    if ev.type == "dispute.opened" and open_dispute:
        return "a dispute is already open"
    if ev.type == "dispute.resolved" and not open_dispute:
        return "no open dispute"
    if ev.type == "suspension.revoked" and not in_force(s, PauseKind.SUSPENSION, now):
        return "no suspension in force"
    if ev.type == "team.review_cleared" and not in_force(s, PauseKind.TEAM_SUSPENDED, now, d.get("team_id")):
        return f"team {d.get('team_id')} is not suspended for this case"
    if ev.type == "disaster.declared" and datetime.fromisoformat(d["until"]) <= now:
        return f"the disaster grace in {d.get('region')} has ended"
    return None


def effect_status(effect: EventEffect) -> str:
    """The event's ``ingested_events.status``: applied | no_effect | refused."""
    if effect.applied:
        return "applied"
    return "refused" if effect.effect.startswith(REFUSED) else "no_effect"


class CaseEvents:
    """Applies the events of a case, one at a time, and records what each did."""

    def __init__(self, case: CaseHost, negotiation: Negotiation) -> None:
        self.case = case
        self.negotiation = negotiation
        self.lock = asyncio.Lock()  # one event (or a call's payment) at a time

    def seen(self, ev: CaseEvent) -> bool:
        """Whether the case has had this event already; notes it as had."""
        s = self.case.s
        if ev.event_id in s.seen_event_ids:
            return True
        s.seen_event_ids = (s.seen_event_ids + [ev.event_id])[-SEEN_EVENT_IDS_KEPT:]
        return False

    def refusal(self, ev: CaseEvent) -> Refusal | None:
        return refusal(self.case.s, ev, workflow.now())

    async def apply(self, ev: CaseEvent) -> EventEffect:
        """Apply ``ev`` if it applies now; record what it did (or why not)."""
        async with self.lock:
            why = self.refusal(ev)
            if why is None:
                effect = await self._apply(ev)
            else:
                effect = self._effect(ev, False, str(why))
                await self.case.record(f"{ev.type} {ev.event_id}: {why}", actor=ev.actor)
            if ev.data.get("account_id") == self.case.ev.account_id:  # not a region's or team's, fanned out
                await workflow.execute_activity_method(
                    CaseActivities.record_event_effect,
                    EventEffectRecord(ev.event_id, effect_status(effect), effect.effect, self.case.ev.account_id),
                    summary=f"{ev.type}: {effect.effect}"[:200], **DB_ACTIVITY,
                )
        return effect

    async def call_payment(self, payment_id: str, amount: Decimal, at: datetime) -> None:
        """A payment made during a call (the contact's result carries it)."""
        async with self.lock:
            await self._payment(payment_id, amount, at, source="call", key=payment_id, actor=None)

    async def _apply(self, ev: CaseEvent) -> EventEffect:
        case, d = self.case, ev.data
        if ev.type == PAYMENT:
            source = "event" if case.s.closed_reason is None else "late"
            applied, text = await self._payment(d["payment_id"], Decimal(d["amount"]), ev.occurred_at, source=source,
                                                key=ev.event_id, actor=ev.actor)
            if applied and source == "late":
                await case.record(text, actor=ev.actor)  # a closed case's history shows it too
            return self._effect(ev, applied, text)
        if ev.type == "case.recalled":
            await case.close(ClosedReason.RECALLED, "creditor withdrew the case", actor=ev.actor)
            return self._effect(ev, True, "case recalled: closed recalled")
        if ev.type == "dispute.resolved" and d.get("upheld"):
            await case.close(ClosedReason.DISPUTE_UPHELD, "dispute upheld", actor=ev.actor)
            return self._effect(ev, True, "dispute upheld: closed dispute_upheld")
        if ev.type == "plan.accepted":
            plan = await self.negotiation.accept(d["periods"], actor=ev.actor)
            return self._effect(ev, True, accepted_note(plan, case.ev.currency))
        return await self._protection(ev)

    async def _protection(self, ev: CaseEvent) -> EventEffect:
        """A protection starts or ends (dispute, suspension, disaster, team)."""
        case, s = self.case, self.case.s
        text = protections.apply_event(s, ev, workflow.now(), case.debtor.timezone)
        until = None
        if ev.type == "suspension.granted":
            until = next(p.until for p in s.pauses if p.kind == PauseKind.SUSPENSION)
            text += f" until {presentation.local_stamp(until, case.debtor.timezone)}"
        elif ev.type == "disaster.declared":
            until = datetime.fromisoformat(ev.data["until"])
        elif ev.type in RELEASES and s.pauses:
            text += f"; still paused by {', '.join(protections.paused_by(s, quiet_hours=False))}"
        await case.record(text, actor=ev.actor)
        return self._effect(ev, True, text, until=until)

    async def _payment(self, payment_id: str, amount: Decimal, at: datetime, *, source: str, key: str | None,
                       actor: str | None) -> tuple[bool, str]:
        """Record a payment and lower the balance; (applied, what it did)."""
        case, s = self.case, self.case.s
        currency, closed = case.ev.currency, s.closed_reason
        outstanding = Decimal(s.outstanding) if closed else max(Decimal(s.outstanding) - amount, Decimal(0))
        result = await workflow.execute_activity_method(
            CaseActivities.record_payment,
            PaymentRecord(account_id=case.ev.account_id, payment_id=payment_id, amount=str(amount), currency=currency,
                          received_at=at, source=source, outstanding_after=str(outstanding), request_key=key),
            summary=f"payment {amount} {currency}", **DB_ACTIVITY,
        )
        s.payment_ids.append(payment_id)
        paid = f"payment {payment_id} of {amount} {currency}"
        if result is not None and not result.recorded:  # None: a history from before the backstop answered
            text = f"{NO_EFFECT}: payment {payment_id} was already recorded"
            await case.record(text, actor=actor)
            return False, text
        if closed is not None:
            return True, f"late {paid} recorded; the case stays closed ({closed})"  # and does nothing else
        s.outstanding = str(outstanding)
        s.last_response_at = workflow.now()
        await self.negotiation.payment(amount, outstanding)
        case.interrupt_limitation(rules.local_date(workflow.now(), case.debtor.timezone))  # a payment restarts it
        s.grade = Grade(rules.regrade(s.grade, answered=False, promised=False, paid=True, unanswered_in_a_row=0))
        text = f"{paid} recorded; outstanding {outstanding.quantize(rules.CENT)} {currency}"
        if outstanding == 0:
            await case.close(ClosedReason.PAID, f"paid in full; last payment {payment_id}", actor=actor)
            return True, f"{text}; closed paid"
        await case.record(text, actor=actor)
        return True, text

    def _effect(self, ev: CaseEvent, applied: bool, text: str, until: datetime | None = None) -> EventEffect:
        s = self.case.s
        return EventEffect(
            event_id=ev.event_id, type=ev.type, applied=applied, effect=text, outstanding=s.outstanding,
            currency=self.case.ev.currency, closed_reason=s.closed_reason,
            paused_by=protections.paused_by(s, quiet_hours=False), until=until,
            plan=presentation.plan_status(s) if ev.type == "plan.accepted" and applied else None,
        )

    async def legacy(self, ev: CaseEvent) -> None:
        """How an event was applied before ``patches.EVENT_EFFECTS`` (whether
        it applied or not); histories from then replay through here."""
        case, s, d = self.case, self.case.s, ev.data
        if ev.type == PAYMENT:
            await self._payment(d["payment_id"], Decimal(d["amount"]), ev.occurred_at,
                                source="event" if s.closed_reason is None else "late", key=ev.event_id,
                                actor=ev.actor)
        elif s.closed_reason is not None:
            workflow.logger.info("event %s ignored: case closed", ev.type)
        elif ev.type == "case.recalled":
            await case.close(ClosedReason.RECALLED, "creditor withdrew the case")
        elif ev.type == "dispute.resolved" and d.get("upheld"):
            await case.close(ClosedReason.DISPUTE_UPHELD, "dispute upheld")
        elif ev.type == "plan.accepted" and case.patched(patches.INSTALLMENT_PLANS):
            refused = plan_refusal(s, d.get("periods"))
            if refused:
                await case.record(f"plan.accepted {ev.event_id} refused: {refused}")
            else:
                await self.negotiation.accept(d["periods"])
        elif ev.type in protections.EVENT_TYPES:
            note = protections.apply_event(s, ev, workflow.now(), case.debtor.timezone)
            if note:
                await case.record(note)
        else:
            workflow.logger.info("event %s noted, no handler in this stage", ev.type)
