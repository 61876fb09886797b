"""The web desk (SPEC §8): signing in, the queue, a task, the supervisor page;
every refusal answers its HTTP status with the store's one line and changes
nothing; sessions and CSRF; and, in a real browser (Playwright driving
Debian's chromium), the whole flow on a case whose human call went to the
desk.

The HTTP tests run the app in the test's own event loop (httpx's ASGI
transport) on work items written directly; the browser test serves it with
Uvicorn and runs a real case on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import socket
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from db.models import (Case, CaseHistory, Complaint, ContactAttempt, Debtor, DeskAction, Payment, TeamSuspension,
                       WorkItem)
from desk import charts, operators, supervisor
from desk.web.app import create_app
from support.settings import load_settings
from tests.helpers import TrackingIngestor, advance_to_local, default_event, uid
from worker import build_worker
from workflows import rules
from workflows.model import case_workflow_id

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 10:00 in Asia/Shanghai, inside the contact window
TZ = "Asia/Shanghai"
PHONE = "+86 138 0013 8000"
PASSWORD = "correct horse battery"
SECRET = "desk-secret-for-tests-" + "x" * 20


async def fixed_clock() -> datetime:
    return NOW


def _case(account: str, debtor: str, team: str, stage: str = "human_call", amount: str = "1200.50") -> Case:
    return Case(account_id=account, workflow_id=f"case-{account}", debtor_id=debtor, contract_id=f"K-{account}",
                currency="CNY", amount_due=Decimal(amount), outstanding=Decimal(amount), due_date=date(2026, 10, 1),
                grade="II", stage=stage, team_id=team, region="CN-GD", limitation_expires_on=date(2029, 10, 1),
                revision=1, opened_at=NOW - timedelta(days=3), updated_at=NOW)


def _item(id: int, account: str, team: str, status: str = "open", **kw) -> WorkItem:
    values = dict(id=id, key=f"case-{account}:human_call:{id}", account_id=account, debtor_id=f"D-{account}",
                  kind="human_call", team_id=team, step="human_call", window_start=NOW - timedelta(hours=2),
                  window_end=NOW + timedelta(hours=12), status=status,
                  detail={"workflow_id": f"case-{account}", "slot": f"case-{account}:human_call:{id}",
                          "attempt_no": id},
                  created_at=NOW - timedelta(hours=2), updated_at=NOW - timedelta(hours=2))
    values.update(kw)
    return WorkItem(**values)


async def seed(db) -> None:
    """Operators, three debtors and cases, and their human calls: 1 (team-a, open), 2 (team-b, open),
    3 (team-a, expired), 4 (team-a, done), 5 (team-a, claimed by bob)."""
    for name, role, teams in (("alice", "agent", ["team-a"]), ("bob", "agent", ["team-a"]),
                              ("carol", "agent", ["team-b"]), ("lee", "legal", []), ("sam", "supervisor", [])):
        await operators.add_operator(db, name, role, teams, PASSWORD, by="test")
    async with db.transaction() as s:
        for account, team in (("ACC-1", "team-a"), ("ACC-2", "team-b"), ("ACC-3", "team-a"), ("ACC-5", "team-a")):
            s.add(Debtor(debtor_id=f"D-{account}", phone=PHONE, timezone=TZ, region="CN-GD", age=41,
                         updated_at=NOW))
            s.add(_case(account, f"D-{account}", team))
        s.add_all([_item(1, "ACC-1", "team-a"), _item(2, "ACC-2", "team-b"),
                   _item(3, "ACC-3", "team-a", "expired", updated_at=NOW - timedelta(hours=1)),
                   _item(4, "ACC-3", "team-a", "done", outcome="no_answer", completed_by="alice",
                         key="case-ACC-3:human_call:done", completed_at=NOW - timedelta(days=1)),
                   _item(5, "ACC-5", "team-a", "claimed", claimed_by="bob", claimed_at=NOW)])


CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # argon2id, quick: tests sign in a lot


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """argon2 with small parameters here (test_operators checks the real ones)."""
    monkeypatch.setattr(operators, "hasher", lambda: CHEAP)


@pytest.fixture
async def app(db):
    await seed(db)
    return create_app(load_settings(database_url=db.url, desk_secret=SECRET), db=db, clock=fixed_clock,
                      connect_temporal=False)


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def message_of(page: str) -> str:
    found = re.search(r'<p class="message">([^<]*)</p>', page)
    assert found, page[:2000]
    return html.unescape(found.group(1))


async def sign_in(app, name: str, password: str = PASSWORD) -> httpx.AsyncClient:
    c = client_for(app)
    page = await c.get("/login")
    r = await c.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password})
    assert r.status_code == 303, r.text
    return c


async def snapshot(db) -> list:
    """What a refusal must not change: the work items, the call ledger, payments."""
    async with db.sessions() as s:
        items = [(w.id, w.status, w.claimed_by, w.outcome, w.attempt_key, w.detail, w.completed_by)
                 for w in (await s.scalars(select(WorkItem).order_by(WorkItem.id))).all()]
        calls = [(a.idempotency_key, a.outcome, a.promised_date)
                 for a in (await s.scalars(select(ContactAttempt).order_by(ContactAttempt.id))).all()]
        paid = [(p.payment_id, p.amount) for p in (await s.scalars(select(Payment))).all()]
    return [items, calls, paid]


async def refused_actions(db) -> list[tuple[str, str, int | None]]:
    async with db.sessions() as s:
        rows = (await s.scalars(select(DeskAction).where(DeskAction.result == "refused")
                                .order_by(DeskAction.id))).all()
    return [(a.operator, a.action, a.work_item_id) for a in rows]


# ---------------------------------------------------------------- the pages

async def test_an_agent_sees_their_teams_queue_in_the_debtors_time_with_phones_masked(app):
    c = await sign_in(app, "alice")
    page = (await c.get("/queue")).text
    assert 'href="/tasks/1"' in page and 'href="/tasks/5"' in page
    assert 'href="/tasks/2"' not in page  # team-b's
    assert "2026-11-24 08:00 Asia/Shanghai" in page and "2026-11-24 22:00 Asia/Shanghai" in page
    assert "***8000" in page and PHONE not in page
    assert "claimed by bob" in page
    cells = re.search(r'<a href="/tasks/1">#1</a>.*?</tr>', page, re.S).group(0)
    assert '<td class="num">3</td>' in cells  # the debtor may still take 3 connected calls today


async def test_claiming_shows_the_number_and_script_then_a_promise_is_recorded(app, db):
    alice, bob = await sign_in(app, "alice"), await sign_in(app, "bob")
    task = (await alice.get("/tasks/1")).text
    assert "***8000" in task and PHONE not in task
    assert "Hello, I am calling from your lender" in task or "您好" in task  # the approved script, zh-Hans for CN-GD
    r = await alice.post("/tasks/1/claim", data={"csrf": csrf_of(task)})
    assert (r.status_code, r.headers["location"]) == (303, "/tasks/1")
    task = (await alice.get("/tasks/1")).text
    assert "task 1 claimed" in task and PHONE in task and "Record outcome" in task
    assert PHONE not in (await bob.get("/tasks/1")).text  # the number is the claiming agent's only
    r = await alice.post("/tasks/1/complete", data={"csrf": csrf_of(task), "outcome": "answered",
                                                    "promise_date": "2026-12-01", "note": "will pay next week"})
    assert r.status_code == 303
    assert "call recorded: answered; promise to pay by 2026-12-01" in (await alice.get("/tasks/1")).text
    async with db.sessions() as s:
        item = await s.get(WorkItem, 1)
        call = await s.scalar(select(ContactAttempt).where(ContactAttempt.idempotency_key == item.attempt_key))
        done = (await s.scalars(select(DeskAction.action).where(DeskAction.operator == "alice",
                                                                 DeskAction.result == "done"))).all()
    assert (item.status, item.outcome, item.completed_by) == ("done", "answered", "alice")
    assert (call.outcome, call.promised_date, call.connected) == ("answered", date(2026, 12, 1), True)
    assert {"sign_in", "claim", "complete"} <= set(done)


async def test_release_gives_the_task_back_and_frees_the_call_slot(app, db):
    alice = await sign_in(app, "alice")
    token = csrf_of((await alice.get("/queue")).text)
    await alice.post("/tasks/1/claim", data={"csrf": token})
    r = await alice.post("/tasks/1/release", data={"csrf": token})
    assert r.status_code == 303
    assert "task 1 released" in (await alice.get("/queue")).text
    async with db.sessions() as s:
        assert (await s.get(WorkItem, 1)).status == "open"
        assert (await s.scalars(select(ContactAttempt))).all() == []


# ---------------------------------------------------------------- refusals: status, message, nothing changed

REFUSALS = [
    # (who, method, path, form, status, message)
    ("alice", "get", "/tasks/999", {}, 404, "no task 999"),
    ("alice", "post", "/tasks/999/claim", {}, 404, "no task 999"),
    ("alice", "post", "/tasks/1%20OR%201=1/claim", {}, 404, "a task id is a number"),
    ("alice", "post", "/tasks/2/claim", {}, 403, "this task belongs to team team-b; alice works for team-a"),
    ("alice", "get", "/tasks/2", {}, 403, "this task belongs to team team-b"),
    ("alice", "post", "/tasks/3/claim", {}, 409, "task 3 expired at"),
    ("alice", "post", "/tasks/4/claim", {}, 409, "task 4 is already completed (no_answer, by alice)"),
    ("alice", "post", "/tasks/5/claim", {}, 409, "task 5 is already claimed by bob"),
    ("alice", "post", "/tasks/5/complete", {"outcome": "answered"}, 409, "task 5 is claimed by bob, not by alice"),
    ("bob", "post", "/tasks/5/complete", {"outcome": "answered", "promise_date": "2026-11-20"}, 422,
     "promise date 2026-11-20 is in the past (today is 2026-11-24 in Asia/Shanghai)"),
    ("bob", "post", "/tasks/5/complete", {"outcome": "answered", "promise_date": "next week"}, 422,
     "promise date 'next week' is not a date"),
    ("bob", "post", "/tasks/5/complete", {"outcome": "answered", "paid": "12,5"}, 422,
     "payment '12,5' is not accepted: a positive decimal amount"),
    ("bob", "post", "/tasks/5/complete", {"outcome": "answered", "paid": "-3.00"}, 422,
     "payment '-3.00' is not accepted"),
    ("bob", "post", "/tasks/5/complete", {"outcome": "accepted"}, 422, "outcome 'accepted' is not accepted for task 5"),
    ("bob", "post", "/tasks/5/complete", {}, 422, "choose an outcome"),
    ("lee", "post", "/tasks/1/claim", {}, 403, "only agents or supervisors work human_call tasks; lee's role is legal"),
    ("alice", "get", "/supervisor", {}, 403, "only supervisors may open the supervisor page; alice's role is agent"),
    ("alice", "get", "/operators", {}, 403, "only admins may manage operators"),
]


@pytest.mark.parametrize("who,method,path,form,status,message", REFUSALS,
                         ids=[f"{w}-{m}-{p}-{s}" for w, m, p, _, s, _ in REFUSALS])
async def test_a_refusal_says_why_and_changes_nothing(app, db, who, method, path, form, status, message):
    c = await sign_in(app, who)
    token = csrf_of((await c.get("/queue")).text)  # the sign-out form carries the session's token
    before = await snapshot(db)
    if method == "get":
        r = await c.get(path)
    else:
        r = await c.post(path, data={"csrf": token, **form})
    assert r.status_code == status, r.text[:500]
    assert message in message_of(r.text)
    assert await snapshot(db) == before


async def test_the_store_s_refusals_are_in_the_audit_trail(app, db):
    alice = await sign_in(app, "alice")
    token = csrf_of((await alice.get("/queue")).text)
    await alice.post("/tasks/2/claim", data={"csrf": token})
    await alice.post("/tasks/5/claim", data={"csrf": token})
    assert await refused_actions(db) == [("alice", "claim", 2), ("alice", "claim", 5)]


async def test_no_session_no_action(app, db):
    anonymous = client_for(app)
    r = await anonymous.get("/queue")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    login = await anonymous.get("/login")
    assert "you are not signed in, or your session has ended" in login.text
    before = await snapshot(db)
    r = await anonymous.post("/tasks/1/claim", data={"csrf": csrf_of(login.text)})
    assert r.status_code == 401 and "you are not signed in" in message_of(r.text)
    forged = client_for(app)
    forged.cookies.set("desk_session", "eyJvcGVyYXRvciI6ICJzYW0ifQ==.forged.signature")  # {"operator": "sam"}
    r = await forged.post("/tasks/1/claim", data={"csrf": "x"})
    assert r.status_code == 401
    assert (await forged.get("/supervisor")).status_code == 303
    assert await snapshot(db) == before


async def test_a_post_without_the_sessions_csrf_token_is_refused(app, db):
    alice = await sign_in(app, "alice")
    other = await sign_in(app, "bob")
    bobs_token = csrf_of((await other.get("/queue")).text)
    before = await snapshot(db)
    for form in ({}, {"csrf": ""}, {"csrf": "guess"}, {"csrf": bobs_token}):
        r = await alice.post("/tasks/1/claim", data=form)
        assert r.status_code == 403
        assert "security token is missing or does not match your session" in message_of(r.text)
    assert await snapshot(db) == before
    assert (await alice.post("/logout", data={})).status_code == 403  # sign-out too


async def test_sign_in_refusals_and_a_deactivated_operators_session(app, db):
    c = client_for(app)
    token = csrf_of((await c.get("/login")).text)
    for name, password in (("alice", "wrong password"), ("nobody", PASSWORD), ("alice", "")):
        r = await c.post("/login", data={"csrf": token, "name": name, "password": password})
        assert r.status_code == 401 and "unknown operator or wrong password" in r.text
    r = await c.post("/login", data={"name": "alice", "password": PASSWORD})  # no token
    assert r.status_code == 403
    alice = await sign_in(app, "alice")
    await operators.set_active(db, "alice", False, by="sam")
    r = await alice.post("/tasks/1/claim", data={"csrf": "whatever"})
    assert r.status_code == 401 and "operator alice is no longer active" in message_of(r.text)
    async with db.sessions() as s:
        assert (await s.get(WorkItem, 1)).status == "open"


async def test_the_session_cookie_is_signed_httponly_samesite_and_pages_are_locked_down(app):
    c = client_for(app)
    r = await c.get("/login")
    cookie = r.headers["set-cookie"].lower()
    assert "desk_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none': no script at all
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    signed = await sign_in(app, "alice")
    assert signed.cookies["desk_session"] != c.cookies.get("desk_session")  # a new session at sign-in
    r = await signed.post("/logout", data={"csrf": csrf_of((await signed.get("/queue")).text)})
    assert r.status_code == 303 and (await signed.get("/queue")).status_code == 303


async def test_the_desk_secret_is_masked_and_a_short_one_is_one_line(monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setenv("COLLECTIONS_DESK_SECRET", SECRET)
    assert await main(["settings", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["COLLECTIONS_DESK_SECRET"] == "******** (set)" and SECRET not in json.dumps(shown)
    monkeypatch.setenv("COLLECTIONS_DESK_SECRET", "too-short-a-secret")
    assert await main(["desk", "--port", "8080"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "too-short" not in err
    assert "COLLECTIONS_DESK_SECRET='********' is not accepted: must be at least 32 characters" in err


async def test_collections_desk_on_a_taken_port_says_so_in_one_line(db, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setenv("DATABASE_URL", db.url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert await main(["desk", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    assert await main(["desk", "--port", "70000"]) == 2
    assert "--port 70000 is not a port: 1-65535" in capsys.readouterr().err


# ---------------------------------------------------------------- supervisor page

async def seed_supervision(db) -> None:
    async with db.transaction() as s:
        s.add(_case("ACC-9", "D-ACC-1", "team-a", stage="installment", amount="1000.00"))
        closed = _case("ACC-8", "D-ACC-1", "team-a", stage="closed", amount="500.00")
        closed.closed_reason, closed.outstanding = "paid", Decimal("0")
        s.add(closed)
        for account, paused in (("ACC-1", ["disaster_grace"]), ("ACC-2", ["disaster_grace", "dispute"]),
                                ("ACC-3", []), ("ACC-5", []), ("ACC-9", []), ("ACC-8", ["dispute"])):
            s.add(CaseHistory(account_id=account, revision=1, stage="x", grade="II", outstanding=Decimal("1"),
                              paused_by=paused, recorded_at=NOW))
        s.add(Payment(account_id="ACC-8", payment_id="P-1", amount=Decimal("500.00"), currency="CNY",
                      received_at=NOW, source="event"))
        s.add(Payment(account_id="ACC-1", payment_id="P-2", amount=Decimal("200.50"), currency="CNY",
                      received_at=NOW, source="call"))
        for i in range(6):
            s.add(Complaint(event_id=f"c-{i}", team_id="team-b", account_id="ACC-2", day=NOW.date(), text="rude",
                            filed_at=NOW))
        s.add(Complaint(event_id="c-old", team_id="team-a", account_id="ACC-1", day=date(2026, 11, 1), text="x",
                        filed_at=NOW - timedelta(days=23)))
        s.add(TeamSuspension(team_id="team-b", day=NOW.date(), complaints=6, threshold=5, suspended_at=NOW))
        for i, (connected, outcome) in enumerate(((True, "answered"), (True, "answered"), (True, "refused"),
                                                  (False, "no_answer"))):
            s.add(ContactAttempt(idempotency_key=f"k-{i}", account_id="ACC-1", debtor_id="D-ACC-1", step="voice",
                                 attempt_no=i, channel="voice", phone_hash="h1", attempted_at=NOW,
                                 local_date=NOW.date(), local_time="10:00:00", timezone=TZ, outcome=outcome,
                                 connected=connected))
        s.add(ContactAttempt(idempotency_key="k-old", account_id="ACC-2", debtor_id="D-ACC-2", step="voice",
                             attempt_no=1, channel="voice", phone_hash="h2", attempted_at=NOW - timedelta(days=1),
                             local_date=NOW.date() - timedelta(days=1), local_time="10:00:00", timezone=TZ,
                             outcome="answered", connected=True))
        overdue = await s.get(WorkItem, 2)
        overdue.window_end = NOW - timedelta(minutes=5)
        withdrawn = await s.get(WorkItem, 3)
        withdrawn.detail = {**withdrawn.detail, "closed": "withdrawn"}


async def test_the_supervisor_figures(app, db):
    await seed_supervision(db)
    f = await supervisor.figures(db, NOW)
    assert f.open_cases == 5 and dict(f.by_stage) == {"human_call": 4, "installment": 1}
    assert dict(f.by_protection) == {"disaster_grace": 2, "dispute": 1, "none (not paused)": 3}
    assert (f.contacts.connected, f.contacts.dials, dict(f.contacts.debtors)) == (3, 4, {3: 1})
    assert f.contacts.numbers_at_cap == 0
    assert [(k, o, c) for k, o, c in f.open_tasks] == [("human_call", 2, 1)]
    assert (f.overdue_count, [t.id for t in f.overdue]) == (1, [2])
    assert (f.expired_count, [t.id for t in f.expired]) == (1, [3])
    teams = {t.team_id: t for t in f.teams}
    assert (teams["team-b"].complaints_today, teams["team-b"].suspended_since) == (6, NOW)
    assert (teams["team-a"].complaints_today, teams["team-a"].complaints_total, teams["team-a"].suspended_since) \
        == (0, 1, None)
    [cny] = f.recovery
    assert (cny.recovered, cny.due, cny.rate) == (Decimal("700.50"), Decimal("6302.00"), Decimal("11.1"))


async def test_the_supervisor_page_shows_the_figures_with_charts(app, db):
    await seed_supervision(db)
    sam = await sign_in(app, "sam")
    r = await sam.get("/supervisor")
    assert r.status_code == 200
    page = r.text
    assert "Open cases: 5" in page and page.count("<svg") >= 5
    assert "<desc>installment: 1</desc>" in page and "<desc>disaster_grace: 2</desc>" in page
    assert "<desc>team-b: 6</desc>" in page and "threshold 5" in page
    assert "700.50 CNY</strong> recovered of 6,302.00 CNY due: recovery rate 11.1 %" in page
    assert "contacts paused since 2026-11-24 02:00 UTC" in page
    assert 'href="/tasks/2"' in page  # the overdue task
    assert "Ended unworked in the last 24 hours: 1" in page and "<td>withdrawn</td>" in page


async def test_the_supervisor_page_with_an_empty_database(db):
    await operators.add_operator(db, "sam", "supervisor", [], PASSWORD)
    app = create_app(load_settings(database_url=db.url, desk_secret=SECRET), db=db, clock=fixed_clock,
                     connect_temporal=False)
    page = (await (await sign_in(app, "sam")).get("/supervisor")).text
    assert "Open cases: 0" in page and "no open task" in page and "no case yet" in page


def test_a_chart_escapes_its_labels_and_scales_to_its_largest_bar():
    svg = str(charts.bar_chart("teams <by> complaints", [charts.Bar("<script>alert(1)</script>", 6),
                                                          charts.Bar("team-a", 3)], limit=5, limit_label="threshold 5"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<title>teams &lt;by&gt; complaints</title>" in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', svg)]
    assert widths[0] == 2 * widths[1]  # 6 and 3 on one scale
    assert "threshold 5" in svg and "stroke-dasharray" in svg
    assert "nothing here" in str(charts.bar_chart("empty", [], empty="nothing here"))
    share = str(charts.share_bar("recovered", Decimal("25"), Decimal("100"), part_label="25", rest_label="of 100"))
    assert 'width="140.0"' in share  # a quarter of 560


# ---------------------------------------------------------------- in a real browser, on a real case

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("DESK_SCREENSHOTS")  # a directory: save the README's screenshots there


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def served(app):
    """The app on Uvicorn in this event loop (the test's database and Temporal client are bound to it)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def events(*objects: dict) -> list[str]:
    return [json.dumps(o) for o in objects]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium "
                                                         "(.ci/run does)")
async def test_in_a_browser_an_agent_claims_the_day_3_call_and_records_a_promise(env, db, task_queue):
    """Three accounts ingested with COLLECTIONS_CALL_CENTRE=desk, so their day-3 human calls go to the desk; on
    day 3 at 11:00 debtor-local alice signs in, sees them in her queue, claims one, records a promise: the case
    answers that it is deferred to the day after the promise, and its page says so. Then a payment and six
    complaints arrive, and the supervisor sees the recovery and the team's circuit breaker open."""
    from playwright.async_api import async_playwright

    await operators.add_operator(db, "alice", "agent", ["general"], PASSWORD)
    await operators.add_operator(db, "sam", "supervisor", [], PASSWORD)
    accounts = [f"ACC-{n}-{uid()}" for n in (1001, 1002, 1003)]
    settings = load_settings(database_url=db.url, task_queue=task_queue, desk_secret=SECRET, call_centre="desk")
    intake = TrackingIngestor(env.client, db, settings)
    app = create_app(settings, db=db, client=env.client, clock=env.get_current_time, connect_temporal=False)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        start = await advance_to_local(env, TZ, time(10, 0))
        report = await intake.ingest_lines(events(*(
            default_event(account, occurred_at=start, tz=TZ, amount=amount)
            for account, amount in zip(accounts, ("1200.50", "860.00", "15000.00")))), source="test")
        assert report.accepted == 3, report
        await env.sleep(timedelta(days=3, hours=1))
        task_id = await _open_task(db, accounts[0])
        for other in accounts[1:]:
            await _open_task(db, other)
        now = await env.get_current_time()
        promise = rules.local_date(now, TZ) + timedelta(days=5)
        async with served(app) as base, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.goto(f"{base}/queue")
                assert page.url.endswith("/login")  # not signed in: the sign-in page
                await _sign_in(page, "alice")
                await page.wait_for_url(f"{base}/queue")
                row = page.locator("tr", has=page.locator(f'a[href="/tasks/{task_id}"]'))
                assert accounts[0] in await row.inner_text() and "***8000" in await row.inner_text()
                await _shot(page, "desk-queue.png")
                await row.locator("button:has-text('Claim')").click()
                await page.wait_for_url(f"{base}/tasks/{task_id}")
                assert PHONE in await page.locator("#phone").inner_text()  # shown in full to the claiming agent
                await page.check("input[name=outcome][value=answered]")
                await page.fill("input[name=promise_date]", promise.isoformat())
                await page.fill("textarea[name=note]", "Salary comes on the 1st; will pay then.")
                await _shot(page, "desk-task.png")
                await page.click("button:has-text('Record outcome')")
                await page.wait_for_url(f"{base}/tasks/{task_id}")
                flash = await page.locator(".flash").inner_text()
                assert f"promise to pay by {promise}" in flash and "case now promise_to_pay" in flash
                deferred = f"{promise + timedelta(days=1)} "
                assert deferred in flash
                assert deferred in await page.locator("#waits-for").inner_text()  # the case's own status query
                assert PHONE not in await page.content()  # the call is over: masked again
                await page.click("button:has-text('Sign out')")
                await page.wait_for_url(f"{base}/login")

                now = await env.get_current_time()
                report = await intake.ingest_lines(events(
                    {"event_id": f"pay-{uid()}", "type": "payment.received", "occurred_at": now.isoformat(),
                     "account_id": accounts[2], "payment_id": "P-77", "amount": "5000.00"},
                    *({"event_id": f"cmp-{uid()}", "type": "complaint.filed", "occurred_at": now.isoformat(),
                       "account_id": accounts[1], "team_id": "general", "text": "called too often"}
                      for _ in range(6))), source="test")
                assert report.accepted == 7, report
                await _sign_in(page, "sam")
                await page.wait_for_url(f"{base}/supervisor")
                text = await page.locator("main").inner_text()
                assert "Open cases: 3" in text
                assert "5,000.00 CNY recovered of 17,060.50 CNY due: recovery rate 29.3 %" in text
                assert "open: contacts paused since" in text  # team general's circuit breaker
                await _shot(page, "desk-supervisor.png")
            finally:
                await browser.close()
        status = await env.client.get_workflow_handle(case_workflow_id(accounts[0])).query("status")
    assert status["stage"] == "promise_to_pay" and status["promised_date"] == promise.isoformat()
    assert "team_suspended" in status["paused_by"]  # the complaints tripped team general's circuit breaker
    async with db.sessions() as s:
        history = (await s.scalars(select(CaseHistory.actor).where(CaseHistory.account_id == accounts[0],
                                                                   CaseHistory.actor.is_not(None)))).all()
    assert "alice" in history  # the case history names the operator


async def _sign_in(page, name: str) -> None:
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button:has-text('Sign in')")


async def _open_task(db, account: str) -> int:
    for _ in range(300):
        async with db.sessions() as s:
            found = await s.scalar(select(WorkItem.id).where(WorkItem.account_id == account,
                                                             WorkItem.status == "open"))
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no open work item for {account}")


async def _shot(page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / name), full_page=True)
