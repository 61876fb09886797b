"""A case's contacts (SPEC §3): calls and letters, each attempt once, inside
the contact rules judged at the moment of the attempt.  A part of
:class:`activities.case_activities.CaseActivities`."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session
from temporalio import activity

import compliance
from activities.adapters import Adapters, CallOutcome
from activities.common import activity_now, attempt_key, phone_hash, start_clock, with_heartbeat
from db.models import ComplianceIncident, ContactAttempt, WorkItem
from db.session import Database
from support import metrics
from support.logs import get_logger, mask_phone
from workflows import rules
from workflows.model import ContactRequest, ContactResult, PostRequest, PostResult

CALL_CHANNELS = ("voice", "human")
_ATTEMPT = select(ContactAttempt).where(ContactAttempt.idempotency_key == bindparam("key"))


class ContactActivities:
    db: Database
    adapters: Adapters
    rules: rules.ContactRules
    _on_file: Any  # CaseActivities._on_file: the contact details (and simulation profile) on file
    _on_file_in: Any  # the same, read in a transaction under way

    @activity.defn(name="contact_debtor")
    async def contact_debtor(self, req: ContactRequest) -> ContactResult:
        # The clock of record starts with the attempt (activities.common):
        # quiet hours and caps are judged, and the row dated, by it.
        start_clock()
        # Heartbeat through the whole attempt: waiting for the database lock
        # under load is as much a part of it as the call itself.
        return await with_heartbeat(self._contact(req))

    async def _contact(self, req: ContactRequest) -> ContactResult:
        key = attempt_key(req.account_id, req.step, req.attempt_no)
        step = rules.STEP_NAMES[req.step]
        d = req.debtor
        log = get_logger(account_id=req.account_id, step=req.step, attempt=req.attempt_no)
        team = rules.route_team(d.age, d.dialect, req.team_id, self._rules_for(req)) if step.channel == "human" else None
        script = compliance.script_for(req.step, region=d.region, ref=compliance.spoken_ref(req.account_id),
                                       amount=req.amount, currency=req.currency, contract=req.contract_id)

        # One transaction reads what is on file and, for a first attempt,
        # judges the rules and writes the attempt as in flight, under the lock.
        def first_look(s: Session) -> tuple[Any, ContactAttempt | None, Any]:
            on_file = self._on_file_in(s, d)
            earlier = s.scalar(_ATTEMPT, {"key": key})
            if earlier is not None:  # a retry: its attempt's row is there
                return on_file, earlier, None
            return on_file, None, self._reserve(s, req, on_file.phone, key, step.channel, team, script)
        on_file, row, reserved = await self.db.run(first_look)
        if row is not None and row.outcome != "dialing":
            return self._result(row)  # a retry after the attempt completed: no second contact
        # A retry of an attempt in flight (its worker died mid-call): ask the
        # adapter whether the call was placed; only if not, it may be placed now.
        placed = await self._placed(step.channel, key, log) if row is not None else None
        if row is not None and placed is None:
            reserved = await self.db.run(lambda s: self._reserve(s, req, on_file.phone, key, step.channel, team,
                                                                 script, again=True))
        if isinstance(reserved, ContactResult):
            if reserved.outcome != "blocked_compliance":
                log.info("contact deferred", outcome=reserved.outcome, retry_at=reserved.retry_at, detail=reserved.detail)
            return reserved
        row = reserved or row
        # Outside the transaction: the call itself (idempotent per key at the adapter).
        if placed is not None:
            result = await self._complete_call(key, req, placed)  # the call the dead attempt placed
        elif step.channel == "letter":
            receipt = await self.adapters.eservice.serve(
                key=key, phone=on_file.phone, document=script, at=row.attempted_at, profile=on_file.profile,
                attempt=req.try_no,
            )
            result = await self._complete_letter(key, receipt.receipt_ref, receipt.delivered)
        else:
            if step.channel == "voice":
                outcome = await self.adapters.voice.call(key=key, phone=on_file.phone, script=script,
                                                         profile=on_file.profile)
            else:
                outcome = await self.adapters.human.call(
                    key=key, phone=on_file.phone, team_id=team or "general", script=script, profile=on_file.profile
                )
            result = await self._complete_call(key, req, outcome)
        log.info("contact", channel=step.channel, outcome=result.outcome, team_id=result.team_id,
                 promised_date=result.promised_date)
        return result

    async def _placed(self, channel: str, key: str, log) -> CallOutcome | None:
        """The adapter's status look-up for a call in flight: the outcome of the
        call placed with ``key``, or None (none placed; letters: served again
        with the same key, the electronic service de-duplicates)."""
        adapter = {"voice": self.adapters.voice, "human": self.adapters.human}.get(channel)
        lookup = getattr(adapter, "placed", None)
        if lookup is None:
            if adapter is not None:
                log.warning("adapter has no status look-up: the retry dials again with the same key",
                            adapter=type(adapter).__name__)
            return None
        outcome = await lookup(key=key)
        log.info("call in flight looked up", placed=outcome is not None)
        return outcome

    def _rules_for(self, req: ContactRequest) -> rules.ContactRules:
        """The worker's contact rules, made stricter by the case's (its strategy's)."""
        return rules.strictest(self.rules, req.contact_rules.to_rules()) if req.contact_rules else self.rules

    def _reserve(self, s: Session, req: ContactRequest, phone: str, key: str, channel: str, team: str | None,
                 script: str, again: bool = False) -> ContactAttempt | ContactResult:
        """Check the rules and write the attempt row as in flight, or say why not.

        The moment judged and recorded is now, taken once the debtor's and the
        phone's locks are held: nothing between it and the dial can wait long.
        ``again``: the attempt's earlier reservation placed no call (its worker
        died first); it is released and the rules judged afresh, now."""
        d = req.debtor
        ph = phone_hash(phone)
        if channel in CALL_CHANNELS:
            self.db.lock_in(s, f"debtor:{d.debtor_id}", f"phone:{ph}")
        if again:
            s.execute(delete(ContactAttempt).where(ContactAttempt.idempotency_key == key,
                                                         ContactAttempt.outcome == "dialing"))
        now = activity_now()
        contact_rules = self._rules_for(req)
        if rules.in_quiet_hours(now, d.timezone, contact_rules):
            metrics.refused("quiet_hours")
            return ContactResult(outcome="quiet_hours", retry_at=rules.next_contact_window(now, d.timezone, contact_rules),
                                 detail=f"quiet hours ({contact_rules.quiet_start:%H:%M}-"
                                        f"{contact_rules.quiet_end:%H:%M} debtor-local)")
        today = rules.local_date(now, d.timezone)
        if channel in CALL_CHANNELS:
            connected = s.scalar(
                select(func.count()).select_from(ContactAttempt).where(
                    ContactAttempt.debtor_id == d.debtor_id, ContactAttempt.local_date == today,
                    ContactAttempt.channel.in_(CALL_CHANNELS),
                    or_(ContactAttempt.connected.is_(True), ContactAttempt.outcome == "dialing"),
                )
            )
            dials = s.scalar(
                select(func.count()).select_from(ContactAttempt).where(
                    ContactAttempt.phone_hash == ph, ContactAttempt.local_date == today,
                    ContactAttempt.channel.in_(CALL_CHANNELS), ContactAttempt.outcome != "blocked_compliance",
                )
            )
            reason = rules.cap_reason(connected or 0, dials or 0, contact_rules)
            if reason:
                metrics.refused("cap")
                return ContactResult(outcome="capped", retry_at=rules.next_local_day_opening(now, d.timezone, contact_rules),
                                     detail=reason)
        local = rules.local_datetime(now, d.timezone)
        row = ContactAttempt(
            idempotency_key=key, account_id=req.account_id, debtor_id=d.debtor_id, step=req.step,
            attempt_no=req.attempt_no, channel=channel, phone_hash=ph, phone_masked=mask_phone(phone),
            team_id=team, attempted_at=now, local_date=today, local_time=local.strftime("%H:%M:%S"),
            timezone=d.timezone, outcome="dialing", connected=False,
            script_sha256=hashlib.sha256(script.encode()).hexdigest(),
            retain_until=rules.retain_until(now, contact_rules) if channel in CALL_CHANNELS else None,
        )
        violations = compliance.screen_text(script)
        if violations:
            row.outcome, row.completed_at = "blocked_compliance", now
            metrics.refused("screen")
            metrics.contact(channel, row.outcome)
            s.add(row)
            s.add(ComplianceIncident(attempt_key=key, account_id=req.account_id, team_id=team, source="script",
                                     kinds=violations, excerpt=script[:500], raised_at=now))
            s.flush()
            return self._result(row, detail=f"script failed compliance screen: {', '.join(violations)}")
        s.add(row)
        s.flush()
        return row

    async def _complete_call(self, key: str, req: ContactRequest, out: CallOutcome) -> ContactResult:
        now = activity_now()

        def complete(s: Session) -> ContactResult:
            row = s.scalar(_ATTEMPT, {"key": key})
            if row.outcome != "dialing":
                return self._result(row)
            row.outcome = "answered" if out.answered else "no_answer"
            row.connected = out.answered
            row.recording_ref = out.recording_ref
            row.transcript = out.transcript
            row.completed_at = now
            if out.promises_in_days:
                row.promised_date = row.local_date + timedelta(days=out.promises_in_days)
            if out.pays_amount:
                row.paid_amount = Decimal(req.amount if out.pays_amount == "all" else out.pays_amount)
            violations = compliance.screen_text(out.transcript)
            if violations:
                s.add(ComplianceIncident(attempt_key=key, account_id=req.account_id, team_id=row.team_id,
                                         source="transcript", kinds=violations, excerpt=out.transcript[:500],
                                         raised_at=now))
                s.execute(self.db.insert(WorkItem).values(  # the desk's review of it (SPEC §8)
                    key=f"incident:{key}", account_id=req.account_id, debtor_id=req.debtor.debtor_id,
                    kind="compliance_review", team_id=row.team_id, step="incident_review", status="open",
                    detail={"incident": key, "kinds": violations}, created_at=now, updated_at=now,
                ).on_conflict_do_nothing())
            s.flush()
            metrics.contact(row.channel, row.outcome)
            return self._result(row)
        return await self.db.run(complete)

    async def _complete_letter(self, key: str, receipt_ref: str, delivered: bool) -> ContactResult:
        now = activity_now()

        def complete(s: Session) -> ContactResult:
            row = s.scalar(_ATTEMPT, {"key": key})
            if row.outcome == "dialing":
                row.outcome = "delivered" if delivered else "undelivered"
                row.receipt_ref = receipt_ref
                row.completed_at = now
                s.flush()
                metrics.contact(row.channel, row.outcome)
            return self._result(row)
        return await self.db.run(complete)

    @activity.defn(name="post_letter")
    async def post_letter(self, req: PostRequest) -> PostResult:
        """Send the legal notice by post, once per case: the attempt's row
        (channel ``post``) is written first, then the postal adapter is called
        with its key (a retry gets the first posting's receipt), then the
        tracking reference is written down.  The address is the database's."""
        start_clock()
        d, key = req.debtor, attempt_key(req.account_id, "legal_notice_post", 1)
        on_file = await self._on_file(d)
        address = on_file.address
        if not address:
            return PostResult(posted=False, posted_at=activity_now(), detail="no postal address on file")
        document = compliance.script_for("legal_notice", region=d.region, ref=compliance.spoken_ref(req.account_id),
                                         amount=req.amount, currency=req.currency, contract=req.contract_id)
        now = activity_now()
        async with self.db.transaction() as s:
            await s.execute(self.db.insert(ContactAttempt).values(
                idempotency_key=key, account_id=req.account_id, debtor_id=d.debtor_id, step="legal_notice_post",
                attempt_no=1, channel="post", attempted_at=now, local_date=rules.local_date(now, d.timezone),
                local_time=rules.local_datetime(now, d.timezone).strftime("%H:%M:%S"), timezone=d.timezone,
                outcome="posting", connected=False, script_sha256=hashlib.sha256(document.encode()).hexdigest(),
            ).on_conflict_do_nothing())
            posted_at = await s.scalar(select(ContactAttempt.attempted_at).where(ContactAttempt.idempotency_key == key))
        receipt = await with_heartbeat(self.adapters.post.post(
            key=key, address=address, document=document, at=posted_at, profile=on_file.profile))
        outcome = "posted" if receipt.delivered_at else "returned"
        async with self.db.transaction() as s:
            posted = await s.execute(update(ContactAttempt).where(ContactAttempt.idempotency_key == key,
                                                                  ContactAttempt.outcome == "posting")
                            .values(outcome=outcome, receipt_ref=receipt.tracking_ref, completed_at=activity_now()))
        if posted.rowcount:
            metrics.contact("post", outcome)
        get_logger(account_id=req.account_id, step="legal_notice_post").info(
            "legal notice posted", tracking_ref=receipt.tracking_ref, outcome=outcome)
        return PostResult(posted=True, posted_at=posted_at, tracking_ref=receipt.tracking_ref,
                          delivered_at=receipt.delivered_at,
                          detail=None if receipt.delivered_at else "returned undeliverable")

    @staticmethod
    def _result(row: ContactAttempt, detail: str | None = None) -> ContactResult:
        return ContactResult(
            outcome=row.outcome, attempted_at=row.attempted_at, connected=row.connected,
            promised_date=row.promised_date.isoformat() if row.promised_date else None,
            team_id=row.team_id, detail=detail or row.receipt_ref,
            paid_amount=str(row.paid_amount) if row.paid_amount is not None else None,
            payment_id=f"call-{row.idempotency_key}" if row.paid_amount is not None else None,
        )
