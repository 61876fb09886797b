"""Region and team protections (SPEC §4), fanned out from the database.

A disaster or a team suspension reaches every open case it covers by a
query on the ``cases`` table — not by any process remembering its cases —
and each case is signalled with the declaring event's id, so a re-run after
a crash signals again harmlessly (cases ignore an event id they have seen).
Cases opened later find the protection themselves when they open
(``open_case`` reads the same tables).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from support.logs import get_logger
from db.models import Case, Complaint, Disaster, TeamSuspension
from db.session import Database
from workflows import rules
from workflows.model import CaseEvent, case_workflow_id

FAN_OUT_CONCURRENCY = 32


class Protections:
    def __init__(self, client: Client, db: Database, threshold: int = rules.COMPLAINT_THRESHOLD) -> None:
        self.client = client
        self.db = db
        self.threshold = threshold
        self.log = get_logger(component="protections")

    async def declare_disaster(self, event_id: str, region: str, days: int, at: datetime) -> tuple[str, str]:
        ends = at.astimezone(timezone.utc) + timedelta(days=days)
        async with self.db.transaction() as s:
            await s.execute(self.db.insert(Disaster).values(
                event_id=event_id, region=region, declared_at=at, ends_at=ends, cases_notified=0,
            ).on_conflict_do_nothing())
        n = await self._fan_out(Case.region == region, CaseEvent(
            event_id, "disaster.declared", at, {"region": region, "days": days, "until": ends.isoformat()}))
        async with self.db.transaction() as s:
            await s.execute(update(Disaster).where(Disaster.event_id == event_id).values(cases_notified=n))
        self.log.info("disaster declared", region=region, until=ends.isoformat(), cases=n)
        return "dispatched", f"disaster grace until {ends.isoformat()} sent to {n} open cases"

    async def file_complaint(self, event_id: str, account_id: str, team_id: str, text: str,
                             at: datetime) -> tuple[str, str]:
        day = at.date()  # the complaint's own calendar day, as the complainant dated it
        async with self.db.transaction() as s:
            await self.db.lock(s, f"team:{team_id}")
            await s.execute(self.db.insert(Complaint).values(
                event_id=event_id, team_id=team_id, account_id=account_id, day=day, text=text, filed_at=at,
            ).on_conflict_do_nothing())
            count = await s.scalar(select(func.count()).select_from(Complaint).where(
                Complaint.team_id == team_id, Complaint.day == day))
            open_trip = await s.scalar(select(TeamSuspension).where(
                TeamSuspension.team_id == team_id, TeamSuspension.cleared_at.is_(None)))
            trips = count > self.threshold and open_trip is None
            if trips:
                s.add(TeamSuspension(team_id=team_id, day=day, complaints=count, threshold=self.threshold,
                                     suspended_at=at))
        if not (trips or (open_trip is not None and count > self.threshold)):
            return "recorded", f"complaint {count} of the day against {team_id} (threshold {self.threshold})"
        n = await self._fan_out(Case.team_id == team_id, CaseEvent(
            f"team-suspended:{team_id}:{day.isoformat()}", "team.suspended", at, {"team_id": team_id}))
        self.log.warning("team suspended", team_id=team_id, complaints=count, threshold=self.threshold, cases=n)
        return "dispatched", f"team {team_id} suspended after {count} complaints; {n} cases paused"

    async def clear_team(self, event_id: str, team_id: str, at: datetime) -> tuple[str, str]:
        async with self.db.transaction() as s:
            await s.execute(update(TeamSuspension).where(
                TeamSuspension.team_id == team_id, TeamSuspension.cleared_at.is_(None),
            ).values(cleared_at=at, cleared_by_event=event_id))
        n = await self._fan_out(Case.team_id == team_id, CaseEvent(
            event_id, "team.review_cleared", at, {"team_id": team_id}))
        self.log.info("team cleared", team_id=team_id, cases=n)
        return "dispatched", f"team {team_id} cleared; {n} cases notified"

    async def _fan_out(self, where, event: CaseEvent) -> int:
        """Signal every open case matching ``where``; returns how many were reached."""
        async with self.db.sessions() as s:
            accounts = (await s.scalars(select(Case.account_id).where(where, Case.closed_reason.is_(None)))).all()
        gate = asyncio.Semaphore(FAN_OUT_CONCURRENCY)

        async def one(account_id: str) -> int:
            async with gate:
                try:
                    await self.client.get_workflow_handle(case_workflow_id(account_id)).signal("event", event)
                    return 1
                except RPCError as e:
                    if e.status == RPCStatusCode.NOT_FOUND:
                        return 0  # closed meanwhile
                    raise

        return sum(await asyncio.gather(*(one(a) for a in accounts)))
