"""Work items (SPEC §8): what the web desk and ``collections tasks`` both call.

A case opens a work item when a step goes to people (activities/desk_activities.py)
and waits for it (workflows/desk.py).  Here people list, claim, release and
complete them:

- every action checks the operator's role and team (:mod:`desk.operators`),
  validates its input, and changes nothing when it refuses: it raises a
  :class:`DeskError` (:class:`NotFound`, :class:`Forbidden`, :class:`Conflict`,
  :class:`Invalid`) whose message is one line for a person;
- every action, done or refused, appends a ``desk_actions`` row naming the operator;
- claiming a ``human_call`` reserves the call slot in ``contact_attempts`` (a
  ``dialing`` row under the same locks and caps as the automatic calls);
  completing it records the call's outcome on that row, once;
- a completion reaches the case through its ``work_item_done`` Update (the
  item's key and the operator only; notes and numbers stay in the database),
  and the answer says what the case did.  A team's ``compliance_review``
  clears the team the way the ``team.review_cleared`` event does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, or_, select
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.service import RPCError

import compliance
from db.models import Case, CaseHistory, ComplianceIncident, ContactAttempt, Debtor, WorkItem
from db.session import Database
from desk import operators
from desk.entries import (
    OUTCOMES, Conflict, DeskError, Entry, Forbidden, Invalid, NotFound, case_effect, describe, parse_amount, parse_id,
)
from desk.operators import Actor
from intake.protections import Protections
from support.logs import mask_phone
from support.settings import Settings
from workflows import rules
from workflows.work_items import DeskEffect, WorkItemDone
from workflows.presentation import local_stamp

KINDS = operators.KINDS
CONNECTED = ("answered", "refused")  # the debtor was on the line
LIVE = ("open", "claimed")
NOTE_MAX = 2000
INTERNAL = ("workflow_id", "expects", "slot", "attempt_no")  # detail keys for the desk itself, not shown
UPDATE_WAIT = timedelta(seconds=30)  # how long a completion waits for the case's answer

Clock = Callable[[], Awaitable[datetime]]


@dataclass(frozen=True)
class Task:
    """A work item as a person sees it (times UTC; ``*_local`` in the debtor's zone, with its name)."""

    id: int
    kind: str
    status: str
    account_id: str | None
    team_id: str | None
    step: str | None
    window_start: datetime | None
    window_end: datetime | None
    timezone: str | None
    claimed_by: str | None
    outcome: str | None
    completed_by: str | None
    created_at: datetime
    completed_at: datetime | None
    expects: tuple[str, ...]  # the outcomes this task takes
    calls_left: int | None = None  # human_call: connected calls the debtor may still take today

    @property
    def due(self) -> datetime | None:
        return self.window_end

    def local(self, at: datetime | None) -> str | None:
        """``at`` as the debtor's wall-clock time with zone name and year (UTC for a team's task)."""
        return local_stamp(at, self.timezone or "UTC") if at is not None else None

    @property
    def window_local(self) -> str | None:
        if self.window_start is None and self.window_end is None:
            return None
        return f"{self.local(self.window_start) or 'now'} to {self.local(self.window_end) or 'open-ended'}"


@dataclass(frozen=True)
class CaseSummary:
    account_id: str
    debtor_id: str
    stage: str
    grade: str
    outstanding: str
    currency: str
    amount_due: str
    region: str
    team_id: str | None
    closed_reason: str | None
    language: str
    history: tuple[tuple[str, str], ...] = ()  # (debtor-local time, note), newest first


@dataclass(frozen=True)
class TaskDetail:
    task: Task
    case: CaseSummary | None  # None: a team's review
    script: str | None = None  # human_call: the approved script, in the debtor's language
    detail: dict[str, Any] = field(default_factory=dict)  # what was entered (note, reference, ...)


@dataclass(frozen=True)
class Completion:
    task: Task
    effect: str  # one line: what happened to the case
    case: DeskEffect | None = None  # the case's answer (None: not reached; it reads the outcome later)
    warning: str | None = None  # e.g. the note was blocked by the compliance screen


def _phone_hash(phone: str) -> str:  # as activities.common.phone_hash: the same ledger key
    return hashlib.sha256(re.sub(r"\D", "", phone).encode()).hexdigest()


async def _wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class DeskStore:
    """The desk's one API.  ``client`` (Temporal) is needed to complete tasks;
    ``clock`` is the time the desk judges windows by (tests: the test server's)."""

    def __init__(self, db: Database, settings: Settings, client: Client | None = None,
                 clock: Clock | None = None) -> None:
        self.db, self.settings, self.client = db, settings, client
        self.rules = settings.contact_rules
        self.clock = clock or _wall_clock

    # ------------------------------------------------------------ reading

    async def actor(self, name: str) -> Actor:
        actor = await operators.get_operator(self.db, name) if name and operators.NAME.match(name) else None
        if actor is None:
            raise NotFound(f"no operator named {name!r} (an admin adds one: collections operators add)")
        if not actor.active:
            raise Forbidden(f"operator {name} is deactivated")
        return actor

    async def list_tasks(self, operator: str, *, team: str | None = None, kind: str | None = None,
                         status: str | None = None, limit: int = 500) -> list[Task]:
        """The operator's queue: the kinds and teams their role works, live tasks by due time."""
        actor = await self.actor(operator)
        if kind is not None and kind not in KINDS:
            raise Invalid(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        statuses = LIVE if status is None else (status,)
        if status is not None and status not in ("open", "claimed", "done", "expired"):
            raise Invalid(f"unknown status {status!r}: one of open, claimed, done, expired")
        if actor.role == "admin":
            raise Forbidden(f"{actor.name} is an admin: admins manage operators and have no queue")
        scope = operators.queue_scope(actor)
        q = select(WorkItem, Debtor.timezone).outerjoin(Debtor, Debtor.debtor_id == WorkItem.debtor_id).where(
            WorkItem.kind.in_(sorted(scope.kinds)), WorkItem.status.in_(statuses))
        if scope.teams is not None:
            q = q.where(WorkItem.team_id.in_(sorted(scope.teams)))
        if team is not None:
            q = q.where(WorkItem.team_id == team)
        if kind is not None:
            q = q.where(WorkItem.kind == kind)
        q = q.order_by(WorkItem.window_end.is_(None), WorkItem.window_end, WorkItem.created_at, WorkItem.id)
        async with self.db.sessions() as s:
            rows = (await s.execute(q.limit(limit))).all()
            left = await self._calls_left(s, [(r[0], r[1]) for r in rows], await self.clock())
        return [self._task(item, tz, left.get(item.id)) for item, tz in rows]

    async def get_task(self, operator: str, task_id: int | str) -> TaskDetail:
        actor = await self.actor(operator)
        item_id = parse_id(task_id)
        async with self.db.sessions() as s:
            item = await s.get(WorkItem, item_id)
            if item is None:
                raise NotFound(f"no task {item_id}")
            self._may_work(actor, item)
            debtor = await s.get(Debtor, item.debtor_id) if item.debtor_id else None
            case = await s.get(Case, item.account_id) if item.account_id else None
            left = await self._calls_left(s, [(item, debtor.timezone if debtor else None)], await self.clock())
            history = []
            if case is not None:
                history = (await s.scalars(select(CaseHistory).where(CaseHistory.account_id == case.account_id)
                                           .order_by(CaseHistory.revision.desc()).limit(10))).all()
        tz = debtor.timezone if debtor else None
        task = self._task(item, tz, left.get(item.id))
        summary = script = None
        if case is not None:
            summary = CaseSummary(
                account_id=case.account_id, debtor_id=case.debtor_id, stage=case.stage, grade=case.grade,
                outstanding=str(case.outstanding), currency=case.currency, amount_due=str(case.amount_due),
                region=case.region, team_id=case.team_id, closed_reason=case.closed_reason,
                language=compliance.language_for_region(case.region),
                history=tuple((local_stamp(h.recorded_at, tz or "UTC"), h.note or h.stage) for h in history))
            if item.kind == "human_call":
                script = compliance.script_for("human_call", region=case.region,
                                               ref=compliance.spoken_ref(case.account_id),
                                               amount=str(case.outstanding), currency=case.currency,
                                               contract=case.contract_id)
        detail = {k: v for k, v in (item.detail or {}).items() if k not in INTERNAL}
        return TaskDetail(task, summary, script, detail)

    # ------------------------------------------------------------ acting

    async def claim(self, operator: str, task_id: int | str) -> Task:
        """Take a task; a human call reserves the debtor's call slot (refused when the caps are used up)."""
        return await self._audited(operator, "claim", task_id, self._claim)

    async def release(self, operator: str, task_id: int | str) -> Task:
        """Give a claimed task back to the queue (its reserved call slot is freed: no call was made)."""
        return await self._audited(operator, "release", task_id, self._release)

    async def complete(self, operator: str, task_id: int | str, entry: Entry) -> Completion:
        """Record what was done; the case is told and answers what it did."""
        done: Completion = await self._audited(operator, "complete", task_id,
                                               lambda a, i, now: self._complete(a, i, now, entry))
        return await self._deliver(operator, done)

    async def _audited(self, operator: str, action: str, task_id: int | str, work) -> Any:
        item_id: int | None = None
        account: str | None = None
        try:
            actor = await self.actor(operator)
            item_id = parse_id(task_id)
            result = await work(actor, item_id, await self.clock())
        except DeskError as e:
            if item_id is not None:
                async with self.db.sessions() as s:
                    account = await s.scalar(select(WorkItem.account_id).where(WorkItem.id == item_id))
            await operators.audit(self.db, operator or "(nobody)", action, "refused", e.message,
                                  work_item_id=item_id, account_id=account)
            raise
        task = result.task if isinstance(result, Completion) else result
        what = f"{action} {task.kind}" + (f": {task.outcome}" if action == "complete" else "")
        await operators.audit(self.db, actor.name, action, "done", what, work_item_id=task.id,
                              account_id=task.account_id)
        return result

    async def _locked(self, s, item_id: int) -> WorkItem:
        await self.db.lock(s, f"work_item:{item_id}")
        item = await s.get(WorkItem, item_id, populate_existing=True)
        if item is None:
            raise NotFound(f"no task {item_id}")
        return item

    async def _workable(self, s, actor: Actor, item_id: int, now: datetime) -> tuple[WorkItem, Debtor | None]:
        """The task locked, the actor allowed to work it and it still live (not done, not expired), with its
        debtor's row (None for a team's review)."""
        item = await self._locked(s, item_id)
        self._may_work(actor, item)
        debtor = await s.get(Debtor, item.debtor_id) if item.debtor_id else None
        self._live(item, now, debtor.timezone if debtor else None)
        return item, debtor

    def _may_work(self, actor: Actor, item: WorkItem) -> None:
        why = operators.work_refusal(actor, item.kind, item.team_id)
        if why:
            raise Forbidden(f"task {item.id}: {why}")

    def _live(self, item: WorkItem, now: datetime, tz: str | None) -> None:
        stamp = lambda at: local_stamp(at, tz or "UTC")  # noqa: E731
        if item.status == "done":
            raise Conflict(f"task {item.id} is already completed ({item.outcome}, by {item.completed_by})")
        if item.status == "expired" or (item.window_end is not None and now >= item.window_end):
            end = stamp(item.window_end) if item.window_end else "its window"
            raise Conflict(f"task {item.id} expired at {end}; the case offers a new task on its next contact day")

    async def _claim(self, actor: Actor, item_id: int, now: datetime) -> Task:
        async with self.db.transaction() as s:
            item, debtor = await self._workable(s, actor, item_id, now)
            tz = debtor.timezone if debtor else None
            if item.status == "claimed":
                who = "you" if item.claimed_by == actor.name else item.claimed_by
                raise Conflict(f"task {item.id} is already claimed by {who}")
            closed = await s.scalar(select(Case.closed_reason).where(Case.account_id == item.account_id))
            if closed:
                raise Conflict(f"task {item.id}: case {item.account_id} is closed ({closed}); nothing to do")
            if item.window_start is not None and now < item.window_start:
                raise Conflict(f"task {item.id} can be claimed from {local_stamp(item.window_start, tz or 'UTC')}")
            if item.kind == "human_call":
                item.attempt_key = await self._reserve(s, item, debtor, now)
            item.status, item.claimed_by, item.claimed_at, item.updated_at = "claimed", actor.name, now, now
            await s.flush()
            left = await self._calls_left(s, [(item, tz)], now)  # after this call's reserved slot
            return self._task(item, tz, left.get(item.id))

    async def _reserve(self, s, item: WorkItem, debtor: Debtor | None, now: datetime) -> str:
        """The call slot: a ``dialing`` row in contact_attempts, under the automatic calls' locks and caps."""
        if debtor is None:
            raise Conflict(f"task {item.id}: the debtor has no row on file; nothing can be dialled")
        tz = debtor.timezone
        if rules.in_quiet_hours(now, tz, self.rules):
            opens = rules.next_contact_window(now, tz, self.rules)
            raise Conflict(f"task {item.id}: quiet hours for the debtor; calls allowed from {local_stamp(opens, tz)}")
        today, ph = rules.local_date(now, tz), _phone_hash(debtor.phone)
        await self.db.lock(s, f"debtor:{debtor.debtor_id}", f"phone:{ph}")
        connected, dials = await _calls_today(s, debtor.debtor_id, ph, today)
        reason = rules.cap_reason(connected, dials, self.rules)
        if reason:
            raise Conflict(f"task {item.id} cannot be claimed now: {reason}")
        key, attempt_no = (item.detail or {})["slot"], (item.detail or {})["attempt_no"]  # the case's attempt key
        await s.execute(delete(ContactAttempt).where(ContactAttempt.idempotency_key == key,
                                                     ContactAttempt.outcome == "dialing"))
        case = await s.get(Case, item.account_id)
        script = compliance.script_for("human_call", region=debtor.region, ref=compliance.spoken_ref(item.account_id),
                                       amount=str(case.outstanding), currency=case.currency, contract=case.contract_id)
        s.add(ContactAttempt(
            idempotency_key=key, account_id=item.account_id, debtor_id=debtor.debtor_id, step="human_call",
            attempt_no=attempt_no, channel="human", phone_hash=ph,
            phone_masked=mask_phone(debtor.phone), team_id=item.team_id, attempted_at=now, local_date=today,
            local_time=rules.local_datetime(now, tz).strftime("%H:%M:%S"), timezone=tz, outcome="dialing",
            connected=False, script_sha256=hashlib.sha256(script.encode()).hexdigest(),
            retain_until=rules.retain_until(now, self.rules),
        ))
        return key

    async def _release(self, actor: Actor, item_id: int, now: datetime) -> Task:
        async with self.db.transaction() as s:
            item, debtor = await self._workable(s, actor, item_id, now)
            tz = debtor.timezone if debtor else None
            self._claimed_by(actor, item)
            if item.attempt_key:
                await s.execute(delete(ContactAttempt).where(ContactAttempt.idempotency_key == item.attempt_key,
                                                             ContactAttempt.outcome == "dialing"))
            item.status, item.claimed_by, item.claimed_at, item.attempt_key = "open", None, None, None
            item.updated_at = now
            await s.flush()
            return self._task(item, tz)

    def _claimed_by(self, actor: Actor, item: WorkItem) -> None:
        if item.status != "claimed":
            raise Conflict(f"task {item.id} is not claimed: claim it first (collections tasks claim {item.id})")
        if item.claimed_by != actor.name and actor.role != "supervisor":
            raise Conflict(f"task {item.id} is claimed by {item.claimed_by}, not by {actor.name}")

    async def _complete(self, actor: Actor, item_id: int, now: datetime, entry: Entry) -> Completion:
        async with self.db.transaction() as s:
            item, debtor = await self._workable(s, actor, item_id, now)
            tz = debtor.timezone if debtor else None
            self._claimed_by(actor, item)
            detail = self._validated(item, entry, now, tz)
            warning = None
            if item.kind == "human_call":
                warning = await self._record_call(s, item, entry, now, detail)
            elif item.kind == "skip_trace_review" and entry.outcome == "found":
                debtor.phone, debtor.updated_at = entry.phone.strip(), now
                detail["phone"] = mask_phone(entry.phone)  # the number itself stays on the debtors row
            item.status, item.outcome, item.completed_by, item.completed_at, item.updated_at = (
                "done", entry.outcome, actor.name, now, now)
            item.detail = {**(item.detail or {}), **detail}
            await s.flush()
            task = self._task(item, tz)
        return Completion(task, describe(task, entry), warning=warning)

    def _validated(self, item: WorkItem, entry: Entry, now: datetime, tz: str | None) -> dict[str, Any]:
        """The entry as the item's detail, or :class:`Invalid` saying what is wrong."""
        allowed = tuple((item.detail or {}).get("expects") or OUTCOMES[item.kind])
        if entry.outcome not in allowed:
            raise Invalid(f"outcome {entry.outcome!r} is not accepted for task {item.id} ({item.kind}): "
                          f"one of {', '.join(allowed)}")
        if entry.note is not None and len(entry.note) > NOTE_MAX:
            raise Invalid(f"the note is too long: at most {NOTE_MAX} characters")
        extra = [name for name, value, kinds in (
            ("--promise-date", entry.promise_date, ("human_call",)), ("--paid", entry.paid, ("human_call",)),
            ("--phone", entry.phone, ("skip_trace_review",)), ("--reference", entry.reference, ("court_entry",)),
            ("--on", entry.on, ("court_entry",))) if value is not None and item.kind not in kinds]
        if extra:
            raise Invalid(f"{', '.join(extra)} does not apply to a {item.kind} task")
        detail: dict[str, Any] = {"note": entry.note} if entry.note else {}
        today = rules.local_date(now, tz or "UTC")
        if item.kind == "human_call":
            if (entry.promise_date or entry.paid) and entry.outcome != "answered":
                raise Invalid(f"a promise or a payment needs the outcome 'answered', not {entry.outcome!r}")
            if entry.promise_date is not None:
                if entry.promise_date < today:
                    raise Invalid(f"promise date {entry.promise_date} is in the past (today is {today} "
                                  f"in {tz})")
                detail["promise_date"] = entry.promise_date.isoformat()
            paid = parse_amount(entry.paid)
            if paid is not None:
                detail["paid"] = str(paid)
        elif item.kind == "skip_trace_review" and entry.outcome == "found":
            digits = re.sub(r"\D", "", entry.phone or "")
            if not 6 <= len(digits) <= 15 or not re.fullmatch(r"[+\d\s().-]{6,32}", (entry.phone or "").strip()):
                raise Invalid("a found number is needed (--phone), like +86 138 0013 8000")
        elif item.kind == "court_entry":
            on = entry.on or today
            if on > today:
                raise Invalid(f"court date {on} is in the future (today is {today})")
            if on < rules.local_date(item.created_at, tz or "UTC"):
                raise Invalid(f"court date {on} is before the task was opened")
            ref = (entry.reference or "").strip()
            if not ref or len(ref) > 64:
                raise Invalid("the court's reference is needed (--reference), at most 64 characters")
            detail.update(on=on.isoformat(), reference=ref)
        return detail

    async def _record_call(self, s, item: WorkItem, entry: Entry, now: datetime, detail: dict) -> str | None:
        """The call's outcome on its reserved row, once; a note the screen blocks raises an incident."""
        row = await s.scalar(select(ContactAttempt).where(ContactAttempt.idempotency_key == item.attempt_key))
        if row is None or row.outcome != "dialing":
            raise Conflict(f"task {item.id}: its call slot is no longer reserved; release and claim it again")
        row.outcome, row.connected, row.completed_at = entry.outcome, entry.outcome in CONNECTED, now
        row.promised_date = entry.promise_date
        row.paid_amount = Decimal(detail["paid"]) if "paid" in detail else None
        row.transcript = entry.note
        row.recording_ref = f"desk:{item.id}"
        violations = compliance.screen_text(entry.note) if entry.note else []
        if not violations:
            return None
        s.add(ComplianceIncident(attempt_key=row.idempotency_key, account_id=item.account_id, team_id=item.team_id,
                                 source="transcript", kinds=violations, excerpt=entry.note[:500], raised_at=now))
        await open_review(self.db, s, key=f"incident:{row.idempotency_key}", team_id=item.team_id,
                          account_id=item.account_id, debtor_id=item.debtor_id, at=now,
                          detail={"incident": row.idempotency_key, "kinds": violations})
        return f"the note failed the compliance screen ({', '.join(violations)}): a compliance incident is raised"

    # ------------------------------------------------------------ telling the case

    async def _deliver(self, operator: str, done: Completion) -> Completion:
        task = done.task
        if task.kind == "compliance_review":
            return replace(done, effect=await self._review(operator, task))
        async with self.db.sessions() as s:
            item = await s.get(WorkItem, task.id)
        workflow_id = (item.detail or {}).get("workflow_id")
        if self.client is None or not workflow_id:
            return replace(done, effect=done.effect + "; the case reads it when its wait ends")
        try:
            handle = self.client.get_workflow_handle(workflow_id)
            update = await handle.start_update("work_item_done", WorkItemDone(key=item.key, operator=operator),
                                               wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=DeskEffect,
                                               rpc_timeout=UPDATE_WAIT)
            effect: DeskEffect = await update.result(rpc_timeout=UPDATE_WAIT)
        except (WorkflowUpdateFailedError, RPCError, RPCTimeoutOrCancelledError, TimeoutError) as e:
            why = getattr(e, "cause", None) or e
            return replace(done, effect=f"{done.effect}; the case was not told now ({getattr(why, 'message', why)}): "
                                        "it reads the outcome when its wait ends")
        return replace(done, case=effect, effect=done.effect + "; " + case_effect(effect, task.timezone))

    async def _review(self, operator: str, task: Task) -> str:
        if task.account_id is not None:  # a compliance incident on a contact
            return ("review upheld: the incident stands against team " + (task.team_id or "-")
                    if task.outcome == "upheld" else "review cleared: the incident is dismissed")
        if task.outcome != "cleared" or not task.team_id:
            return f"review upheld: team {task.team_id} stays suspended"
        if self.client is None:
            return f"cleared; team {task.team_id} stays suspended until the clearance is sent to its cases"
        try:
            _, detail = await Protections(self.client, self.db, self.settings.complaint_threshold).clear_team(
                f"desk-review-{task.id}", task.team_id, await self.clock(), actor=operator)
        except RPCError as e:
            return f"cleared; team {task.team_id}'s cases were not all told ({e.message}): send team.review_cleared"
        return detail

    # ------------------------------------------------------------ helpers

    def _task(self, item: WorkItem, tz: str | None, calls_left: int | None = None) -> Task:
        return Task(
            id=item.id, kind=item.kind, status=item.status, account_id=item.account_id, team_id=item.team_id,
            step=item.step, window_start=item.window_start, window_end=item.window_end, timezone=tz,
            claimed_by=item.claimed_by, outcome=item.outcome, completed_by=item.completed_by,
            created_at=item.created_at, completed_at=item.completed_at,
            expects=tuple((item.detail or {}).get("expects") or OUTCOMES[item.kind]), calls_left=calls_left)

    async def _calls_left(self, s, items: list[tuple[WorkItem, str | None]], now: datetime) -> dict[int, int]:
        """Connected calls each human_call's debtor may still take today (one query)."""
        wanted = {(i.debtor_id, rules.local_date(now, tz)): i.id for i, tz in items
                  if i.kind == "human_call" and i.debtor_id and tz and i.status in LIVE}
        if not wanted:
            return {}
        ids, days = {d for d, _ in wanted}, {day for _, day in wanted}
        counted = dict(((d, day), n) for d, day, n in (await s.execute(
            select(ContactAttempt.debtor_id, ContactAttempt.local_date, func.count())
            .where(ContactAttempt.debtor_id.in_(ids), ContactAttempt.local_date.in_(days),
                   ContactAttempt.channel.in_(("voice", "human")),
                   or_(ContactAttempt.connected.is_(True), ContactAttempt.outcome == "dialing"))
            .group_by(ContactAttempt.debtor_id, ContactAttempt.local_date))).all())
        cap = self.rules.max_connected_calls_per_debtor_per_day
        out: dict[int, int] = {}
        for i, tz in items:
            if i.id in wanted.values():
                out[i.id] = max(0, cap - counted.get((i.debtor_id, rules.local_date(now, tz)), 0))
        return out


async def _calls_today(s, debtor_id: str, ph: str, day: date) -> tuple[int, int]:
    """(connected or in-flight calls of the debtor, dials of the number) on ``day``: the cap check of
    activities/case_activities.py ``_reserve``, on the same rows."""
    calls = ("voice", "human")
    connected = await s.scalar(select(func.count()).select_from(ContactAttempt).where(
        ContactAttempt.debtor_id == debtor_id, ContactAttempt.local_date == day, ContactAttempt.channel.in_(calls),
        or_(ContactAttempt.connected.is_(True), ContactAttempt.outcome == "dialing")))
    dials = await s.scalar(select(func.count()).select_from(ContactAttempt).where(
        ContactAttempt.phone_hash == ph, ContactAttempt.local_date == day, ContactAttempt.channel.in_(calls),
        ContactAttempt.outcome != "blocked_compliance"))
    return connected or 0, dials or 0


async def open_review(db: Database, s, *, key: str, team_id: str | None, at: datetime,
                      account_id: str | None = None, debtor_id: str | None = None,
                      detail: dict | None = None) -> None:
    """A compliance_review work item, once per ``key`` (in the caller's transaction ``s``)."""
    await s.execute(db.insert(WorkItem).values(
        key=key, account_id=account_id, debtor_id=debtor_id, kind="compliance_review", team_id=team_id,
        step="team_review" if account_id is None else "incident_review", status="open", detail=detail or {},
        created_at=at, updated_at=at,
    ).on_conflict_do_nothing())


__all__ = ["CaseSummary", "Completion", "Conflict", "DeskError", "DeskStore", "Entry", "Forbidden", "Invalid",
           "NotFound", "OUTCOMES", "Task", "TaskDetail", "open_review", "parse_amount", "parse_id"]
