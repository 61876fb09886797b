"""The desk's pages after sign-in: my queue, a task (claim, release, the
outcome form), the supervisor page and, for admins, the operators.

A GET shows; a POST (CSRF-checked) acts through the store and redirects to
the task page with one line saying what was done (post/redirect/get). A
refusal is an error page with its status and the store's message.
"""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from desk import operators
from desk.entries import OUTCOMES, Entry, Invalid
from desk.operators import KINDS, ROLES, Actor
from desk.web import auth, casefile
from desk.web.auth import PageError
from workflows import rules

QUEUE_LIMIT = 200


async def signed_in(request: Request, desk) -> Actor:
    actor = await auth.current_operator(request, desk.db)
    request.state.actor = actor
    return actor


def _date(text: str | None, what: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{what} {text!r} is not a date: YYYY-MM-DD, like 2027-01-15") from None


def _text(form, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def entry_from(form) -> Entry:
    """The outcome form as the store's Entry (the store validates it as it does the CLI's)."""
    outcome = _text(form, "outcome")
    if outcome is None:
        raise Invalid("choose an outcome")
    return Entry(outcome=outcome, promise_date=_date(form.get("promise_date"), "promise date"),
                 paid=_text(form, "paid"), note=_text(form, "note"), phone=_text(form, "phone"),
                 reference=_text(form, "reference"), on=_date(form.get("on"), "court date"))


def add_routes(app: FastAPI, desk) -> None:
    @app.get("/queue", response_class=HTMLResponse)
    async def queue(request: Request, team: str | None = None, kind: str | None = None) -> Response:
        actor = await signed_in(request, desk)
        if actor.role == "admin":
            return RedirectResponse("/operators", status_code=303)
        store = await desk.store()
        tasks = await store.list_tasks(actor.name, team=team or None, kind=kind or None, limit=QUEUE_LIMIT)
        phones = await casefile.masked_phones(desk.db, [t.id for t in tasks])
        scope = operators.queue_scope(actor)
        return desk.page(request, "queue.html", tasks=tasks, phones=phones, team=team or "", kind=kind or "",
                         kinds=[k for k in KINDS if k in scope.kinds],
                         teams=sorted(scope.teams) if scope.teams is not None else None,
                         limit=QUEUE_LIMIT, now=await desk.clock())

    @app.get("/tasks/{task_id}", response_class=HTMLResponse)
    async def task_page(request: Request, task_id: int) -> Response:
        actor = await signed_in(request, desk)
        store = await desk.store()
        detail = await store.get_task(actor.name, task_id)
        file = await casefile.load(desk.db, store.client, detail.task.id, actor.name)
        t = detail.task
        may_complete = t.status == "claimed" and (t.claimed_by == actor.name or actor.role == "supervisor")
        today = rules.local_date(await desk.clock(), t.timezone) if t.timezone else None
        return desk.page(request, "task.html", d=detail, t=t, case=detail.case, file=file,
                         may_complete=may_complete, today=today, outcomes=t.expects or OUTCOMES[t.kind])

    @app.post("/tasks/{task_id}/claim")
    async def claim(request: Request, task_id: int) -> Response:
        actor = await signed_in(request, desk)
        await auth.posted_form(request)
        task = await (await desk.store()).claim(actor.name, task_id)
        held = " — the call slot is reserved for you; the number is shown in full" if task.kind == "human_call" else ""
        request.session["flash"] = f"task {task.id} claimed{held}"
        return RedirectResponse(f"/tasks/{task.id}", status_code=303)

    @app.post("/tasks/{task_id}/release")
    async def release(request: Request, task_id: int) -> Response:
        actor = await signed_in(request, desk)
        await auth.posted_form(request)
        task = await (await desk.store()).release(actor.name, task_id)
        request.session["flash"] = f"task {task.id} released: back in the queue, no call made"
        return RedirectResponse("/queue", status_code=303)

    @app.post("/tasks/{task_id}/complete")
    async def complete(request: Request, task_id: int) -> Response:
        actor = await signed_in(request, desk)
        form = await auth.posted_form(request)
        done = await (await desk.store()).complete(actor.name, task_id, entry_from(form))
        request.session["flash"] = done.effect + (f" ({done.warning})" if done.warning else "")
        return RedirectResponse(f"/tasks/{done.task.id}", status_code=303)

    @app.get("/supervisor", response_class=HTMLResponse)
    async def supervisor_page(request: Request) -> Response:
        actor = await signed_in(request, desk)
        refusal = operators.action_refusal(actor, "supervise")
        if refusal:
            await operators.audit(desk.db, actor.name, "supervise", "refused", refusal)
            raise PageError(403, refusal, "Not allowed")
        from desk.web.app import supervisor_context
        return desk.page(request, "supervisor.html", **await supervisor_context(desk))

    @app.get("/operators", response_class=HTMLResponse)
    async def operators_page(request: Request) -> Response:
        actor = await _admin(request)
        return desk.page(request, "operators.html", people=await operators.list_operators(desk.db), roles=ROLES,
                         me=actor)

    @app.post("/operators")
    async def add_operator(request: Request) -> Response:
        actor = await _admin(request)
        form = await auth.posted_form(request)
        teams = [t.strip() for t in str(form.get("teams") or "").split(",") if t.strip()]
        try:
            added = await operators.add_operator(desk.db, str(form.get("name") or "").strip(),
                                                 str(form.get("role") or ""), teams,
                                                 str(form.get("password") or "") or None, by=actor.name)
        except operators.OperatorError as e:
            await operators.audit(desk.db, actor.name, "add_operator", "refused", str(e))
            raise PageError(422, str(e)) from None
        request.session["flash"] = f"operator {added.name} added: {added.role}"
        return RedirectResponse("/operators", status_code=303)

    async def _admin(request: Request) -> Actor:
        actor = await signed_in(request, desk)
        refusal = operators.action_refusal(actor, "manage_operators")
        if refusal:
            raise PageError(403, refusal, "Not allowed")
        return actor
