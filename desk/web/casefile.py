"""The case behind a task, as the task page shows it: what ``collections
show`` prints — the case's own ``status`` query (stage, balance, what it waits
for and until when, protections, the promise) and, from the database, its
contacts, payments and who did what — with the debtor's phone number masked
unless the person asking holds the task's call.

Times are the debtor's local time with the zone and the year
(:func:`workflows.presentation.local_stamp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError

from db.models import CaseHistory, ContactAttempt, Debtor, Payment, WorkItem
from db.session import Database
from support.logs import mask_phone
from workflows.model import case_workflow_id
from workflows.presentation import local_stamp
from workflows.status import CaseStatus

QUERY_TIMEOUT = timedelta(seconds=5)


@dataclass
class Live:
    """The case's answer to its ``status`` query, for people; ``error`` when it did not answer."""

    waits_for: str | None = None
    paused_by: list[str] = field(default_factory=list)
    promised: str | None = None
    limitation: str | None = None
    next_action_at: datetime | None = None
    closed: str | None = None
    error: str | None = None


@dataclass
class CaseFile:
    phone: str  # masked unless the reader holds the call
    phone_shown_in_full: bool
    live: Live
    contacts: list[tuple[str, str, str, str, str]]  # local time, step, channel, outcome, note
    payments: list[tuple[str, str, str]]  # local time, amount, id (source)
    notes: list[tuple[str, str, str]]  # local time, who, what


def _stamp(at: datetime | None, tz: str) -> str:
    return local_stamp(at, tz) if at is not None else ""


async def live_status(client: Client | None, workflow_id: str, tz: str) -> Live:
    if client is None:
        return Live(error="Temporal is not reachable from the desk: the case's live status is not shown")
    try:
        st = await client.get_workflow_handle(workflow_id).query("status", result_type=CaseStatus,
                                                                 rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, TimeoutError) as e:
        return Live(error=f"the case did not answer its status query: {getattr(e, 'message', e)}")
    except Exception as e:  # a payload it cannot decode (encrypted without the keys), a failed query
        return Live(error=f"the case's status could not be read: {type(e).__name__}")
    waits = None
    if st.next_action:
        waits = st.next_action + (f" at {local_stamp(st.next_action_at, tz)}" if st.next_action_at else "")
    elif not st.closed_reason:
        waits = "an event (nothing scheduled)"
    return Live(waits_for=waits, paused_by=[str(p) for p in st.paused_by],
                promised=f"to pay by {st.promised_date}" if st.promised_date else None,
                limitation=f"expires {st.limitation_expires_on}" if st.limitation_expires_on else None,
                next_action_at=st.next_action_at,
                closed=(str(st.closed_reason) + (f" — {st.closed_detail}" if st.closed_detail else ""))
                if st.closed_reason else None)


async def load(db: Database, client: Client | None, task_id: int, reader: str) -> CaseFile | None:
    """The case file of task ``task_id`` for ``reader`` (None: a team's task, no case)."""
    async with db.sessions() as s:
        item = await s.get(WorkItem, task_id)
        if item is None or item.account_id is None:
            return None
        debtor = await s.get(Debtor, item.debtor_id) if item.debtor_id else None
        attempts = (await s.scalars(select(ContactAttempt).where(ContactAttempt.account_id == item.account_id)
                                    .order_by(ContactAttempt.attempted_at, ContactAttempt.id))).all()
        payments = (await s.scalars(select(Payment).where(Payment.account_id == item.account_id)
                                    .order_by(Payment.received_at))).all()
        notes = (await s.scalars(select(CaseHistory).where(CaseHistory.account_id == item.account_id,
                                                           CaseHistory.note.is_not(None))
                                 .order_by(CaseHistory.revision.desc()).limit(30))).all()
    tz = debtor.timezone if debtor else "UTC"
    holds_call = item.kind == "human_call" and item.status == "claimed" and item.claimed_by == reader
    phone = (debtor.phone if holds_call else mask_phone(debtor.phone)) if debtor else "(no number on file)"
    workflow_id = (item.detail or {}).get("workflow_id") or case_workflow_id(item.account_id)
    contacts = [(f"{a.local_date} {a.local_time[:5]} {a.timezone}", a.step, a.channel, a.outcome,
                 ", ".join(n for n in (f"team {a.team_id}" if a.team_id else "",
                                       f"promised {a.promised_date}" if a.promised_date else "",
                                       f"paid {a.paid_amount}" if a.paid_amount is not None else "") if n))
                for a in attempts]
    return CaseFile(
        phone=phone, phone_shown_in_full=bool(debtor and holds_call),
        live=await live_status(client, workflow_id, tz), contacts=contacts,
        payments=[(_stamp(p.received_at, tz), f"{p.amount} {p.currency}", f"{p.payment_id} ({p.source})")
                  for p in payments],
        notes=[(_stamp(h.recorded_at, tz), h.actor or "(the case)", h.note or "") for h in notes])


async def masked_phones(db: Database, task_ids: list[int]) -> dict[int, str]:
    """The queue's phone column (task id -> number): every number masked."""
    if not task_ids:
        return {}
    async with db.sessions() as s:
        rows = await s.execute(select(WorkItem.id, Debtor.phone).join(Debtor, Debtor.debtor_id == WorkItem.debtor_id)
                               .where(WorkItem.id.in_(task_ids)))
        return {i: mask_phone(p) for i, p in rows.all()}
