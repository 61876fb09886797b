"""``tasks list|show|claim|release|complete``: the work desk from the command
line (SPEC §8), the same store the web desk calls (:mod:`desk.store`).

The operator is ``--operator NAME`` (default COLLECTIONS_OPERATOR); what they
may see and do is their role's and teams' (desk/operators.py).  Times are the
debtor's local time with zone and year.  A refusal is one line and exit 1,
and nothing changes; ``--json`` prints one JSON document for scripts.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any, Optional

import typer

from cli import render
from cli.errors import FAILED, OK, UsageError
from cli.session import Session, launch, session_of
from desk.store import OUTCOMES, Completion, DeskError, DeskStore, Entry, Task, TaskDetail

PANEL = "People and the work desk"
app = typer.Typer()  # joins the top level with its one group
group = typer.Typer(no_args_is_help=True, help="Work items: the steps of cases that people do (calls, court "
                                               "answers, reviews).")
app.add_typer(group, name="tasks", rich_help_panel=PANEL)

TaskId = Annotated[str, typer.Argument(metavar="ID", help="the task's id (collections tasks list)", show_default=False)]
OperatorOpt = Annotated[Optional[str], typer.Option(
    "--operator", "--actor", metavar="NAME", help="who does it (default: COLLECTIONS_OPERATOR)", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
ALL_OUTCOMES = sorted({o for kind in OUTCOMES.values() for o in kind})


def _operator(session: Session, given: str | None) -> str:
    name = given or session.settings.operator
    if not name:
        raise UsageError("say who you are: --operator NAME (or set COLLECTIONS_OPERATOR)")
    return name


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date: YYYY-MM-DD") from None


def task_json(t: Task) -> dict[str, Any]:
    out = dataclasses.asdict(t)
    out.update(window_local=t.window_local, due_local=t.local(t.window_end))
    return out


def _rows(tasks: list[Task]) -> list[list[str]]:
    return [[str(t.id), t.kind, t.team_id or "-", t.account_id or "-", t.status, t.local(t.window_end) or "-",
             t.claimed_by or "-", "-" if t.calls_left is None else str(t.calls_left)] for t in tasks]


async def _run(ctx: typer.Context, action, *, as_json: bool, needs_client: bool = False) -> int:
    """Open the store, do ``action(store)``, print its result; a refusal is one line, exit 1."""
    session = session_of(ctx)
    client = await session.client() if needs_client else None
    async with session.database() as db:
        store = DeskStore(db, session.settings, client)
        try:
            result = await action(store)
        except DeskError as e:
            if as_json:
                render.json_out({"refused": type(e).__name__, "message": e.message})
            render.error(f"refused: {e.message}")
            return FAILED
    _print(result, as_json)
    return OK


def _print(result: Any, as_json: bool) -> None:
    if isinstance(result, list):
        if as_json:
            render.json_out([task_json(t) for t in result])
        elif not result:
            render.say("no tasks")
        else:
            render.wide(render.table(["id", "kind", "team", "account", "status", "due (debtor-local)",
                                      "claimed by", "calls left"], _rows(result)))
    elif isinstance(result, TaskDetail):
        _print_detail(result, as_json)
    elif isinstance(result, Completion):
        if as_json:
            render.json_out({"task": task_json(result.task), "effect": result.effect, "case": result.case,
                             "warning": result.warning})
        else:
            render.say(f"task {result.task.id} done: {result.effect}")
            if result.warning:
                render.error(f"warning: {result.warning}")
    elif as_json:
        render.json_out(task_json(result))
    else:
        t: Task = result
        what = f"claimed by {t.claimed_by}" if t.status == "claimed" else t.status
        window = f"; window {t.window_local}" if t.window_local else ""
        left = f"; the debtor may take {t.calls_left} more connected calls today" if t.calls_left is not None else ""
        render.say(f"task {t.id} ({t.kind}, account {t.account_id or '-'}) {what}{window}{left}")


def _print_detail(d: TaskDetail, as_json: bool) -> None:
    if as_json:
        render.json_out({"task": task_json(d.task), "case": d.case, "script": d.script, "detail": d.detail})
        return
    t = d.task
    render.say(f"task {t.id}: {t.kind} ({t.step}) for team {t.team_id or '-'}, {t.status}"
               + (f" by {t.claimed_by}" if t.claimed_by else ""))
    if t.window_local:
        render.say(f"window: {t.window_local}")
    render.say(f"outcomes: {', '.join(t.expects)}")
    if d.case:
        c = d.case
        render.say(f"case {c.account_id}: {c.stage}, grade {c.grade}, outstanding {c.outstanding} {c.currency}")
        for when, note in c.history[:5]:
            render.say(f"  {when}  {note}")
    if d.script:
        render.say("script:")
        render.say(d.script)


@group.command("list")
def list_(
    ctx: typer.Context,
    team: Annotated[Optional[str], typer.Option(metavar="TEAM", help="only this team's tasks")] = None,
    kind: Annotated[Optional[str], typer.Option(metavar="KIND", help=f"only {', '.join(OUTCOMES)}")] = None,
    status: Annotated[Optional[str], typer.Option(metavar="STATUS", help="open, claimed, done or expired (default: "
                                                                         "open and claimed)")] = None,
    operator: OperatorOpt = None,
    as_json: JsonOpt = False,
) -> Any:
    """The operator's queue, by due time: the kinds their role works (an agent: their teams' only)."""
    async def work() -> int:
        name = _operator(session_of(ctx), operator)
        return await _run(ctx, lambda store: store.list_tasks(name, team=team, kind=kind, status=status),
                          as_json=as_json)
    return launch(ctx, work())


@group.command("show")
def show(ctx: typer.Context, task_id: TaskId, operator: OperatorOpt = None, as_json: JsonOpt = False) -> Any:
    """One task with the case it belongs to and the approved script."""
    async def work() -> int:
        name = _operator(session_of(ctx), operator)
        return await _run(ctx, lambda store: store.get_task(name, task_id), as_json=as_json)
    return launch(ctx, work())


@group.command("claim")
def claim(ctx: typer.Context, task_id: TaskId, operator: OperatorOpt = None, as_json: JsonOpt = False) -> Any:
    """Take a task (a human call reserves the debtor's call slot: refused in quiet hours or over the caps)."""
    async def work() -> int:
        name = _operator(session_of(ctx), operator)
        return await _run(ctx, lambda store: store.claim(name, task_id), as_json=as_json)
    return launch(ctx, work())


@group.command("release")
def release(ctx: typer.Context, task_id: TaskId, operator: OperatorOpt = None, as_json: JsonOpt = False) -> Any:
    """Give a claimed task back to the queue (a reserved call slot is freed: no call was made)."""
    async def work() -> int:
        name = _operator(session_of(ctx), operator)
        return await _run(ctx, lambda store: store.release(name, task_id), as_json=as_json)
    return launch(ctx, work())


@group.command("complete")
def complete(
    ctx: typer.Context,
    task_id: TaskId,
    outcome: Annotated[str, typer.Option(metavar="OUTCOME", help=f"one of {', '.join(ALL_OUTCOMES)} (as the "
                                                                 "task's kind allows)", show_default=False)],
    promise_date: Annotated[Optional[str], typer.Option(metavar="YYYY-MM-DD", help="answered call: the debtor "
                                                        "promises to pay by")] = None,
    paid: Annotated[Optional[str], typer.Option(metavar="AMOUNT", help="answered call: paid during the call, "
                                                "e.g. 200.00")] = None,
    note: Annotated[Optional[str], typer.Option(metavar="TEXT", help="what was said (screened for prohibited "
                                                "content)")] = None,
    phone: Annotated[Optional[str], typer.Option(metavar="NUMBER", help="skip trace review, found: the new "
                                                 "number")] = None,
    reference: Annotated[Optional[str], typer.Option(metavar="REF", help="court entry: the court's "
                                                     "reference")] = None,
    on: Annotated[Optional[str], typer.Option(metavar="YYYY-MM-DD", help="court entry: the day the court "
                                              "decided (default: today)")] = None,
    operator: OperatorOpt = None,
    as_json: JsonOpt = False,
) -> Any:
    """Record what was done; the case takes it at once and the answer says what it did."""
    async def work() -> int:
        name = _operator(session_of(ctx), operator)
        entry = Entry(outcome, promise_date=_date(promise_date, "--promise-date"), paid=paid, note=note,
                      phone=phone, reference=reference, on=_date(on, "--on"))
        return await _run(ctx, lambda store: store.complete(name, task_id, entry), as_json=as_json,
                          needs_client=True)
    return launch(ctx, work())
