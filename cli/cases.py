"""Looking at cases: ``status`` (JSON for scripts, SPEC §6 fixed), ``show``
(for people) and ``cases`` (Temporal visibility, filtered on the search
attributes of ``workflows/search.py``).

Every case is reached through a typed handle on ``DelinquentAccountWorkflow``:
``handle.query(DelinquentAccountWorkflow.status)`` answers a ``CaseStatus``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import value_to_type
from temporalio.service import RPCError, RPCStatusCode

from cli import render, show
from cli.errors import FAILED, OK, USAGE, Failed, UsageError
from cli.session import Session, launch, session_of
from workflows import rules
from workflows.case import DelinquentAccountWorkflow
from workflows.model import WORKFLOW_TYPE, case_workflow_id
from workflows.search import CASE_STAGE, DEBTOR_GRADE, DEBTOR_ID, OUTSTANDING_AMOUNT, PAUSED_BY, REGION, STRATEGY
from workflows.status import CaseStatus, Grade, PauseKind, Stage

app = typer.Typer()
PANEL = "Ingest and inspect"
QUERY_TIMEOUT = timedelta(seconds=15)
LIVE_TIMEOUT = timedelta(seconds=5)
Paused = Enum("Paused", {**{k.name: k.value for k in PauseKind}, "ANY": "any"}, type=str)  # type: ignore[misc]


def case_handle(client: Client, account_id: str) -> WorkflowHandle:
    return client.get_workflow_handle_for(DelinquentAccountWorkflow.run, case_workflow_id(account_id))


def as_status(answer: Any) -> CaseStatus:
    """The typed answer; a case from before the typed query answers a dict with the same keys."""
    return answer if isinstance(answer, CaseStatus) else value_to_type(CaseStatus, answer)


async def query_status(handle: WorkflowHandle, timeout: timedelta = QUERY_TIMEOUT) -> CaseStatus | None:
    """The case's status; None if there is no such case."""
    try:
        return as_status(await handle.query(DelinquentAccountWorkflow.status, rpc_timeout=timeout))
    except RPCError as e:
        if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise Failed(f"case {handle.id} did not answer its status query: {e.message} "
                     "(is a worker running? `python worker.py`)") from None


async def _status_or_usage(session: Session, account_id: str) -> CaseStatus | None:
    status = await query_status(case_handle(await session.client(), account_id))
    if status is None:
        render.error(f"no case for account {account_id} (workflow {case_workflow_id(account_id)})")
    return status


Account = Annotated[str, typer.Argument(metavar="ACCOUNT", help="the account id", show_default=False)]


@app.command("status", rich_help_panel=PANEL)
def status(ctx: typer.Context, account: Account) -> Any:
    """Print a case's status query as JSON (for scripts)."""
    async def work() -> int:
        st = await _status_or_usage(session_of(ctx), account)
        if st is None:
            return USAGE
        render.json_out(dataclasses.asdict(st), indent=2)
        return OK
    return launch(ctx, work())


@app.command("show", rich_help_panel=PANEL)
def show_case(ctx: typer.Context, account: Account,
              as_json: Annotated[bool, typer.Option("--json", help="status, contacts and payments as one JSON "
                                                                   "object")] = False) -> Any:
    """A readable summary of one case (for people).

    Stage, balance, what the case waits for, protections, installment plan, legal track, and from the
    database the contact history, payments and who did what; times debtor-local, with the zone and year.
    """
    async def work() -> int:
        session = session_of(ctx)
        st = await _status_or_usage(session, account)
        if st is None:
            return USAGE
        async with session.database() as db:
            history = await show.load_history(db, account)
        if as_json:
            render.json_out({"status": st, "contacts": history.contacts, "payments": history.payments,
                             "history": history.notes}, indent=2)
            return OK
        show.print_case(st, history)
        return OK
    return launch(ctx, work())


# ---------------------------------------------------------------- cases (visibility)

def _in(attribute: str, values: list[str]) -> str:
    if len(values) == 1:
        return f"{attribute} = '{values[0]}'"
    return f"{attribute} IN ({', '.join(repr(v) for v in values)})"


def cases_query(*, stage: list[str] | None = None, grade: list[str] | None = None, region: list[str] | None = None,
                paused: list[str] | None = None, debtor: str | None = None, min_outstanding: str | None = None,
                state: str = "open", extra: str | None = None, strategy: list[str] | None = None) -> str:
    """The visibility query for ``cases`` (values are checked for quotes by the command)."""
    parts = [f"WorkflowType = '{WORKFLOW_TYPE}'", {
        "open": "ExecutionStatus = 'Running'",
        "closed": "ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew'",
    }.get(state, "ExecutionStatus != 'ContinuedAsNew'")]
    if paused and "any" in paused:
        paused = [str(k) for k in PauseKind]
    for key, values in ((CASE_STAGE, stage), (DEBTOR_GRADE, grade), (REGION, region), (PAUSED_BY, paused)):
        if values:
            parts.append(_in(key.name, [str(v) for v in values]))
    if debtor:
        parts.append(f"{DEBTOR_ID.name} = '{debtor}'")
    if min_outstanding:
        parts.append(f"{OUTSTANDING_AMOUNT.name} >= {min_outstanding}")
    if strategy:  # name@version exactly, or a bare name: any of its versions
        parts.append("(" + " OR ".join(f"{STRATEGY.name} = '{s}'" if "@" in s else f"{STRATEGY.name} STARTS_WITH '{s}@'"
                                       for s in strategy) + ")")
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
    next_action_at: datetime | None = None
    timezone: str | None = None
    closed_reason: str | None = None
    currency: str | None = None
    strategy: str | None = None  # name@version (None: a case from before strategies)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


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
            started=wf.start_time.isoformat() if wf.start_time else "", strategy=sa.get(STRATEGY),
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
                st = await query_status(client.get_workflow_handle_for(DelinquentAccountWorkflow.run,
                                                                       row.workflow_id), LIVE_TIMEOUT)
            except Exception:  # no worker, a case mid-migration, encrypted without keys: the table still prints
                return
        if st is not None:
            row.next_action, row.next_action_at, row.timezone = st.next_action, st.next_action_at, st.timezone
            row.closed_reason = str(st.closed_reason) if st.closed_reason else None
            row.currency, row.outstanding, row.stage = st.currency, st.outstanding, str(st.stage)
            row.paused_by = [str(p) for p in st.paused_by]

    await asyncio.gather(*(one(r) for r in rows))


def _quote_free(values: list[str], option: str) -> None:
    """A value goes into the visibility query between quotes: none inside."""
    for v in values:
        if not v or any(c in v for c in "'\"\\") or len(v) > 64:
            raise UsageError(f"{option} must be 1–64 characters without quotes or backslashes, got {v!r}")


def _amount(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise UsageError(f"--min-outstanding must be a decimal amount like 10000.00, got {text!r}")
    return str(value)


def _print_cases(rows: list[CaseRow], state: str, limit: int) -> None:
    headers = ["account", "region", "grade", "stage", "outstanding", "paused", "next", "at (debtor-local)"]
    table = []
    for r in rows:
        when = render.local(r.next_action_at, r.timezone)
        table.append([r.account_id, r.region, r.grade, r.stage, f"{r.outstanding} {r.currency or ''}".strip(),
                      ",".join(r.paused_by), r.next_action or "", when]
                     + ([r.closed_reason or r.status.lower()] if state != "open" else []))
    render.wide(render.table(headers + (["closed"] if state != "open" else []), table,
                             justify={"outstanding": "right"}))
    which = "" if state == "all" else state + " "
    more = " (limit reached: --limit to see more)" if len(rows) >= limit else ""
    render.say(f"{len(rows)} {which}case{'s' if len(rows) != 1 else ''}{more}")


async def run_cases(session: Session, query: str, state: str, *, limit: int, live: bool, as_json: bool) -> int:
    client = await session.client()
    try:
        rows = await list_cases(client, query, limit)
    except RPCError as e:
        render.error(f"visibility query refused: {e.message}\n  query: {query}\n  (the search attributes "
                     "must be registered: `collections search-attributes`)")
        return USAGE if e.status == RPCStatusCode.INVALID_ARGUMENT else FAILED
    if live:
        await add_live_state(client, rows)
    if as_json:
        render.json_out({"query": query, "cases": [r.as_dict() for r in rows]})
    elif not rows:
        render.say(f"no {'' if state == 'all' else state + ' '}cases match: {query}")
    else:
        _print_cases(rows, state, limit)
    return OK


Many = Optional[list[str]]


@app.command("cases", rich_help_panel=PANEL, epilog=(
    "Examples: collections cases --grade III --region CN-XJ --stage asset_preservation  ·  "
    "collections cases --paused disaster_grace  ·  collections cases --min-outstanding 10000 --json  ·  "
    "collections cases --query \"DebtorId = 'DEB-503'\" --all"))
def cases(
    ctx: typer.Context,
    stage: Annotated[Optional[list[Stage]], typer.Option(help="case stage (repeat for several)")] = None,
    grade: Annotated[Optional[list[Grade]], typer.Option(help="debtor grade")] = None,
    region: Annotated[Many, typer.Option(help="region code")] = None,
    paused: Annotated[Optional[list[Paused]], typer.Option(help="held by this protection (any: by any)")] = None,
    debtor: Annotated[Optional[str], typer.Option(metavar="DEBTOR_ID", help="one debtor's cases")] = None,
    min_outstanding: Annotated[Optional[str], typer.Option(metavar="AMOUNT", help="outstanding at least AMOUNT")
                               ] = None,
    query: Annotated[Optional[str], typer.Option(metavar="QUERY", help="an extra visibility clause, ANDed")] = None,
    strategy: Annotated[Many, typer.Option(metavar="NAME[@VERSION]", help="started with this strategy (any "
                                                                          "version of NAME)")] = None,
    closed: Annotated[bool, typer.Option("--closed", help="closed cases instead of open ones")] = False,
    all_: Annotated[bool, typer.Option("--all", help="open and closed cases")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, metavar="N", help="at most N cases")] = 200,
    live: Annotated[bool, typer.Option(help="ask each case for its next action")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="the query and the cases as JSON")] = False,
) -> Any:
    """List cases from Temporal visibility, filtered by stage, grade, region or pause.

    Open cases (or --closed / --all), filtered on the search attributes; repeat a filter for any of several
    values. Next action and its local time come from each case's status query (--no-live to skip).
    """
    async def work() -> int:
        if closed and all_:
            raise UsageError("--closed and --all exclude each other")
        _quote_free(region or [], "--region")
        _quote_free([debtor] if debtor is not None else [], "--debtor")
        _quote_free(strategy or [], "--strategy")
        state = "all" if all_ else ("closed" if closed else "open")
        q = cases_query(stage=stage, grade=grade, region=region, paused=[str(p.value) for p in paused or []],
                        debtor=debtor, min_outstanding=_amount(min_outstanding), state=state, extra=query,
                        strategy=strategy)
        return await run_cases(session_of(ctx), q, state, limit=limit, live=live, as_json=as_json)
    return launch(ctx, work())
