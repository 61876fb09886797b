"""Serving the legal notice (SPEC §2.3, §7): no outcome of the service wedges a case.

The day-7 letter is served electronically, with a delivery receipt.  One the
electronic service does not deliver (or the compliance screen blocks) is
served again on the debtor's next contact day, up to the case's
``letter_attempts`` tries (``COLLECTIONS_LETTER_ATTEMPTS``, 3), and then sent
by post: the postal adapter answers with a tracking reference and the
delivery time, and the 15-day response window starts at delivery.  A notice
that cannot go by post (no address on file, returned undeliverable, or a
document the compliance screen keeps blocking) is recorded as unserved and
escalated; the response window then counts from that moment, and the legal
track does what it can without a served notice.

The case calls :meth:`LegalNotice.not_served` after a try that did not serve
(histories from before this, ``patches.LETTER_DELIVERY``, never had one that
completed a workflow task: the case failed its task there).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_activities import CaseActivities
    from workflows import rules
    from workflows.host import CaseHost
    from workflows.model import ContactResult, EvidenceRequest, LadderRecord, NoticeState, PostRequest
    from workflows.options import CONTACT_ACTIVITY, DB_ACTIVITY
    from workflows.presentation import local_stamp
    from workflows.status import Outcome

LETTER = next(i for i, step in enumerate(rules.LADDER) if step.channel == "letter")


class LegalNotice:
    """The legal notice of a case, from its first electronic try to served (or not servable)."""

    def __init__(self, case: CaseHost, attempts: int, contact_rules: rules.ContactRules) -> None:
        self.case = case
        self.attempts = attempts
        self.contact_rules = contact_rules
        self.letter = LETTER  # the letter's index in the case's ladder (its strategy's)

    @property
    def state(self) -> NoticeState | None:
        return self.case.s.notice

    def retry_due(self) -> datetime | None:
        """When the next electronic try is due (None: no retry pending)."""
        n = self.state
        return n.retry_at if n is not None and n.status == "serving" else None

    def next_try(self) -> int:
        return (self.state.tries if self.state else 0) + 1

    def label(self, step: rules.LadderStep) -> str:
        if step.channel != "letter" or self.retry_due() is None:
            return step.label
        return f"legal notice served again (try {self.next_try()} of {self.attempts})"

    def window_opens(self) -> datetime:
        """Where the 15-day response window starts: delivery, or the notice given up as unserved."""
        s = self.case.s
        return s.letter_served_at or s.notice.unserved_since

    async def served(self, at: datetime, ref: str | None, *, kind: str = "legal_notice_served") -> None:
        """Delivered at ``at``: a demand, it restarts the limitation period; fingerprinted."""
        case, s = self.case, self.case.s
        s.letter_served_at = at
        if s.notice is not None:
            s.notice.status, s.notice.retry_at = "served", None
        case.interrupt_limitation(rules.local_date(at, case.debtor.timezone))
        ev = case.ev
        await workflow.execute_activity_method(
            CaseActivities.append_evidence,
            EvidenceRequest(account_id=ev.account_id, kind=kind, key=f"letter:{ev.account_id}:{ref}",
                            payload=f"{ev.account_id}|{ev.contract_id}|{ref}|{at.isoformat()}"),
            summary="fingerprint served legal notice", **DB_ACTIVITY,
        )

    async def not_served(self, result: ContactResult) -> str:
        """A try that did not serve the notice: serve it again on the next
        contact day, or send it by post after the last try.  Returns what
        happens next, for the case's record."""
        case, s = self.case, self.case.s
        n = s.notice = s.notice or NoticeState()
        n.tries += 1
        if n.tries < self.attempts:
            n.retry_at = rules.next_local_day_opening(result.attempted_at, case.debtor.timezone, self.contact_rules)
            s.next_step = self.letter
            return (f"try {n.tries} of {self.attempts}; served again "
                    f"{local_stamp(n.retry_at, case.debtor.timezone)}")
        n.retry_at = None
        if result.outcome == Outcome.BLOCKED_COMPLIANCE:
            return self._unserved(f"it failed the compliance screen {n.tries} times; not sent by post")
        return await self._post()

    async def _post(self) -> str:
        case, s, n = self.case, self.case.s, self.case.s.notice
        posted = await workflow.execute_activity_method(
            CaseActivities.post_letter,
            PostRequest(account_id=case.ev.account_id, debtor=case.debtor, amount=s.outstanding,
                        currency=case.ev.currency, contract_id=case.ev.contract_id),
            summary="legal notice by post", **CONTACT_ACTIVITY,
        )
        n.posted_at, n.tracking_ref = posted.posted_at, posted.tracking_ref
        s.ladder.append(LadderRecord("legal_notice_post", posted.posted_at, "posted" if posted.posted else "not_posted"))
        if posted.delivered_at is None:
            return self._unserved(posted.detail or "not deliverable by post")
        await self.served(posted.delivered_at, posted.tracking_ref, kind="legal_notice_posted")
        delivered = local_stamp(posted.delivered_at, case.debtor.timezone)
        return (f"sent by post ({posted.tracking_ref}) after {n.tries} electronic tries, delivered {delivered}: "
                f"the {rules.LEGAL_NOTICE_RESPONSE_DAYS}-day response window starts then")

    def _unserved(self, reason: str) -> str:
        n = self.case.s.notice
        n.status, n.unserved_since = "unserved", workflow.now()
        workflow.logger.warning("legal notice not served: %s", reason)
        ends = local_stamp(n.unserved_since + timedelta(days=rules.LEGAL_NOTICE_RESPONSE_DAYS),
                           self.case.debtor.timezone)
        return f"escalated: the legal notice could not be served ({reason}); the legal branch follows {ends}"
