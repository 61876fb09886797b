"""Region and team protections (SPEC §4), fanned out from the database.

An event that does not apply (clearing a team that is not suspended, a
disaster already declared for longer) changes nothing: its status is
``no_effect`` and its detail says why.

A disaster or a team suspension reaches every open case it covers by a
query on the ``cases`` table — not by any process remembering its cases —
and each case is signalled with the declaring event's id and actor (who
declared it, for the case history), so a re-run after
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

from intake.regions import local_time, zone_of
from support.logs import get_logger
from db.models import Case, Complaint, Disaster, TeamSuspension, WorkItem
from db.session import Database
from workflows import rules
from workflows.model import CaseEvent, case_workflow_id

FAN_OUT_CONCURRENCY = 32
NO_EFFECT = "no_effect"  # the event's status when it changed nothing (the detail says why)


def _cases(n: int) -> str:
    return f"{n} open case{'' if n == 1 else 's'}"


class Protections:
    def __init__(self, client: Client, db: Database, threshold: int = rules.COMPLAINT_THRESHOLD) -> None:
        self.client = client
        self.db = db
        self.threshold = threshold
        self.log = get_logger(component="protections")

    async def declare_disaster(self, event_id: str, region: str, days: int, at: datetime, *,
                               actor: str | None = None) -> tuple[str, str]:
        """Pause the region's open cases until ``at`` + ``days``. A disaster
        already declared there until later makes this one change nothing; one
        until earlier is extended (the detail says which)."""
        ends = at.astimezone(timezone.utc) + timedelta(days=days)

        def shown(when: datetime) -> str:  # on the region's own clock
            return local_time(when, zone_of(region))

        async with self.db.transaction() as s:
            await self.db.lock(s, f"region:{region}")
            standing = await s.scalar(select(Disaster).where(
                Disaster.region == region, Disaster.ends_at > at, Disaster.event_id != event_id,
            ).order_by(Disaster.ends_at.desc()).limit(1))
            if standing is not None and standing.ends_at >= ends:
                return NO_EFFECT, (f"no effect: a disaster in {region} is already declared (event "
                                   f"{standing.event_id}) until {shown(standing.ends_at)}, not before this one's "
                                   f"{shown(ends)}")
            await s.execute(self.db.insert(Disaster).values(
                event_id=event_id, region=region, declared_at=at, ends_at=ends, cases_notified=0,
            ).on_conflict_do_nothing())
        n = await self._fan_out(Case.region == region, CaseEvent(
            event_id, "disaster.declared", at, {"region": region, "days": days, "until": ends.isoformat()},
            actor=actor))
        async with self.db.transaction() as s:
            await s.execute(update(Disaster).where(Disaster.event_id == event_id).values(cases_notified=n))
        self.log.info("disaster declared", region=region, until=ends.isoformat(), cases=n)
        did = (f"disaster grace in {region} extended from {shown(standing.ends_at)} (event {standing.event_id}) to"
               if standing is not None else f"disaster grace in {region} until")
        return "dispatched", f"{did} {shown(ends)}; sent to {_cases(n)}"

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
                await self._open_review(s, team_id, day.isoformat(), at, count)
        if not (trips or (open_trip is not None and count > self.threshold)):
            return "recorded", f"complaint {count} of the day against {team_id} (threshold {self.threshold})"
        n = await self._fan_out(Case.team_id == team_id, CaseEvent(
            f"team-suspended:{team_id}:{day.isoformat()}", "team.suspended", at, {"team_id": team_id}))
        self.log.warning("team suspended", team_id=team_id, complaints=count, threshold=self.threshold, cases=n)
        return "dispatched", f"team {team_id} suspended after {count} complaints; {n} cases paused"

    async def clear_team(self, event_id: str, team_id: str, at: datetime, *,
                         actor: str | None = None) -> tuple[str, str]:
        """Lift a team's suspension and resume its cases; a team that is not
        suspended is left as it is (no effect)."""
        async with self.db.transaction() as s:
            await self.db.lock(s, f"team:{team_id}")
            cleared = await s.execute(update(TeamSuspension).where(
                TeamSuspension.team_id == team_id, TeamSuspension.cleared_at.is_(None),
            ).values(cleared_at=at, cleared_by_event=event_id))
            # this very event cleared it before (an ingest re-run after a crash): fan out again
            by_this = cleared.rowcount or await s.scalar(select(func.count()).select_from(TeamSuspension).where(
                TeamSuspension.cleared_by_event == event_id))
        if not by_this:
            return NO_EFFECT, f"no effect: team {team_id} is not suspended"
        async with self.db.transaction() as s:  # the desk's review of the team is over too
            await s.execute(update(WorkItem).where(
                WorkItem.kind == "compliance_review", WorkItem.team_id == team_id, WorkItem.account_id.is_(None),
                WorkItem.status.in_(("open", "claimed")),
            ).values(status="done", outcome="cleared", completed_by=actor or event_id, completed_at=at, updated_at=at))
        n = await self._fan_out(Case.team_id == team_id, CaseEvent(
            event_id, "team.review_cleared", at, {"team_id": team_id}, actor=actor))
        self.log.info("team cleared", team_id=team_id, cases=n)
        return "dispatched", f"team {team_id} cleared; {_cases(n)} released from its suspension"

    async def _open_review(self, s, team_id: str, day: str, at: datetime, complaints: int) -> None:
        """The work desk's compliance_review of a tripped team (SPEC §8), once per team and day."""
        await s.execute(self.db.insert(WorkItem).values(
            key=f"team-review:{team_id}:{day}", account_id=None, debtor_id=None, kind="compliance_review",
            team_id=team_id, step="team_review", status="open", created_at=at, updated_at=at,
            detail={"complaints": complaints, "threshold": self.threshold},
        ).on_conflict_do_nothing())

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
