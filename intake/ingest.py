"""Ingest upstream events (JSON Lines) into cases.

For each line: validate (SPEC §5), de-duplicate on ``event_id`` (a replay is
a no-op), check the account is known, record it in ``ingested_events`` (with
its ``actor``), then dispatch: an ``account.defaulted`` starts the case
workflow, any other account event is signalled to the case — or, with
``via_update`` (the operator's path), applied through the case's
``apply_event`` Update, which answers what it did (an
:class:`~workflows.status.EventEffect`) or why it changed nothing.  An event
changes a case only when it applies (SPEC §5); the case records its effect on
the event's row either way (status ``applied``, ``no_effect`` or ``refused``,
the effect in ``detail``).  A rejected line is written with its
line number and reason to the ``rejected_events`` table and to a rejects
file, and never reaches a workflow.  The row is written before dispatch and
marked after, so an ingest that dies half-way can simply be run again.

Every line ends accepted, duplicate or rejected with its reason: a fault on
one line (Temporal refusing it, the database refusing its row, anything
unforeseen) is that line's rejection, and the file goes on.  An outage
(Temporal or the database unreachable) stops the file instead:
:class:`~intake.faults.IngestStopped` carries the counts so far, and the
same file run again finishes it (intake/faults.py).

Lines are dispatched concurrently with bounded parallelism; a progress
callback sees the counts after every line (the CLI draws a progress bar), and
the report carries the elapsed time and throughput.  Lines at the same step
share their database work (intake/group_commit.py): one read for their event
ids and accounts, one write transaction for their pending rows (a default's
debtor row with its event's) and the outcomes of the lines dispatched
meanwhile.  A line waits for its transaction's commit before it counts, so a
crash leaves what it left before: rows ``pending`` that a re-run dispatches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from intake.events import (
    AccountDefaulted,
    ComplaintFiled,
    DisasterDeclared,
    EventRejected,
    PaymentReceived,
    TeamReviewCleared,
    canonical,
    parse_event,
)
from intake.case_start import opening_attributes, plain, to_default_event
from intake.faults import IngestStopped, Service, event_id_of, line_fault, outage_of
from intake import event_rows as rows
from intake.group_commit import GroupCommit
from intake.protections import Protections
from intake.report import EventOutcome, IngestReport, write_rejects
from support.logs import get_logger
from db.models import Case, Payment
from db.models import Debtor as Debtor_
from db.session import Database
from support.settings import Settings
from workflows import rules
from workflows.case import DelinquentAccountWorkflow
from workflows.effects import effect_status
from workflows.model import CaseEvent, CaseInput, DefaultEvent, case_workflow_id
from workflows.status import EventEffect

NO_EFFECT = "no_effect"  # an accepted event that changed nothing (its detail says why)
SILENT_TEMPORAL_SECONDS = 30.0  # the least a call waits for an answer from a connected Temporal


@dataclass
class _Ingested:
    """What became of an accepted (or duplicate) event."""

    outcome: str  # accepted | no_effect | duplicate
    status: str | None = None
    detail: str | None = None
    effect: EventEffect | None = None


def _order_key(line: str, line_no: int) -> str | None:
    """What a line must stay in order with: its account, None for a barrier
    (an event without an account), or its own line for unparseable input."""
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError):  # rejected with its reason when its turn comes
        return f"line:{line_no}"
    if not isinstance(raw, dict):
        return f"line:{line_no}"
    account = raw.get("account_id")
    if isinstance(account, str):
        return f"account:{account}"
    return None if raw.get("type") in ("disaster.declared", "team.review_cleared") else f"line:{line_no}"


def to_case_event(ev) -> CaseEvent:
    """An accepted account event as its case receives it."""
    return CaseEvent(event_id=ev.event_id, type=ev.type, occurred_at=ev.occurred_at.astimezone(timezone.utc),
                     data=ev.model_dump(mode="json", exclude={"event_id", "type", "occurred_at", "actor"}),
                     actor=ev.actor)


def _detail(ev, effect: EventEffect) -> str:
    """The outcome's detail: what the case says the event did."""
    if effect.applied and ev.type == "suspension.granted" and effect.until is not None:
        return f"suspended until {effect.until.isoformat()}"
    if effect.applied and ev.type == "plan.accepted" and effect.plan is not None and effect.plan.schedule:
        plan = effect.plan
        return f"plan of {plan.periods} x {plan.installment}, first due {plan.schedule[0].due_on}"
    return effect.effect


def _content(line: str) -> dict[str, Any]:
    """What an event says, without its envelope's time and sender: a command
    retried with the same event id (a new ``occurred_at``) is the same event."""
    raw = json.loads(line)
    return {k: v for k, v in raw.items() if k not in ("occurred_at", "actor")}


_RESUMING: ContextVar[bool] = ContextVar("resuming", default=False)  # dispatching a row left pending


class _NotStarted(Exception):
    """The file stopped at an outage while this line waited for its turn: it is left for the re-run."""


class _Turn:
    """A file's line's turn to record and dispatch: a place among the
    ``concurrency`` lines doing so at once.  Reading (the event id, the
    account) comes before it, in a read shared with the lines waiting too;
    the turn is kept until the line is dispatched, so with concurrency 1 lines
    are recorded and dispatched one after another (a line's outcome is written,
    and the line counted, while the next one goes on)."""

    def __init__(self, gate: asyncio.Semaphore, stopped: Callable[[], bool]) -> None:
        self.gate, self.stopped, self.held = gate, stopped, False

    async def take(self) -> None:
        await self.gate.acquire()
        self.held = True
        if self.stopped():
            raise _NotStarted

    def leave(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()


_TURN: ContextVar[_Turn | None] = ContextVar("turn", default=None)  # set for each line of a file


class _Refused(Exception):
    """Dispatch found the event cannot be applied here: its rejection, with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Settled(Exception):
    """An Update that did not run: what became of its event instead."""

    def __init__(self, status: str, detail: str | None) -> None:
        super().__init__(status)
        self.status, self.detail = status, detail


# What a refusal of the apply_event Update is called in a rejection.
_REFUSED_WHAT = {"suspension.granted": "suspension", "plan.accepted": "plan"}


class Ingestor:
    """Validate, de-duplicate, record and dispatch events.

    ``via_update`` (the operator CLI's path): apply every case event through
    the case's ``apply_event`` Update instead of the ``event`` signal (the
    Update id is the event id, so a retry is the same update), and report
    the case's answer: an event that does not apply comes back as
    ``no_effect`` with the reason, one the case refuses (a second plan) as a
    rejection.  ``update_timeout`` bounds the wait for a worker to answer.
    ``suspension_via_update`` is the older name of ``via_update``.
    """

    def __init__(self, client: Client, db: Database, settings: Settings, *, via_update: bool = False,
                 suspension_via_update: bool = False, update_timeout: float = 30.0) -> None:
        self.client = client
        self.db = db
        self.settings = settings  # validated once, at process start
        self.via_update = via_update or suspension_via_update
        self.update_timeout = update_timeout
        self.log = get_logger(component="ingest")
        self.protections = Protections(client, db, settings.complaint_threshold)
        # Lines writing close together share their write transactions (intake/group_commit.py):
        # one line's pending row beside another's outcome.
        self._writes: GroupCommit[rows.Record | rows.Mark] = GroupCommit(db, partial(rows.write, db))
        self._reads: GroupCommit[tuple[str, str | None]] = GroupCommit(db, rows.look_up, writes=False)
        self._input_base: tuple[Settings | None, dict[str, Any]] = (None, {})  # see _case_payload

    async def ingest_lines(
        self, lines: Iterable[str], *, source: str, rejects_path: Path | None = None, concurrency: int = 16,
        progress: Callable[[IngestReport], None] | None = None,
    ) -> IngestReport:
        """Ingest JSON lines with bounded parallelism.

        Events of one account keep their file order (each waits for the
        account's previous event); events without an account (disasters,
        team reviews) wait for everything before them.  ``progress`` is
        called with the running report after each line.

        Every line ends accepted, duplicate or rejected (a fault on one line
        is its rejection).  An outage stops the file: no line starts after
        it, the lines under way finish or are left for a re-run, and
        :class:`~intake.faults.IngestStopped` is raised with the report so
        far (the rejects file written all the same).
        """
        report = IngestReport()
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)
        tails: dict[str, asyncio.Task] = {}
        in_flight: set[asyncio.Task] = set()
        room = asyncio.Semaphore(concurrency * 4)  # lines under way at most: bounds memory on long files
        stops: list[tuple[int, Service, BaseException]] = []  # (line, service down, its error)

        async def one(line_no: int, line: str, after: asyncio.Task | None) -> None:
            if after is not None:
                await asyncio.wait({after})
            if stops:
                return  # the file stopped at an outage: this line is left for the re-run
            turn = _Turn(gate, lambda: bool(stops))
            _TURN.set(turn)  # this task's own context: _ingest takes the turn once it has read
            try:
                outcome = await self._one_line(line_no, line.rstrip("\n"), source, report)
            except _NotStarted:
                return  # the file stopped while this line waited for its turn: left for the re-run
            except Exception as e:  # an outage: every other fault became the line's rejection
                stops.append((line_no, outage_of(e) or "database", e))
                self.log.warning("ingest stopped", line=line_no, service=outage_of(e), error=str(e))
                return
            finally:
                turn.leave()
            report.no_effect += outcome == NO_EFFECT
            if outcome == "duplicate":
                report.duplicate += 1
            elif outcome != "rejected":
                report.accepted += 1
            if progress is not None:
                report.seconds = time.monotonic() - started
                progress(report)

        for line_no, line in enumerate(lines, start=1):
            if stops:
                break
            if not line.strip():
                continue
            key = _order_key(line, line_no)
            if key is None and in_flight:  # a barrier: region and team events see all before them
                await asyncio.wait(in_flight)
            await room.acquire()  # a place among them (an asyncio.wait on all of them cost O(lines) a line)
            if stops:
                break
            task = asyncio.create_task(one(line_no, line, tails.get(key or "")))
            tails[key or ""] = task
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            task.add_done_callback(lambda _: room.release())
        if in_flight:
            await asyncio.gather(*in_flight)
        report.seconds = time.monotonic() - started
        report.rejects.sort()
        if rejects_path is not None and report.rejects:
            write_rejects(report, rejects_path, source)
        if stops:
            line_no, service, cause = min(stops, key=lambda stop: stop[0])
            report.stopped_at = line_no
            raise IngestStopped(report, service, cause)
        return report

    async def _one_line(self, line_no: int, line: str, source: str, report: IngestReport) -> str:
        """One line of a file: its outcome, a rejection counted and stored;
        raises only for an outage."""
        try:
            return await self.ingest_line(line)
        except _NotStarted:
            raise
        except Exception as e:
            rejection = self._rejection(e, line)
        report.rejected += 1
        report.rejects.append((line_no, rejection.reason))
        report.reject_lines[line_no] = line
        try:
            await rows.store_reject(self.db, source, line_no, line, rejection)
        except Exception as e:  # the rejects file still has it; only an outage stops the file
            if outage_of(e) is not None:
                raise
            self.log.error("rejection not stored", line=line_no, error=line_fault(e))
        self.log.warning("event rejected", line=line_no, reason=rejection.reason, event_id=rejection.event_id)
        return "rejected"

    def _rejection(self, e: Exception, line: str) -> EventRejected:
        """The rejection of a line that raised ``e``; an outage is raised again."""
        if isinstance(e, EventRejected):
            return e
        if outage_of(e) is not None:
            raise e
        self.log.warning("event failed", error=f"{type(e).__name__}: {e}")
        return EventRejected(line_fault(e), event_id_of(line))

    async def ingest_event(self, line: str, *, source: str = "cli") -> EventOutcome:
        """One event (the operator CLI's path): the same validation, de-duplication
        and rejects table as a file, with what became of it."""
        try:
            done = await self._ingest(line)
        except Exception as e:  # an outage is raised again (the command says so in one line)
            r = self._rejection(e, line)
            await rows.store_reject(self.db, source, 1, line, r)
            self.log.warning("event rejected", source=source, reason=r.reason, event_id=r.event_id)
            kind = None
            try:
                raw = json.loads(line)
                kind = raw.get("type") if isinstance(raw, dict) else None
            except (ValueError, RecursionError):
                pass
            return EventOutcome("rejected", r.event_id, kind if isinstance(kind, str) else None, reason=r.reason)
        ev = json.loads(line)
        reason = done.detail if done.outcome == NO_EFFECT else None
        return EventOutcome(done.outcome, ev.get("event_id"), ev.get("type"), done.status, done.detail, reason,
                            done.effect)

    async def ingest_line(self, line: str) -> str:
        """'accepted', 'no_effect' (accepted, changed nothing) or 'duplicate';
        raises EventRejected with the reason."""
        return (await self._ingest(line)).outcome

    async def _ingest(self, line: str) -> _Ingested:
        """What became of the event; raises EventRejected with the reason."""
        ev = parse_event(line)
        account = ev.account
        # One read (shared with the lines reading at the same time): the event id, and the account's default.
        seen, opened_by = await self._reads.submit((ev.event_id, account))
        if seen is not None and _content(seen.payload) != _content(line):
            raise EventRejected(f"event id {ev.event_id} was already used for a different event "
                                f"({seen.type}{' for ' + seen.account_id if seen.account_id else ''})", None)
        if seen is not None and seen.status != "pending":
            return _Ingested("duplicate", seen.status, seen.detail)
        if account is not None and seen is None:
            self._check_account(ev, account, opened_by)
        turn = _TURN.get()
        if turn is not None:  # a file's line: at most `concurrency` lines record and dispatch at once
            await turn.take()
        if seen is None:
            now = datetime.now(timezone.utc)
            row = dict(event_id=ev.event_id, type=ev.type, account_id=account, payload=canonical(line),
                       status="pending", actor=ev.actor, received_at=now)
            # A default's debtor row is written with its event's row, in the same transaction.
            debtor = Debtor_.values_of(ev.debtor, now) if isinstance(ev, AccountDefaulted) else None
            if not await self._writes.submit(rows.Record(row, debtor)):
                return _Ingested("duplicate")  # the same event id, taken by a concurrent line
        elif isinstance(ev, AccountDefaulted):
            await rows.upsert_debtor(self.db, ev)  # resuming a row left pending (by a run before they were one write)
        effect = None
        resuming = _RESUMING.set(seen is not None)  # a row left pending by an earlier, interrupted run
        try:
            status, detail, *answer = await self._dispatch(ev, line)
            effect = answer[0] if answer else None
        except _Settled as settled:
            status, detail = settled.status, settled.detail
        except EventRejected:
            raise  # the row says so already
        except Exception as e:
            if outage_of(e) is not None:
                raise  # the row stays pending: a re-run dispatches it
            what = "to start its case" if isinstance(ev, AccountDefaulted) else "the event"
            reason = e.reason if isinstance(e, _Refused) else line_fault(e, what)
            await rows.forget(self.db, ev.event_id)  # rejected, never recorded: a re-run tries it again
            raise EventRejected(reason, ev.event_id) from None
        finally:
            _RESUMING.reset(resuming)
        if turn is not None:
            turn.leave()  # dispatched: the next line may dispatch while this one's outcome is written
        await self._writes.submit(rows.Mark(ev.event_id, status, detail))  # committed before the line counts
        self.log.info("event accepted", event_id=ev.event_id, type=ev.type, account_id=account, status=status)
        changed_nothing = status in (NO_EFFECT, "refused")  # refused: the case found it did not apply after all
        return _Ingested(NO_EFFECT if changed_nothing else "accepted", status, detail, effect)

    @staticmethod
    def _check_account(ev, account: str, opened_by: str | None) -> None:
        if isinstance(ev, AccountDefaulted):
            if opened_by is not None:
                raise EventRejected(f"account {account} already has a case (opened by event {opened_by})", ev.event_id)
        elif opened_by is None:
            raise EventRejected(f"unknown account {account}: no account.defaulted event for it", ev.event_id)

    def case_input(self, default: DefaultEvent) -> CaseInput:
        """A new case's input: its event, and the settings and strategy it keeps (SPEC §9)."""
        strategy = self.settings.active_strategy
        grace = strategy.plan.grace_days
        return CaseInput(event=default, contact_rules=self.settings.case_contact_rules,
                         installment_grace_days=self.settings.installment_grace_days if grace is None else grace,
                         letter_attempts=self.settings.letter_attempts, strategy=strategy.to_case(),
                         score=self.settings.score_model is not None,  # scored when it opens (lab/score.py)
                         desk_steps=self._desk_steps(default))

    def _desk_steps(self, default: DefaultEvent) -> list[str]:
        """The steps people do for the case: its routed team's (Settings.desk_steps)."""
        return self.settings.desk_steps(rules.route_team(
            default.debtor.age, default.debtor.dialect, default.team_id, self.settings.contact_rules))

    def _case_payload(self, default: DefaultEvent) -> dict[str, Any]:
        """``case_input(default)`` as the JSON payload converter sees it (the same
        payload bytes, tests/test_ingest.py): the settings' part (contact rules,
        strategy, ...) made plain once per settings, the event and its desk steps
        each time.  Converting the whole CaseInput per start (``asdict`` of the
        strategy and rules) was most of the start's CPU outside the SDK."""
        if self._input_base[0] is not self.settings:  # the settings may be replaced (tests do)
            self._input_base = (self.settings, plain(self.case_input(default)))
        return self._input_base[1] | {"event": plain(default), "desk_steps": self._desk_steps(default)}

    async def _dispatch(self, ev, line: str) -> tuple[str, str | None]:
        if isinstance(ev, AccountDefaulted):
            default = to_default_event(ev)
            d = default.debtor  # its debtor's row was written with the event's (_ingest)
            try:
                await self.client.start_workflow(
                    DelinquentAccountWorkflow.run,
                    self._case_payload(default),  # a CaseInput's payload (its JSON object)
                    id=case_workflow_id(ev.account_id),
                    task_queue=self.settings.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=opening_attributes(ev, self.settings.active_strategy.label),
                    static_summary=f"Case {ev.account_id} · debtor {d.debtor_id} · {d.region}",
                    rpc_timeout=self._rpc_timeout,
                )
            except WorkflowAlreadyStartedError:
                if not _RESUMING.get():  # recorded here just now, yet its case exists: started elsewhere
                    raise _Refused(await self._elsewhere(ev.account_id)) from None
                # else started by an earlier, interrupted run of this ingest
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
        if self.via_update:
            effect = await self._via_update(handle, ev, DelinquentAccountWorkflow.apply_event, to_case_event(ev),
                                            _REFUSED_WHAT.get(ev.type, ev.type))
            return effect_status(effect), _detail(ev, effect), effect
        try:
            await handle.signal(DelinquentAccountWorkflow.event, to_case_event(ev), rpc_timeout=self._rpc_timeout)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            return await self._to_closed_case(ev)
        return "dispatched", None

    async def _via_update(self, handle, ev, update, request, what: str) -> Any:
        """A case Update (update id = event id, so a retry is the same
        update).  Returns the Update's result.  Its validator's "no effect"
        (``apply_event``: the event does not apply) raises :class:`_Settled`
        with ``no_effect`` and the reason; any other refusal becomes the
        rejection.  A case that has finished or a worker that does not answer
        in time raise :class:`_Settled` with the event's outcome."""
        try:
            return await asyncio.wait_for(handle.execute_update(update, request, id=ev.event_id), self.update_timeout)
        except WorkflowUpdateFailedError as e:
            reason = str(e.cause.message if getattr(e.cause, "message", None) else e.cause or e)
            if getattr(e.cause, "type", None) == "NoEffect":
                raise _Settled(NO_EFFECT, reason) from None
            await rows.mark_rejected(self.db, ev.event_id)
            raise EventRejected(f"{what} refused: {reason}", ev.event_id) from None
        except asyncio.TimeoutError:
            # Left pending: the server keeps the update, and running the same
            # command again (same event id) waits for the same update.
            raise _Settled("pending", f"no worker answered within {self.update_timeout:.0f} s; "
                                      f"the {what} applies when a worker takes the update") from None
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            raise _Settled(*await self._to_closed_case(ev)) from None

    @property
    def _rpc_timeout(self) -> timedelta:
        """How long one call waits for an answer: an unreachable server is given
        up after ``temporal_timeout`` of retries (support/temporal.py), a silent
        or slow one after this (a busy server is not an outage)."""
        return timedelta(seconds=max(self.settings.temporal_timeout, SILENT_TEMPORAL_SECONDS))

    async def _elsewhere(self, account: str) -> str:
        """Why a default is refused whose case already exists in the namespace
        (a fresh database on an old namespace): its case is not this database's."""
        workflow_id = case_workflow_id(account)
        description = await self.client.get_workflow_handle(workflow_id).describe(rpc_timeout=self._rpc_timeout)
        state = description.status.name.lower() if description.status else "unknown"
        ran = "runs" if state == "running" else f"ran ({state})"
        return (f"a case for {account} already {ran} in the Temporal namespace {self.client.namespace} "
                f"(workflow {workflow_id}) but is not in this database")

    async def _to_closed_case(self, ev) -> tuple[str, str | None]:
        """The case has finished: record a late payment (once per payment id);
        anything else changes nothing and says so (no effect, as the case's own
        answer while it is closing).  An account whose case never opened has
        nothing to record a payment against: rejected."""
        async with self.db.sessions() as s:
            case = await s.get(Case, ev.account)
        if case is None:  # its default was accepted but no case ever opened: nothing to pay into
            await rows.mark_rejected(self.db, ev.event_id)
            raise EventRejected(f"account {ev.account} has no case (its case never opened)", ev.event_id)
        reason = case.closed_reason or "closed"
        if isinstance(ev, PaymentReceived):
            async with self.db.transaction() as s:
                await s.execute(
                    self.db.insert(Payment).values(
                        payment_id=ev.payment_id, account_id=ev.account, amount=Decimal(ev.amount),
                        currency=case.currency, received_at=ev.occurred_at, source="late",
                        outstanding_after=case.outstanding, request_key=ev.event_id,
                    ).on_conflict_do_nothing()
                )
                row = await s.get(Payment, (ev.account, ev.payment_id))
            if row.request_key != ev.event_id:
                return NO_EFFECT, f"no effect: payment {ev.payment_id} was already recorded"
            return "recorded", f"late payment on a case closed {reason}"
        return NO_EFFECT, f"no effect: case is closed ({reason})"  # SPEC §5: accepted, changes nothing
