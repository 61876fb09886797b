"""Operator command line for the collections orchestrator.

    python starter.py migrate                       apply database migrations
    python starter.py ingest FILE|-                 ingest JSON Lines events (progress bar on a terminal)
    python starter.py status ACCOUNT                the case's status query, as JSON (for scripts)
    python starter.py show ACCOUNT                  a readable summary of one case (for people)
    python starter.py cases [--stage …]             open cases from Temporal visibility, as a table
    python starter.py verify-evidence               check the evidence log's hash chain

One subcommand per event type (SPEC §5), each validated here first and then
sent through the same ingest path as a file (validated, de-duplicated,
rejected the same way):

    default ACCOUNT …            account.defaulted      pay ACCOUNT --amount 100.00   payment.received
    dispute open|resolve …       dispute.*              suspend ACCOUNT --months 6 …  suspension.granted
    suspension grant|revoke …    suspension.*           disaster REGION [--days 30]   disaster.declared
    complaint ACCOUNT --team …   complaint.filed        review-cleared TEAM           team.review_cleared
    plan accept ACCOUNT …        plan.accepted          recall ACCOUNT                case.recalled
    emit TYPE field=value …      any event type, fields given by hand

Exit codes: 0 done (or a duplicate: nothing changed), 1 rejected or failed,
2 bad arguments (including an unknown account for status/show).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from support.codec import PayloadKeyError, codec_from_settings, make_codec_server, new_key_spec
from intake.events import EVENT_TYPES
from intake.ingest import ConfigError, EventOutcome, Ingestor, ProgressBar
from support.logs import configure_logging
from db import evidence
from db.migrate import upgrade
from db.models import ContactAttempt, Payment
from db.session import Database
from workflows import rules
from workflows.model import WORKFLOW_TYPE, case_workflow_id
from workflows.search import CASE_STAGE, DEBTOR_GRADE, DEBTOR_ID, OUTSTANDING_AMOUNT, PAUSED_BY, REGION
from support.settings import load_settings
from support.temporal import connect as _connect


async def connect():
    return await _connect(load_settings())


def task_queue_from_env() -> str:
    return load_settings().task_queue

INT_FIELDS = {"months", "periods", "days", "age"}
BOOL_FIELDS = {"upheld", "asset_flight_risk"}

OK, FAILED, USAGE = 0, 1, 2
QUERY_TIMEOUT = timedelta(seconds=15)
STAGES = ("verifying", "wake_up_ladder", "promise_to_pay", "skip_tracing", "awaiting_response", "installment",
          "payment_order", "asset_preservation", "closed")
PAUSES = ("quiet_hours",) + tuple(rules.PROTECTIONS)


class UsageError(Exception):
    """A bad argument: printed as ``starter.py: error: …`` with exit code 2."""


class Unanswered(Exception):
    """A service did not answer: printed, exit code 1."""


# ---------------------------------------------------------------- argument types

_MONEY = re.compile(r"^\d+(\.\d{1,2})?$")


def money(text: str) -> str:
    """A positive decimal string with at most two decimals (``100``, ``1200.50``)."""
    value = text.strip()
    if not _MONEY.match(value):
        raise argparse.ArgumentTypeError(
            f"must be a positive decimal amount like 1200.50 (digits, at most 2 decimals, no sign or comma), "
            f"got {text!r}")
    if Decimal(value) <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than zero, got {text!r}")
    if len(value.split(".")[0].lstrip("0")) > rules.MAX_MONEY_DIGITS:
        raise argparse.ArgumentTypeError(f"is too large (at most {rules.MAX_MONEY_DIGITS} digits before the point)")
    return value


def int_between(low: int, high: int, unit: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number of {unit} ({low}–{high}), got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}–{high} {unit}, got {value}")
        return value
    parse.__name__ = unit  # argparse names the type in its messages
    return parse


months = int_between(*rules.SUSPENSION_MONTHS, "months")
periods = int_between(1, 12, "periods")
days = int_between(1, 366, "days")
age = int_between(18, 130, "years")
concurrency = int_between(1, 256, "events at a time")


def nonblank(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be blank")
    return text


def identifier(text: str) -> str:
    if not text.strip() or len(text) > 64 or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"must be 1–64 characters without spaces, got {text!r}")
    return text


def iso_instant(text: str) -> str:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be ISO 8601 like 2026-11-24T10:00:00+08:00, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset (e.g. +08:00 or Z), got {text!r}")
    return value.isoformat()


def iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {text!r}") from None


def currency(text: str) -> str:
    if text not in rules.KNOWN_CURRENCIES:
        raise argparse.ArgumentTypeError(
            f"unknown currency {text!r}; one of: {', '.join(sorted(rules.KNOWN_CURRENCIES))}")
    return text


def tz_name(text: str) -> str:
    if not rules.is_valid_timezone(text):
        raise argparse.ArgumentTypeError(f"unknown IANA time zone {text!r} (e.g. Asia/Shanghai)")
    return text


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"must be a JSON object: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object like '{\"answers\": true}'")
    return value


def query_value(text: str) -> str:
    if not text or any(c in text for c in "'\"\\") or len(text) > 64:
        raise argparse.ArgumentTypeError(f"must be 1–64 characters without quotes or backslashes, got {text!r}")
    return text


# ---------------------------------------------------------------- events

def new_event(kind: str, *, event_id: str | None = None, occurred_at: str | None = None, **fields: Any) -> dict:
    return {
        "event_id": event_id or f"op-{uuid.uuid4()}", "type": kind,
        "occurred_at": occurred_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }


def build_event(kind: str, pairs: list[str]) -> str:
    """An event line from ``field=value`` pairs (money stays a decimal string)."""
    if kind not in EVENT_TYPES:
        raise UsageError(f"unknown event type {kind!r}; one of: {', '.join(sorted(EVENT_TYPES))}")
    event = new_event(kind)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"expected field=value, got {pair!r}")
        key = key.replace("-", "_")
        if key in INT_FIELDS:
            try:
                event[key] = int(value)
            except ValueError:
                raise UsageError(f"{key} must be a whole number, got {value!r}") from None
        elif key in BOOL_FIELDS:
            if value.lower() not in {"true", "false", "yes", "no"}:
                raise UsageError(f"{key} must be true or false, got {value!r}")
            event[key] = value.lower() in {"true", "yes"}
        else:
            event[key] = value
    return json.dumps(event, ensure_ascii=False)


def _defaulted(a: argparse.Namespace) -> dict:
    debtor: dict[str, Any] = {"debtor_id": a.debtor_id, "phone": a.phone, "timezone": a.timezone,
                              "region": a.region, "age": a.age}
    for key, value in (("dialect", a.dialect), ("monthly_disposable_income", a.income), ("address", a.address),
                       ("simulation", a.simulation)):
        if value is not None:
            debtor[key] = value
    fields: dict[str, Any] = {"account_id": a.account_id, "amount_due": a.amount, "currency": a.currency,
                              "due_date": a.due_date, "contract_id": a.contract, "debtor": debtor}
    if a.grade:
        fields["grade"] = a.grade
    if a.asset_flight_risk:
        fields["asset_flight_risk"] = True
    if a.team:
        fields["team_id"] = a.team
    return fields


BUILDERS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "account.defaulted": _defaulted,
    "payment.received": lambda a: {"account_id": a.account_id, "payment_id": a.payment_id or f"P-{uuid.uuid4().hex[:12]}",
                                   "amount": a.amount},
    "dispute.opened": lambda a: {"account_id": a.account_id, "reason": a.reason},
    "dispute.resolved": lambda a: {"account_id": a.account_id, "upheld": a.upheld},
    "suspension.granted": lambda a: {"account_id": a.account_id, "months": a.months, "reason": a.reason},
    "suspension.revoked": lambda a: {"account_id": a.account_id},
    "disaster.declared": lambda a: {"region": a.region, "days": a.days},
    "complaint.filed": lambda a: {"account_id": a.account_id, "team_id": a.team, "text": a.text},
    "team.review_cleared": lambda a: {"team_id": a.team_id},
    "plan.accepted": lambda a: {"account_id": a.account_id, "periods": a.periods},
    "case.recalled": lambda a: {"account_id": a.account_id},
}


def event_from_args(args: argparse.Namespace) -> dict:
    """The event an event subcommand describes (validated by argparse already)."""
    return new_event(args.event_type, event_id=args.event_id, occurred_at=args.occurred_at,
                     **BUILDERS[args.event_type](args))


def print_outcome(outcome: EventOutcome, event: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps({**outcome.as_dict(), "event": event}, ensure_ascii=False))
        return FAILED if outcome.outcome == "rejected" else OK
    subject = event.get("account_id") or event.get("region") or event.get("team_id") or ""
    if outcome.outcome == "rejected":
        print(f"rejected {event['type']} for {subject}: {outcome.reason}", file=sys.stderr)
        return FAILED
    if outcome.outcome == "duplicate":
        was = f" ({outcome.status})" if outcome.status else ""
        print(f"duplicate: event {event['event_id']} was already ingested{was}; nothing changed")
    else:
        print(f"accepted {event['type']} for {subject} (event {event['event_id']}, {outcome.status})")
    if outcome.detail:
        print(f"  {outcome.detail}")
    return OK


async def send_event(event: dict, *, as_json: bool, via_update: bool = False, update_timeout: float = 30.0) -> int:
    line = json.dumps(event, ensure_ascii=False)
    client = await connect()
    async with Database() as db:
        ingestor = Ingestor(client, db, task_queue_from_env(), suspension_via_update=via_update,
                            update_timeout=update_timeout)
        outcome = await ingestor.ingest_event(line, source="cli")
    return print_outcome(outcome, event, as_json)


# ---------------------------------------------------------------- ingest

async def run_ingest(lines, source: str, rejects: Path | None, as_json: bool = False, *,
                     progress: ProgressBar | None = None, parallel: int = 16) -> int:
    client = await connect()
    async with Database() as db:
        report = await Ingestor(client, db, task_queue_from_env()).ingest_lines(
            lines, source=source, rejects_path=rejects, concurrency=parallel, progress=progress)
    if progress is not None:
        progress.close(report)
    if as_json:
        print(json.dumps({**report.as_dict(), "rejects": [{"line": n, "reason": r} for n, r in report.rejects],
                          "rejects_file": report.rejects_file}))
    else:
        print(report.summary())
        for line_no, reason in report.rejects:
            print(f"  line {line_no}: {reason}", file=sys.stderr)
        if report.rejects_file:
            print(f"rejected lines written to {report.rejects_file}", file=sys.stderr)
    return FAILED if report.rejected else OK


def want_progress(flag: bool | None, stream=None) -> bool:
    """--progress / --no-progress win; otherwise only when the stream is a terminal."""
    if flag is not None:
        return flag
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


async def cmd_ingest(args: argparse.Namespace) -> int:
    bar = None
    if args.file == "-":
        if want_progress(args.progress):
            bar = ProgressBar(sys.stderr)
        return await run_ingest(sys.stdin, "stdin", Path(args.rejects or "rejects.jsonl"), args.json,
                                progress=bar, parallel=args.concurrency)
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if want_progress(args.progress):
        with path.open(encoding="utf-8") as f:
            bar = ProgressBar(sys.stderr, total=sum(1 for line in f if line.strip()))
    with path.open(encoding="utf-8") as f:
        rejects = Path(args.rejects) if args.rejects else path.with_suffix(".rejects.jsonl")
        return await run_ingest(f, str(path), rejects, args.json, progress=bar, parallel=args.concurrency)


# ---------------------------------------------------------------- status and show

async def query_status(client: Client, account_id: str) -> dict | None:
    try:
        return await client.get_workflow_handle(case_workflow_id(account_id)).query(
            "status", rpc_timeout=QUERY_TIMEOUT)
    except RPCError as e:
        if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise Unanswered(f"case {case_workflow_id(account_id)} did not answer its status query: {e.message} "
                         "(is a worker running? `python worker.py`)") from None


async def cmd_status(client: Client, account_id: str) -> int:
    status = await query_status(client, account_id)
    if status is None:
        print(f"no case for account {account_id} (workflow {case_workflow_id(account_id)})", file=sys.stderr)
        return USAGE
    print(json.dumps(status, indent=2, ensure_ascii=False))
    return OK


async def load_history(account_id: str) -> tuple[list[dict], list[dict]] | None:
    """Contact attempts and payments from the database, or None if it cannot be read."""
    try:
        async with Database() as db, db.sessions() as s:
            attempts = (await s.scalars(
                select(ContactAttempt).where(ContactAttempt.account_id == account_id)
                .order_by(ContactAttempt.attempted_at, ContactAttempt.id))).all()
            payments = (await s.scalars(
                select(Payment).where(Payment.account_id == account_id).order_by(Payment.received_at))).all()
    except (DBAPIError, OperationalError, OSError):
        return None
    contacts = [{
        "attempted_at": a.attempted_at.isoformat(), "local_date": a.local_date.isoformat(),
        "local_time": a.local_time, "timezone": a.timezone, "step": a.step, "attempt": a.attempt_no,
        "channel": a.channel, "outcome": a.outcome, "team_id": a.team_id,
        "promised_date": a.promised_date.isoformat() if a.promised_date else None,
        "paid_amount": str(a.paid_amount) if a.paid_amount is not None else None,
    } for a in attempts]
    paid = [{"payment_id": p.payment_id, "amount": str(p.amount), "currency": p.currency,
             "received_at": p.received_at.isoformat(), "source": p.source} for p in payments]
    return contacts, paid


def _local(iso: str | None, tz: str) -> str:
    if not iso:
        return ""
    try:
        at = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return rules.local_datetime(at, tz).strftime("%Y-%m-%d %H:%M")


def _relative(iso: str | None, now: datetime) -> str:
    if not iso:
        return ""
    try:
        delta = datetime.fromisoformat(iso) - now
    except (TypeError, ValueError):
        return ""
    seconds = int(delta.total_seconds())
    ahead = seconds >= 0
    seconds = abs(seconds)
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    text = f"{d} d {h} h" if d else (f"{h} h {m} min" if h else f"{m} min")
    return f"in {text}" if ahead else f"{text} ago"


def render_case(st: dict, contacts: list[dict] | None = None, payments: list[dict] | None = None,
                now: datetime | None = None) -> str:
    """A case summary for people, from the ``status`` query (and the database's history)."""
    now = now or datetime.now(timezone.utc)
    tz = st.get("timezone") or rules.DEFAULT_TIMEZONE
    cur = st.get("currency") or ""
    out: list[str] = []

    def row(label: str, value: str) -> None:
        out.append(f"  {label:<12} {value}")

    account = st.get("account_id", "?")
    out.append(f"Case {account}  (workflow {st.get('case_id') or case_workflow_id(account)}, "
               f"debtor {st.get('debtor_id') or '?'}; times in {tz})")
    row("stage", f"{st.get('stage', '?')} · grade {st.get('grade', '?')}")
    balance = f"{st.get('outstanding', '?')} {cur} outstanding"
    if st.get("amount_due"):
        balance += f" of {st['amount_due']} {cur} due"
    row("balance", balance)
    if st.get("closed_reason"):
        detail = f" — {st['closed_detail']}" if st.get("closed_detail") else ""
        row("closed", f"{st['closed_reason']}{detail}")
    paused = st.get("paused_by") or []
    protections = st.get("protections") or []
    held: list[str] = []
    for p in protections:
        until = f"until {_local(p.get('until'), tz)}" if p.get("until") else "until released"
        why = f": {p['reason']}" if p.get("reason") else ""
        ref = f" ({p['ref']})" if p.get("ref") else ""
        held.append(f"{p.get('kind', '?')}{ref} since {_local(p.get('since'), tz)}, {until}{why}")
    held += [kind for kind in paused if kind not in {p.get("kind") for p in protections}]
    for i, text in enumerate(held):
        row("paused by" if i == 0 else "", text)
    if st.get("next_action"):
        when = st.get("next_action_at")
        at = f" at {_local(when, tz)} ({_relative(when, now)})" if when else ""
        row("waits for", f"{st['next_action']}{at}")
    elif not st.get("closed_reason"):
        row("waits for", "an event (nothing scheduled)")
    if st.get("promised_date"):
        row("promised", f"to pay by {st['promised_date']}")
    if st.get("limitation_expires_on"):
        row("limitation", f"expires {st['limitation_expires_on']}")

    plan = st.get("plan")
    if plan:
        out.append("")
        out.append(f"Installment plan ({plan.get('status', '?')}): {plan.get('periods', '?')} × "
                   f"{plan.get('installment', '?')} {cur}, accepted {_local(plan.get('accepted_at'), tz)}")
        for item in plan.get("schedule") or []:
            out.append(f"  due {item.get('due_on', '?')}  {item.get('amount', '?'):>10} {cur}  "
                       f"{'paid' if item.get('paid') else 'open'}")
    elif st.get("plan_offer"):
        offer = st["plan_offer"]
        out.append("")
        out.append(f"Plan offered (not accepted): {offer.get('periods', '?')} × {offer.get('installment', '?')} {cur}")

    legal = st.get("legal")
    if legal:
        out.append("")
        reason = f" — {legal['reason']}" if legal.get("reason") else ""
        out.append(f"Legal track: {legal.get('track', '?')}{reason}")
        if legal.get("status"):
            row("status", legal["status"])
        if legal.get("deadline"):
            row("deadline", f"{_local(legal['deadline'], tz)} ({_relative(legal['deadline'], now)})")
        for step in legal.get("steps") or []:
            detail = f"  {step['detail']}" if step.get("detail") else ""
            out.append(f"  {_local(step.get('at'), tz)}  {step.get('step', '?')}{detail}")
        if legal.get("escalations"):
            row("escalations", "; ".join(str(e) for e in legal["escalations"]))

    out.append("")
    if contacts:
        out.append("Contact history (database)")
        for c in contacts:
            extra = []
            if c.get("team_id"):
                extra.append(f"team {c['team_id']}")
            if c.get("promised_date"):
                extra.append(f"promised {c['promised_date']}")
            if c.get("paid_amount"):
                extra.append(f"paid {c['paid_amount']}")
            when = f"{c.get('local_date', '')} {str(c.get('local_time', ''))[:5]}"
            out.append(f"  {when}  {c.get('step', ''):<12} {c.get('channel', ''):<6} {c.get('outcome', ''):<18} "
                       f"{', '.join(extra)}".rstrip())
    elif st.get("ladder"):
        out.append("Contact history (from the case)")
        for r in st["ladder"]:
            out.append(f"  {_local(r.get('at'), tz)}  {r.get('step', ''):<12} {r.get('outcome', '')}")
    else:
        out.append("Contact history: no contact yet")
    if payments:
        out.append("Payments")
        for p in payments:
            out.append(f"  {_local(p.get('received_at'), tz)}  {p.get('amount'):>10} {p.get('currency', cur)}  "
                       f"{p.get('payment_id')} ({p.get('source')})")
    return "\n".join(out)


async def cmd_show(client: Client, account_id: str, as_json: bool) -> int:
    status = await query_status(client, account_id)
    if status is None:
        print(f"no case for account {account_id} (workflow {case_workflow_id(account_id)})", file=sys.stderr)
        return USAGE
    history = await load_history(account_id)
    contacts, payments = history if history is not None else (None, None)
    if as_json:
        print(json.dumps({"status": status, "contacts": contacts, "payments": payments}, indent=2,
                         ensure_ascii=False))
        return OK
    print(render_case(status, contacts, payments))
    if history is None:
        print("(database not readable: contact history from the case only)", file=sys.stderr)
    return OK


# ---------------------------------------------------------------- cases (visibility)

def _in(attribute: str, values: list[str]) -> str:
    if len(values) == 1:
        return f"{attribute} = '{values[0]}'"
    return f"{attribute} IN ({', '.join(repr(v) for v in values)})"


def cases_query(*, stage: list[str] | None = None, grade: list[str] | None = None, region: list[str] | None = None,
                paused: list[str] | None = None, debtor: str | None = None, min_outstanding: str | None = None,
                state: str = "open", extra: str | None = None) -> str:
    """The visibility query for ``cases``; values are validated (no quotes) by the parser."""
    parts = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if state == "open":
        parts.append("ExecutionStatus = 'Running'")
    elif state == "closed":
        parts.append("ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew'")
    else:
        parts.append("ExecutionStatus != 'ContinuedAsNew'")
    if stage:
        parts.append(_in("CaseStage", stage))
    if grade:
        parts.append(_in("DebtorGrade", grade))
    if region:
        parts.append(_in("Region", region))
    if paused:
        kinds = list(PAUSES) if "any" in paused else paused
        parts.append(_in("PausedBy", kinds))
    if debtor:
        parts.append(f"DebtorId = '{debtor}'")
    if min_outstanding:
        parts.append(f"OutstandingAmount >= {min_outstanding}")
    if extra:
        parts.append(f"({extra})")
    return " AND ".join(parts)


@dataclass
class CaseRow:
    account_id: str
    workflow_id: str
    status: str
    region: str
    grade: str
    stage: str
    outstanding: str
    paused_by: list[str]
    debtor_id: str
    started: str
    next_action: str | None = None
    next_action_at: str | None = None
    timezone: str | None = None
    closed_reason: str | None = None
    currency: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


async def list_cases(client: Client, query: str, limit: int) -> list[CaseRow]:
    rows: dict[str, CaseRow] = {}
    async for wf in client.list_workflows(query, limit=limit * 2):
        if wf.id in rows:
            continue  # an earlier run of the same case (continue-as-new)
        sa = wf.typed_search_attributes
        amount = sa.get(OUTSTANDING_AMOUNT)
        rows[wf.id] = CaseRow(
            account_id=wf.id.removeprefix("case-"), workflow_id=wf.id,
            status=wf.status.name.title().replace("_", "") if wf.status else "?",
            region=sa.get(REGION) or "", grade=sa.get(DEBTOR_GRADE) or "", stage=sa.get(CASE_STAGE) or "",
            outstanding=f"{Decimal(str(amount)).quantize(rules.CENT)}" if amount is not None else "",
            paused_by=list(sa.get(PAUSED_BY) or []), debtor_id=sa.get(DEBTOR_ID) or "",
            started=wf.start_time.isoformat() if wf.start_time else "",
        )
        if len(rows) >= limit:
            break
    return sorted(rows.values(), key=lambda r: r.account_id)


async def add_live_state(client: Client, rows: list[CaseRow]) -> None:
    """Next action and closing reason from each case's status query (bounded parallelism)."""
    gate = asyncio.Semaphore(20)

    async def one(row: CaseRow) -> None:
        async with gate:
            try:
                st = await client.get_workflow_handle(row.workflow_id).query(
                    "status", rpc_timeout=timedelta(seconds=5))
            except Exception:  # no worker, or a case mid-migration: the table still prints
                return
        row.next_action, row.next_action_at = st.get("next_action"), st.get("next_action_at")
        row.timezone, row.closed_reason, row.currency = st.get("timezone"), st.get("closed_reason"), st.get("currency")
        row.outstanding = st.get("outstanding") or row.outstanding
        row.stage = st.get("stage") or row.stage
        row.paused_by = st.get("paused_by", row.paused_by)

    await asyncio.gather(*(one(r) for r in rows))


async def cmd_cases(client: Client, args: argparse.Namespace) -> int:
    state = "all" if args.all else ("closed" if args.closed else "open")
    query = cases_query(stage=args.stage, grade=args.grade, region=args.region, paused=args.paused,
                        debtor=args.debtor, min_outstanding=args.min_outstanding, state=state, extra=args.query)
    try:
        rows = await list_cases(client, query, args.limit)
    except RPCError as e:
        print(f"visibility query refused: {e.message}\n  query: {query}\n"
              "  (the search attributes CaseStage, DebtorGrade, Region, PausedBy, OutstandingAmount and DebtorId "
              "must be registered; `make demo` does)", file=sys.stderr)
        return USAGE if e.status == RPCStatusCode.INVALID_ARGUMENT else FAILED
    if args.live:
        await add_live_state(client, rows)
    if args.json:
        print(json.dumps({"query": query, "cases": [r.as_dict() for r in rows]}, ensure_ascii=False))
        return OK
    if not rows:
        print(f"no {'' if state == 'all' else state + ' '}cases match: {query}")
        return OK
    table = []
    for r in rows:
        when = _local(r.next_action_at, r.timezone or "UTC")[5:] if r.next_action_at else ""
        table.append([r.account_id, r.region, r.grade, r.stage, f"{r.outstanding} {r.currency or ''}".strip(),
                      ",".join(r.paused_by), r.next_action or "", when, r.closed_reason or r.status.lower()
                      if state != "open" else ""])
    headers = ["account", "region", "grade", "stage", "outstanding", "paused", "next", "at (local)"]
    if state != "open":
        headers.append("closed")
    else:
        table = [t[:-1] for t in table]
    print_table(headers, table)
    print(f"{len(rows)} {'' if state == 'all' else state + ' '}case{'s' if len(rows) != 1 else ''}"
          f"{' (limit reached: --limit to see more)' if len(rows) >= args.limit else ''}")
    return OK


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


async def cmd_verify() -> int:
    async with Database() as db:
        report = await evidence.verify_chain(db)
    if report.ok:
        print(f"evidence chain intact: {report.entries} entries")
        return OK
    print(f"evidence chain BROKEN at seq {report.broken_at_seq}: {report.reason}", file=sys.stderr)
    return FAILED


# ---------------------------------------------------------------- the parser

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _event_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("every event command")
    g.add_argument("--event-id", type=nonblank,
                   help="event id (default: a new op-<uuid>); give one to make a retried command a no-op")
    g.add_argument("--occurred-at", type=iso_instant, metavar="ISO",
                   help="when it happened, ISO 8601 with offset (default: now)")
    g.add_argument("--json", action="store_true", help="print the outcome and the event as one JSON object")
    g.add_argument("--dry-run", action="store_true", help="print the event JSON line and send nothing")
    return common


def _event_command(sub, name: str, kind: str, common, help_text: str, example: str,
                   details: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, parents=[common], help=help_text, formatter_class=_Formatter,
                       description=f"{details or help_text}\n\nSends a {kind} event through the ingest path:\n"
                                   "validated, de-duplicated on its event id, rejected with a reason.",
                       epilog=f"example:\n  python starter.py {example}")
    p.set_defaults(event_type=kind)
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="starter.py", formatter_class=_Formatter,
        description="Operate collections cases: ingest events, emit one event of each type, inspect cases.",
        epilog="environment: TEMPORAL_ADDRESS (localhost:7233), TEMPORAL_NAMESPACE (default),\n"
               "  COLLECTIONS_TASK_QUEUE (collections), DATABASE_URL (sqlite+aiosqlite:///./collections.db)\n"
               "exit codes: 0 done or duplicate, 1 rejected or failed, 2 bad arguments\n"
               "help on one command: python starter.py COMMAND --help")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    common = _event_options()

    sub.add_parser("migrate", help="apply Alembic migrations to DATABASE_URL")

    pi = sub.add_parser("ingest", help="ingest events from a JSON Lines file, or - for stdin",
                        formatter_class=_Formatter,
                        description="Ingest JSON Lines events (SPEC §5). Prints the counts and throughput; each "
                                    "rejected line is\nreported with its line number and reason and written to the "
                                    "rejects file and table.\nExit 1 if any line was rejected.",
                        epilog="example:\n  python starter.py ingest samples/events.jsonl\n"
                               "  cat events.jsonl | python starter.py ingest - --json")
    pi.add_argument("file", help="JSON Lines file, or - for stdin")
    pi.add_argument("--rejects", metavar="FILE",
                    help="rejects file (default FILE.rejects.jsonl, or rejects.jsonl for stdin)")
    pi.add_argument("--json", action="store_true", help="print the counts as JSON")
    pi.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bar and throughput on stderr (default: only when stderr is a terminal)")
    pi.add_argument("--concurrency", type=concurrency, default=16, metavar="N",
                    help="events dispatched at once (default 16; one account's events stay in order)")

    pe = sub.add_parser("emit", help="emit any event from field=value pairs",
                        formatter_class=_Formatter,
                        description="Emit one event of any type from field=value pairs (months, periods, days and "
                                    "age are numbers;\nupheld and asset_flight_risk are true/false; money stays a "
                                    "decimal string).",
                        epilog="example:\n  python starter.py emit payment.received account_id=A1 payment_id=P1 "
                               "amount=100.00")
    pe.add_argument("type", help=", ".join(sorted(EVENT_TYPES)))
    pe.add_argument("fields", nargs="*", metavar="field=value")
    pe.add_argument("--json", action="store_true", help="print the counts as JSON")

    # One subcommand per event type.
    pd = _event_command(sub, "default", "account.defaulted", common, "open a case: an account has defaulted",
                        "default ACC-9 --amount 1200.50 --due-date 2026-09-30 --contract K-9 --debtor-id DEB-9 "
                        "--phone '+86 138 0000 0000' --region CN-GD --age 41")
    pd.add_argument("account_id", type=identifier, metavar="ACCOUNT")
    pd.add_argument("--amount", type=money, required=True, help="amount due, a decimal like 1200.50")
    pd.add_argument("--currency", type=currency, default="CNY", help="ISO 4217 code (default CNY)")
    pd.add_argument("--due-date", type=iso_date, required=True, metavar="YYYY-MM-DD", help="when it fell due")
    pd.add_argument("--contract", type=nonblank, required=True, metavar="ID", help="contract reference")
    pd.add_argument("--debtor-id", type=identifier, required=True, metavar="ID", help="pseudonymous debtor id")
    pd.add_argument("--phone", type=nonblank, required=True, help="the debtor's own phone number")
    pd.add_argument("--region", type=nonblank, required=True, help="region code, e.g. CN-GD")
    pd.add_argument("--age", type=age, required=True, help="debtor's age (60+ goes to a dialect team)")
    pd.add_argument("--timezone", type=tz_name, default=rules.DEFAULT_TIMEZONE,
                    help=f"debtor's IANA time zone (default {rules.DEFAULT_TIMEZONE})")
    pd.add_argument("--dialect", help="dialect, for debtors aged 60+")
    pd.add_argument("--income", type=money, metavar="AMOUNT", help="monthly disposable income")
    pd.add_argument("--address", help="postal address (needed for a payment order)")
    pd.add_argument("--grade", choices=rules.GRADES, help="initial grade")
    pd.add_argument("--asset-flight-risk", action="store_true", help="flag asset-flight risk")
    pd.add_argument("--team", metavar="TEAM_ID", help="collection team")
    pd.add_argument("--simulation", type=json_object, metavar="JSON",
                    help="simulated debtor behaviour, e.g. '{\"answers\": true, \"promises_in_days\": 5}'")

    pp = _event_command(sub, "pay", "payment.received", common, "record a payment",
                        "pay ACC-1002 --amount 500.00 --payment-id P-77")
    pp.add_argument("account_id", type=identifier, metavar="ACCOUNT")
    pp.add_argument("--amount", type=money, required=True, help="amount paid, a decimal like 500.00")
    pp.add_argument("--payment-id", type=nonblank, metavar="ID",
                    help="the payment's reference (default: a new P-… id)")

    dispute = sub.add_parser("dispute", help="open or resolve a dispute (pauses the case)")
    dsub = dispute.add_subparsers(dest="action", required=True, metavar="ACTION")
    do = _event_command(dsub, "open", "dispute.opened", common, "the debtor disputes the debt: the case pauses",
                        "dispute open ACC-1004 --reason 'not my loan'")
    do.add_argument("account_id", type=identifier, metavar="ACCOUNT")
    do.add_argument("--reason", type=nonblank, required=True, help="what the debtor says")
    dr = _event_command(dsub, "resolve", "dispute.resolved", common,
                        "resolve a dispute: upheld closes the case, rejected resumes it",
                        "dispute resolve ACC-1004 --rejected")
    dr.add_argument("account_id", type=identifier, metavar="ACCOUNT")
    outcome = dr.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--upheld", dest="upheld", action="store_true",
                         help="the debtor is right: close the case dispute_upheld")
    outcome.add_argument("--rejected", dest="upheld", action="store_false",
                         help="the debt stands: resume the case")

    def update_args(ps: argparse.ArgumentParser, update: str) -> None:
        """--signal / --wait of a command that goes through one of the case's Updates."""
        ps.add_argument("--signal", dest="via_update", action="store_false",
                        help=f"send it as an event signal instead of the {update} Update (no answer from the case)")
        ps.add_argument("--wait", type=int_between(1, 600, "seconds"), default=30, metavar="SECONDS",
                        help="how long to wait for a worker to answer the Update (default 30)")

    def suspension_args(ps: argparse.ArgumentParser) -> None:
        ps.add_argument("account_id", type=identifier, metavar="ACCOUNT")
        ps.add_argument("--months", type=months, required=True, help="1–24 months")
        ps.add_argument("--reason", type=nonblank, required=True, help="why (e.g. illness, unemployment)")
        update_args(ps, "grant_suspension")

    suspend_help = "grant a debt suspension of 1–24 months"
    suspend_details = ("Grant a debt suspension (1–24 months) through the case's grant_suspension Update:\n"
                       "the case answers with the end date, or refuses (e.g. a closed case) and nothing changes.")
    suspension_args(_event_command(sub, "suspend", "suspension.granted", common, suspend_help,
                                   "suspend ACC-1005 --months 6 --reason illness", suspend_details))
    suspension = sub.add_parser("suspension", help="grant or revoke a debt suspension")
    ssub = suspension.add_subparsers(dest="action", required=True, metavar="ACTION")
    suspension_args(_event_command(ssub, "grant", "suspension.granted", common, suspend_help,
                                   "suspension grant ACC-1005 --months 6 --reason illness", suspend_details))
    sr = _event_command(ssub, "revoke", "suspension.revoked", common, "revoke a debt suspension: the case resumes",
                        "suspension revoke ACC-1005")
    sr.add_argument("account_id", type=identifier, metavar="ACCOUNT")

    pz = _event_command(sub, "disaster", "disaster.declared", common,
                        "declare a disaster: every open case in the region pauses", "disaster CN-SC --days 30")
    pz.add_argument("region", type=nonblank, metavar="REGION")
    pz.add_argument("--days", type=days, default=rules.DISASTER_GRACE_DAYS,
                    help=f"grace period in days (default {rules.DISASTER_GRACE_DAYS})")

    pc = _event_command(sub, "complaint", "complaint.filed", common,
                        "file a complaint against a team (too many in a day suspend the team)",
                        "complaint ACC-1010 --team team-b --text 'called me at work'")
    pc.add_argument("account_id", type=identifier, metavar="ACCOUNT")
    pc.add_argument("--team", type=nonblank, required=True, metavar="TEAM_ID", help="the team complained about")
    pc.add_argument("--text", required=True, help="the complaint")

    prc = _event_command(sub, "review-cleared", "team.review_cleared", common,
                         "a compliance review cleared a suspended team: its cases resume",
                         "review-cleared team-b")
    prc.add_argument("team_id", type=nonblank, metavar="TEAM")

    plan = sub.add_parser("plan", help="accept an installment plan")
    plsub = plan.add_subparsers(dest="action", required=True, metavar="ACTION")
    pa = _event_command(plsub, "accept", "plan.accepted", common, "the debtor accepts an installment plan",
                        "plan accept ACC-1003 --periods 6",
                        "Accept an installment plan of at most PERIODS months through the case's accept_plan Update:\n"
                        "the case answers with the schedule, or refuses (a closed case, a plan already running,\n"
                        "a case in the legal branch) and nothing changes.")
    pa.add_argument("account_id", type=identifier, metavar="ACCOUNT")
    pa.add_argument("--periods", type=periods, required=True, help="1–12 monthly installments")
    update_args(pa, "accept_plan")

    prl = _event_command(sub, "recall", "case.recalled", common, "the creditor recalls the case: it closes",
                         "recall ACC-1009")
    prl.add_argument("account_id", type=identifier, metavar="ACCOUNT")

    ps = sub.add_parser("status", help="print a case's status query as JSON (for scripts)")
    ps.add_argument("account_id", metavar="ACCOUNT")

    pw = sub.add_parser("show", help="a readable summary of one case (for people)", formatter_class=_Formatter,
                        description="Stage, balance, what the case waits for, protections, installment plan, legal "
                                    "track,\nand the contact history and payments from the database.")
    pw.add_argument("account_id", metavar="ACCOUNT")
    pw.add_argument("--json", action="store_true", help="status, contacts and payments as one JSON object")

    pl = sub.add_parser(
        "cases", help="list cases from Temporal visibility, filtered by stage, grade, region or pause",
        formatter_class=_Formatter,
        description="Open cases (or --closed / --all) from Temporal visibility, filtered on the search attributes.\n"
                    "Repeat a filter for any of several values. Next action and time come from each case's status "
                    "query\n(--no-live to skip).",
        epilog="examples:\n"
               "  python starter.py cases --grade III --region CN-XJ --stage asset_preservation\n"
               "  python starter.py cases --paused disaster_grace\n"
               "  python starter.py cases --min-outstanding 10000 --json\n"
               "  python starter.py cases --query \"DebtorId = 'DEB-503'\" --all")
    pl.add_argument("--stage", action="append", type=query_value, metavar="STAGE",
                    help=f"case stage ({', '.join(STAGES)})")
    pl.add_argument("--grade", action="append", choices=rules.GRADES)
    pl.add_argument("--region", action="append", type=query_value)
    pl.add_argument("--paused", action="append", choices=PAUSES + ("any",),
                    help="held by this protection (any: held by any)")
    pl.add_argument("--debtor", type=query_value, metavar="DEBTOR_ID")
    pl.add_argument("--min-outstanding", type=money, metavar="AMOUNT", help="outstanding at least AMOUNT")
    pl.add_argument("--query", metavar="QUERY", help="an extra visibility clause, ANDed with the filters")
    state = pl.add_mutually_exclusive_group()
    state.add_argument("--closed", action="store_true", help="closed cases instead of open ones")
    state.add_argument("--all", action="store_true", help="open and closed cases")
    pl.add_argument("--limit", type=int_between(1, 10000, "cases"), default=200, metavar="N",
                    help="at most N cases (default 200)")
    pl.add_argument("--live", action=argparse.BooleanOptionalAction, default=True,
                    help="ask each case for its next action (default on)")
    pl.add_argument("--json", action="store_true", help="the query and the cases as JSON")

    sub.add_parser("verify-evidence", help="verify the evidence log's hash chain")

    pcs = sub.add_parser(
        "codec-server", formatter_class=_Formatter,
        help="serve the payload codec to the Web UI (read encrypted cases)",
        description="Decrypt case payloads for the Temporal Web UI (Temporal's remote codec protocol).\n"
                    "Needs COLLECTIONS_PAYLOAD_KEYS; start the UI with --ui-codec-endpoint http://HOST:PORT.\n"
                    "Anyone who can reach it can read debtors' data: bind it where only authorised staff can.",
        epilog="example:\n  COLLECTIONS_PAYLOAD_KEYS=k1:... python starter.py codec-server --port 8081")
    pcs.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    pcs.add_argument("--port", type=int_between(1, 65535, "port"), default=8081, help="port (default 8081)")
    pcs.add_argument("--allow-origin", action="append", metavar="URL",
                     help="the Web UI's origin (default http://localhost:8233); repeat for several")
    pk = sub.add_parser("new-payload-key", help="print a new payload encryption key for COLLECTIONS_PAYLOAD_KEYS")
    pk.add_argument("--id", default="k1", type=nonblank, help="key id (default k1)")
    return p


async def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)  # exits 2 with a message on bad arguments
    configure_logging(os.environ.get("LOG_LEVEL", "ERROR"))  # the CLI reports outcomes itself
    try:
        return await dispatch(args)
    except UsageError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return USAGE
    except Unanswered as e:
        print(str(e), file=sys.stderr)
        return FAILED
    except (PayloadKeyError, ConfigError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return USAGE
    except KeyError as e:
        if "binary/encrypted" not in str(e):
            raise
        print("this case's payloads are encrypted: set COLLECTIONS_PAYLOAD_KEYS to the keys the worker uses",
              file=sys.stderr)
        return FAILED
    except RuntimeError as e:
        if "connect" not in str(e).lower():
            raise
        address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
        print(f"cannot reach Temporal at {address}: {e}\n  is the server running? `make demo` starts one",
              file=sys.stderr)
        return FAILED


async def dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "migrate":
        await upgrade()
        print("database migrated")
        return OK
    if args.cmd == "ingest":
        return await cmd_ingest(args)
    if args.cmd == "emit":
        line = build_event(args.type, args.fields)
        return await run_ingest([line], "cli", None, args.json)
    if getattr(args, "event_type", None):
        event = event_from_args(args)
        if args.dry_run:
            print(json.dumps(event, ensure_ascii=False))
            return OK
        via_update = args.event_type in ("suspension.granted", "plan.accepted") and getattr(args, "via_update", False)
        return await send_event(event, as_json=args.json, via_update=via_update,
                                update_timeout=getattr(args, "wait", 30))
    if args.cmd == "status":
        return await cmd_status(await connect(), args.account_id)
    if args.cmd == "show":
        return await cmd_show(await connect(), args.account_id, args.json)
    if args.cmd == "cases":
        return await cmd_cases(await connect(), args)
    if args.cmd == "verify-evidence":
        return await cmd_verify()
    if args.cmd == "codec-server":
        return await cmd_codec_server(args)
    if args.cmd == "new-payload-key":
        print(new_key_spec(args.id))
        return OK
    return USAGE


async def cmd_codec_server(args: argparse.Namespace) -> int:
    try:
        codec = codec_from_settings(load_settings())
    except PayloadKeyError as e:
        raise UsageError(str(e)) from None
    if codec is None:
        raise UsageError("COLLECTIONS_PAYLOAD_KEYS is not set: nothing to decrypt with "
                         "(python starter.py new-payload-key makes one)")
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))  # one line per request: who asked to decode
    origins = args.allow_origin or ["http://localhost:8233", "http://127.0.0.1:8233"]
    server = make_codec_server(codec, args.host, args.port, origins)
    print(f"codec server on http://{args.host}:{args.port} for {', '.join(origins)}", flush=True)
    try:
        await asyncio.to_thread(server.serve_forever)
    finally:
        server.server_close()
    return OK


def run() -> int:
    try:
        return asyncio.run(main())
    except DBAPIError as e:
        if "no such table" in str(e) or "does not exist" in str(e):
            print("the database has no schema yet: run `python starter.py migrate` first", file=sys.stderr)
            return FAILED
        raise
    except OSError as e:
        print(f"cannot reach a service: {e}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def exit_now(code: int) -> None:
    """Exit without interpreter teardown: the Temporal client's Core threads can
    abort a finalizing interpreter (temporalio/sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(run())
