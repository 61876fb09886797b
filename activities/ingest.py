"""Ingest upstream events (JSON Lines) into cases.

For each line: validate (SPEC §5), de-duplicate on ``event_id`` (a replay is
a no-op), check the account is known, record it in ``ingested_events``, then
dispatch: an ``account.defaulted`` starts the case workflow, any other
account event is signalled to the case.  A rejected line is written with its
line number and reason to the ``rejected_events`` table and to a rejects
file, and never reaches a workflow.  The row is written before dispatch and
marked after, so an ingest that dies half-way can simply be run again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.events import (
    AccountDefaulted,
    ComplaintFiled,
    DisasterDeclared,
    EventRejected,
    PaymentReceived,
    TeamReviewCleared,
    canonical,
    parse_event,
)
from activities.protections import Protections
from activities.logs import get_logger
from db.models import Case, IngestedEvent, Payment, RejectedEvent
from db.session import Database
from workflows.model import CaseEvent, CaseInput, DefaultEvent, Debtor, WORKFLOW_TYPE, case_workflow_id
from workflows.search import initial_search_attributes
from workflows import rules


@dataclass
class IngestReport:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)
    rejects_file: str | None = None
    reject_lines: dict[int, str] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicate": self.duplicate, "rejected": self.rejected}


def _order_key(line: str, line_no: int) -> str | None:
    """What a line must stay in order with: its account, None for a barrier
    (an event without an account), or its own line for unparseable input."""
    try:
        raw = json.loads(line)
    except ValueError:
        return f"line:{line_no}"
    if not isinstance(raw, dict):
        return f"line:{line_no}"
    account = raw.get("account_id")
    if isinstance(account, str):
        return f"account:{account}"
    return None if raw.get("type") in ("disaster.declared", "team.review_cleared") else f"line:{line_no}"


def to_default_event(ev: AccountDefaulted, raw_line: str) -> DefaultEvent:
    d = ev.debtor
    return DefaultEvent(
        event_id=ev.event_id, occurred_at=ev.occurred_at.astimezone(timezone.utc), account_id=ev.account_id,
        amount_due=ev.amount_due, currency=ev.currency, due_date=ev.due_date.isoformat(),
        contract_id=ev.contract_id, grade=ev.grade, asset_flight_risk=ev.asset_flight_risk, team_id=ev.team_id,
        debtor=Debtor(
            debtor_id=d.debtor_id, phone=d.phone, timezone=d.timezone, region=d.region, age=d.age,
            dialect=d.dialect, monthly_disposable_income=d.monthly_disposable_income, address=d.address,
            simulation=dict(d.simulation),
        ),
        canonical_json=canonical(raw_line),
    )


class Ingestor:
    def __init__(self, client: Client, db: Database, task_queue: str = "collections",
                 complaint_threshold: int | None = None) -> None:
        self.client = client
        self.db = db
        self.task_queue = task_queue
        self.log = get_logger(component="ingest")
        self.protections = Protections(client, db, complaint_threshold)

    async def ingest_lines(
        self, lines: Iterable[str], *, source: str, rejects_path: Path | None = None, concurrency: int = 16
    ) -> IngestReport:
        """Ingest JSON lines with bounded parallelism.

        Events of one account keep their file order (each waits for the
        account's previous event); events without an account (disasters,
        team reviews) wait for everything before them.
        """
        report = IngestReport()
        gate = asyncio.Semaphore(concurrency)
        tails: dict[str, asyncio.Task] = {}
        in_flight: set[asyncio.Task] = set()

        async def one(line_no: int, line: str, after: asyncio.Task | None) -> None:
            if after is not None:
                await asyncio.wait({after})
            async with gate:
                try:
                    outcome = await self.ingest_line(line.rstrip("\n"))
                except EventRejected as r:
                    report.rejected += 1
                    report.rejects.append((line_no, r.reason))
                    report.reject_lines[line_no] = line.rstrip("\n")
                    await self._store_reject(source, line_no, line, r)
                    self.log.warning("event rejected", line=line_no, reason=r.reason, event_id=r.event_id)
                    return
            if outcome == "duplicate":
                report.duplicate += 1
            else:
                report.accepted += 1

        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            key = _order_key(line, line_no)
            if key is None and in_flight:  # a barrier: region and team events see all before them
                await asyncio.wait(in_flight)
            task = asyncio.create_task(one(line_no, line, tails.get(key or "")))
            tails[key or ""] = task
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if len(in_flight) >= concurrency * 4:  # bound memory on long files
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        if in_flight:
            await asyncio.gather(*in_flight)
        report.rejects.sort()
        if rejects_path is not None and report.rejects:
            with rejects_path.open("a", encoding="utf-8") as out:
                for line_no, reason in report.rejects:
                    out.write(json.dumps({"source": source, "line": line_no, "reason": reason,
                                          "raw": report.reject_lines[line_no]}, ensure_ascii=False) + "\n")
            report.rejects_file = str(rejects_path)
        return report

    async def ingest_line(self, line: str) -> str:
        """'accepted' or 'duplicate'; raises EventRejected with the reason."""
        ev = parse_event(line)
        async with self.db.sessions() as s:
            seen = await s.get(IngestedEvent, ev.event_id)
        if seen is not None and seen.status != "pending":
            return "duplicate"
        account = ev.account
        if account is not None and seen is None:
            await self._check_account(ev, account)
        if seen is None:
            async with self.db.transaction() as s:
                inserted = await s.execute(
                    self.db.insert(IngestedEvent).values(
                        event_id=ev.event_id, type=ev.type, account_id=account, payload=canonical(line),
                        status="pending", received_at=datetime.now(timezone.utc),
                    ).on_conflict_do_nothing()
                )
            if inserted.rowcount == 0:
                return "duplicate"  # the same event id, taken by a concurrent line
        status, detail = await self._dispatch(ev, line)
        async with self.db.transaction() as s:
            await s.execute(
                update(IngestedEvent).where(IngestedEvent.event_id == ev.event_id).values(status=status, detail=detail)
            )
        self.log.info("event accepted", event_id=ev.event_id, type=ev.type, account_id=account, status=status)
        return "accepted"

    async def _check_account(self, ev, account: str) -> None:
        async with self.db.sessions() as s:
            opened_by = await s.scalar(
                select(IngestedEvent.event_id).where(
                    IngestedEvent.account_id == account, IngestedEvent.type == "account.defaulted"
                ).limit(1)
            )
        if isinstance(ev, AccountDefaulted):
            if opened_by is not None:
                raise EventRejected(f"account {account} already has a case (opened by event {opened_by})", ev.event_id)
        elif opened_by is None:
            raise EventRejected(f"unknown account {account}: no account.defaulted event for it", ev.event_id)

    async def _dispatch(self, ev, line: str) -> tuple[str, str | None]:
        if isinstance(ev, AccountDefaulted):
            default = to_default_event(ev, line)
            d = default.debtor
            try:
                await self.client.start_workflow(
                    WORKFLOW_TYPE, CaseInput(event=default), id=case_workflow_id(ev.account_id),
                    task_queue=self.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=initial_search_attributes({
                        "CaseStage": "verifying", "DebtorGrade": rules.initial_grade(ev.grade, ev.asset_flight_risk),
                        "Region": d.region, "PausedBy": [], "OutstandingAmount": ev.amount_due,
                        "DebtorId": d.debtor_id,
                    }),
                    static_summary=f"Case {ev.account_id} · debtor {d.debtor_id} · {d.region}",
                )
            except WorkflowAlreadyStartedError:
                pass  # started by an earlier, interrupted run of this ingest
            return "dispatched", None
        at = ev.occurred_at.astimezone(timezone.utc)
        if isinstance(ev, DisasterDeclared):
            return await self.protections.declare_disaster(ev.event_id, ev.region, ev.days, at)
        if isinstance(ev, TeamReviewCleared):
            return await self.protections.clear_team(ev.event_id, ev.team_id, at)
        if isinstance(ev, ComplaintFiled):
            return await self.protections.file_complaint(ev.event_id, ev.account_id, ev.team_id, ev.text,
                                                         ev.occurred_at)
        handle = self.client.get_workflow_handle(case_workflow_id(ev.account))
        payload = CaseEvent(event_id=ev.event_id, type=ev.type, occurred_at=ev.occurred_at.astimezone(timezone.utc),
                            data=ev.model_dump(mode="json", exclude={"event_id", "type", "occurred_at"}))
        try:
            await handle.signal("event", payload)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            return await self._to_closed_case(ev)
        return "dispatched", None

    async def _to_closed_case(self, ev) -> tuple[str, str | None]:
        """The case has finished: record a late payment, refuse anything else."""
        async with self.db.sessions() as s:
            case = await s.get(Case, ev.account)
        reason = case.closed_reason if case else "closed"
        if isinstance(ev, PaymentReceived):
            async with self.db.transaction() as s:
                await s.execute(
                    self.db.insert(Payment).values(
                        payment_id=ev.payment_id, account_id=ev.account, amount=Decimal(ev.amount),
                        currency=case.currency if case else "", received_at=ev.occurred_at, source="late",
                        outstanding_after=case.outstanding if case else None,
                    ).on_conflict_do_nothing()
                )
            return "recorded", f"late payment on a case closed {reason}"
        async with self.db.transaction() as s:
            await s.execute(update(IngestedEvent).where(IngestedEvent.event_id == ev.event_id).values(status="rejected"))
        raise EventRejected(f"case for account {ev.account} is closed ({reason})", ev.event_id)

    async def _store_reject(self, source: str, line_no: int, line: str, r: EventRejected) -> None:
        async with self.db.transaction() as s:
            s.add(RejectedEvent(source=source, line_no=line_no, event_id=r.event_id, reason=r.reason,
                                raw=line.rstrip("\n")[:10000], rejected_at=datetime.now(timezone.utc)))

