"""The legal branch's activities (SPEC §2.4): the track chosen once per
debt, filings with the court exactly once per case and kind, the docket,
court events and escalations.  A part of :class:`activities.case_activities.CaseActivities`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from temporalio import activity

from activities.adapters import Adapters
from activities.common import activity_now, with_heartbeat
from db.models import LegalAction, LegalStepRow
from db.session import Database
from support import metrics
from support.logs import get_logger
from workflows.model import (
    CourtDocket,
    CourtQuery,
    LegalActionRequest,
    LegalActionResult,
    LegalFilingRequest,
    LegalFilingResult,
    LegalStepRecord,
)


class LegalActivities:
    db: Database
    adapters: Adapters
    _on_file: Any  # CaseActivities._on_file: the contact details (and simulation profile) on file

    @activity.defn(name="open_legal_action")
    async def open_legal_action(self, req: LegalActionRequest) -> LegalActionResult:
        """Choose the debt's legal track once: a second choice (a retry, a
        replayed or a buggy caller) gets the track already on record."""
        now = activity_now()
        async with self.db.transaction() as s:
            await s.execute(
                self.db.insert(LegalAction).values(
                    account_id=req.account_id, track=req.track, reason=req.reason, status="chosen",
                    chosen_at=now, updated_at=now,
                ).on_conflict_do_nothing()
            )
            row = await s.get(LegalAction, req.account_id)
            await s.execute(
                self.db.insert(LegalStepRow).values(
                    idempotency_key=f"legal:{req.account_id}:chosen", account_id=req.account_id, track=row.track,
                    step="track_chosen", detail=row.reason, escalation=False, at=row.chosen_at,
                ).on_conflict_do_nothing()
            )
        get_logger(account_id=req.account_id, step="legal_track").info("legal track", track=row.track, reason=row.reason)
        return LegalActionResult(track=row.track, reason=row.reason, status=row.status)

    @activity.defn(name="legal_filing")
    async def legal_filing(self, req: LegalFilingRequest) -> LegalFilingResult:
        """File with the court (or post the bond) exactly once per case and kind.

        The filing's row is written first, then the court is called with the
        same key (a retry after a crash calls again with that key, and the
        court's idempotency returns the first filing), then its reference is
        written down.  The call heartbeats, so a dead worker is noticed."""
        key = f"legal:{req.account_id}:{req.kind}"
        async with self.db.transaction() as s:
            await s.execute(
                self.db.insert(LegalStepRow).values(
                    idempotency_key=key, account_id=req.account_id, track=req.track, step=req.kind, ref=None,
                    detail=f"{req.kind} for {req.amount} {req.currency}", escalation=False, at=activity_now(),
                ).on_conflict_do_nothing()
            )
            row = await s.scalar(select(LegalStepRow).where(LegalStepRow.idempotency_key == key))
            filed_at, ref = row.at, row.ref
        if ref is not None:
            return LegalFilingResult(ref=ref, filed_at=filed_at)  # a retry after the filing was recorded
        ref = await with_heartbeat(self.adapters.court.file(
            key=key, kind=req.kind, amount=req.amount, currency=req.currency, contract_id=req.contract_id,
            at=filed_at, profile=(await self._on_file(req.debtor)).profile,
        ))
        ref_column = {"bond": "bond_ref", "suit": "suit_ref", "enforcement": "enforcement_ref"}.get(
            req.kind, "application_ref")
        async with self.db.transaction() as s:
            await s.execute(
                update(LegalStepRow).where(LegalStepRow.idempotency_key == key, LegalStepRow.ref.is_(None))
                .values(ref=ref)
            )
            await s.execute(
                update(LegalAction).where(LegalAction.account_id == req.account_id)
                .values({ref_column: ref, "status": req.status_after, "updated_at": activity_now()})
            )
        get_logger(account_id=req.account_id, step=f"legal_{req.kind}").info(
            "legal filing", track=req.track, kind=req.kind, ref=ref)
        return LegalFilingResult(ref=ref, filed_at=filed_at)

    @activity.defn(name="court_docket")
    async def court_docket(self, q: CourtQuery) -> CourtDocket:
        """Read an application's docket (no side effects)."""
        return await self.adapters.court.docket(
            ref=q.ref, kind=q.kind, filed_at=q.filed_at, now=activity_now(),
            profile=(await self._on_file(q.debtor)).profile,
        )

    @activity.defn(name="record_legal_step")
    async def record_legal_step(self, rec: LegalStepRecord) -> None:
        """A court event, a decision of the case or an escalation, once per step."""
        async with self.db.transaction() as s:
            inserted = await s.execute(
                self.db.insert(LegalStepRow).values(
                    idempotency_key=f"legal:{rec.account_id}:{rec.step}", account_id=rec.account_id,
                    track=rec.track, step=rec.step, detail=rec.detail, escalation=rec.escalation, at=rec.at,
                ).on_conflict_do_nothing()
            )
            await s.execute(
                update(LegalAction).where(LegalAction.account_id == rec.account_id)
                .values(status=rec.status, updated_at=activity_now())
            )
        log = get_logger(account_id=rec.account_id, step=f"legal_{rec.step}")
        if rec.escalation and inserted.rowcount:
            metrics.escalation(rec.step)
        if rec.escalation:
            log.warning("legal escalation", track=rec.track, detail=rec.detail)
        else:
            log.info("legal step", track=rec.track, status=rec.status, detail=rec.detail)
