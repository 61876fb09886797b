"""The case's side of the work desk (SPEC §8): open a work item, read (or
close) it.  People work the items through :mod:`desk.store`; the case waits
for them on durable timers and the ``work_item_done`` Update
(:mod:`workflows.desk`).

Both activities are idempotent: an item is opened once per key (a retry
finds it), and reading it again returns what was entered.  An item nobody
completed is closed once (``expired``, or ``withdrawn`` when the case moved
on); a call slot its claim reserved and nobody reported on is closed as
``abandoned`` (it stays counted as a dial, never as a connected call).
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import select, update
from temporalio import activity

from activities.case_activities import CaseActivities
from activities.common import activity_now, attempt_key
from db.models import ContactAttempt, Debtor, WorkItem
from db.session import Database
from support.logs import get_logger
from workflows import rules
from workflows.work_items import OpenWorkItemRequest, SettleWorkItemRequest, WorkItemRef, WorkItemSettled


class DeskActivities:
    def __init__(self, db: Database, contact_rules: rules.ContactRules = rules.DEFAULT_RULES) -> None:
        self.db = db
        self.rules = contact_rules

    @activity.defn(name="open_work_item")
    async def open_work_item(self, req: OpenWorkItemRequest) -> WorkItemRef:
        """Open the item once per key; a human call or a review is the case's
        routed team's (the dialect team for a debtor aged 60+), a court entry legal's."""
        d = req.debtor
        team = None if req.kind == "court_entry" else rules.route_team(d.age, d.dialect, req.team_id, self.rules)
        detail: dict = {"workflow_id": req.workflow_id}
        if req.expects:
            detail["expects"] = list(req.expects)
        if req.kind == "human_call":
            detail.update(slot=attempt_key(req.account_id, req.step, req.attempt_no), attempt_no=req.attempt_no)
        now = activity_now()
        async with self.db.transaction() as s:
            await s.execute(self.db.insert(WorkItem).values(
                key=req.key, account_id=req.account_id, debtor_id=d.debtor_id, kind=req.kind, team_id=team,
                step=req.step, window_start=req.window_start, window_end=req.window_end, status="open",
                detail=detail, created_at=now, updated_at=now,
            ).on_conflict_do_nothing())
            item = await s.scalar(select(WorkItem).where(WorkItem.key == req.key))
        get_logger(account_id=req.account_id, step=req.step).info(
            "work item open", kind=req.kind, work_item=item.id, team_id=item.team_id)
        return WorkItemRef(id=item.id, team_id=item.team_id, status=item.status)

    @activity.defn(name="settle_work_item")
    async def settle_work_item(self, req: SettleWorkItemRequest) -> WorkItemSettled:
        """What was entered for the item; ``close_as`` closes one nobody completed."""
        now = activity_now()
        async with self.db.transaction() as s:
            item = await s.scalar(select(WorkItem).where(WorkItem.key == req.key))
            if item is None:
                return WorkItemSettled(status="missing")
            await self.db.lock(s, f"work_item:{item.id}")
            item = await s.get(WorkItem, item.id, populate_existing=True)
            if item.status == "done":
                return await self._entered(s, item)
            if req.close_as and item.status in ("open", "claimed"):
                if item.attempt_key:
                    await s.execute(update(ContactAttempt).where(
                        ContactAttempt.idempotency_key == item.attempt_key, ContactAttempt.outcome == "dialing",
                    ).values(outcome="abandoned", completed_at=now))
                item.status, item.updated_at = "expired", now
                item.detail = {**(item.detail or {}), "closed": req.close_as}
                get_logger(account_id=item.account_id, step=item.step).info(
                    "work item closed", kind=item.kind, work_item=item.id, closed=req.close_as,
                    claimed_by=item.claimed_by)
            return WorkItemSettled(status=item.status)

    async def _entered(self, s, item: WorkItem) -> WorkItemSettled:
        out = WorkItemSettled(status="done", outcome=item.outcome, completed_by=item.completed_by)
        detail = item.detail or {}
        if item.kind == "human_call" and item.attempt_key:
            row = await s.scalar(select(ContactAttempt).where(ContactAttempt.idempotency_key == item.attempt_key))
            if row is not None:
                out.contact = CaseActivities._result(row)  # as contact_debtor answers: the same path in the case
        if item.kind == "court_entry":
            tz = await s.scalar(select(Debtor.timezone).where(Debtor.debtor_id == item.debtor_id)) or "UTC"
            out.on, out.reference = court_instant(detail.get("on"), item.completed_at, tz), detail.get("reference")
        return out

    def all(self) -> list:
        return [self.open_work_item, self.settle_work_item]


def court_instant(on: str | None, entered_at: datetime, tz: str) -> datetime:
    """When the court decided: the entry's time if it was entered that day, else noon of that day (debtor-local)."""
    if not on or rules.local_date(entered_at, tz).isoformat() == on:
        return entered_at
    return min(entered_at, rules.local_instant(date.fromisoformat(on), time(12, 0), tz))
