"""The web desk's pages under load (issue 13 item 8): the queue and the
supervisor page with 10,000 open cases and 1,000 open tasks in the database.

    .venv/bin/python bench/desk_pages.py [--cases 10000] [--tasks 1000] [--requests 40] [--database URL]

Rows are inserted directly into a fresh migrated database (SQLite in a
temporary directory by default; ``--database postgresql+asyncpg://…`` for an
empty PostgreSQL database): open cases in several stages with their latest
history row (one in five paused by a protection), their debtors in three
time zones, open human calls spread over ten teams, today's contact
attempts, complaints, a tripped circuit breaker and payments. The app runs in
this process (httpx's ASGI transport: no network, no Temporal: the pages
read the database only), signed in as a supervisor and as an agent; each
page is requested ``--requests`` times after a warm-up. Prints milliseconds
per page, median and 95th percentile, and the CPU time per page (which the
machine's other load does not inflate), against the goal of 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import (Case, CaseHistory, Complaint, ContactAttempt, Debtor, Payment, TeamSuspension,  # noqa: E402
                       WorkItem)
from db.session import Database  # noqa: E402
from desk import operators  # noqa: E402
from desk.web.app import create_app  # noqa: E402
from support.settings import load_settings  # noqa: E402

GOAL_MS = 200.0
ZONES = ("Asia/Shanghai", "Asia/Urumqi", "America/New_York")
STAGES = ("wake_up_ladder", "wake_up_ladder", "wake_up_ladder", "installment", "promise_to_pay", "payment_order",
          "asset_preservation", "skip_tracing")
PAUSES = (["disaster_grace"], ["suspension"], ["dispute"], ["team_suspended"], ["disaster_grace", "dispute"])
PASSWORD = "benchmark password"
TEAMS = [f"team-{i}" for i in range(10)]
CHUNK = 2000


async def _insert(db: Database, model, rows: list[dict]) -> None:
    for i in range(0, len(rows), CHUNK):
        async with db.transaction() as s:
            await s.execute(insert(model), rows[i:i + CHUNK])


async def populate(db: Database, now: datetime, n_cases: int, n_tasks: int) -> None:
    debtors, cases, history, tasks, calls, payments = [], [], [], [], [], []
    for i in range(n_cases):
        account, debtor, tz = f"BA-{i:06d}", f"BD-{i:06d}", ZONES[i % len(ZONES)]
        debtors.append(dict(debtor_id=debtor, phone=f"+86 139{i:08d}", timezone=tz, region="CN-GD", age=30 + i % 40,
                            updated_at=now))
        cases.append(dict(account_id=account, workflow_id=f"case-{account}", debtor_id=debtor, contract_id=f"K-{i}",
                          currency="CNY", amount_due=Decimal("1000.00"), outstanding=Decimal("1000.00"),
                          due_date=date(2026, 9, 1), grade="II", stage=STAGES[i % len(STAGES)],
                          team_id=TEAMS[i % len(TEAMS)], region="CN-GD", limitation_expires_on=date(2029, 9, 1),
                          revision=3, opened_at=now - timedelta(days=5), updated_at=now))
        for revision in (1, 2, 3):  # a few history rows each; the latest counts
            history.append(dict(account_id=account, revision=revision, stage=STAGES[i % len(STAGES)], grade="II",
                                outstanding=Decimal("1000.00"),
                                paused_by=PAUSES[i % len(PAUSES)] if revision == 3 and i % 5 == 0 else [],
                                note=f"step {revision}", recorded_at=now - timedelta(days=3 - revision)))
        if i < n_tasks:
            tasks.append(dict(key=f"case-{account}:human_call:1", account_id=account, debtor_id=debtor,
                              kind="human_call", team_id=TEAMS[i % len(TEAMS)], step="human_call",
                              window_start=now - timedelta(hours=1), window_end=now + timedelta(hours=(i % 12) + 1),
                              status="open", detail={"workflow_id": f"case-{account}",
                                                     "slot": f"case-{account}:human_call:1", "attempt_no": 1},
                              created_at=now - timedelta(hours=1), updated_at=now))
        if i % 3 == 0:  # today's calls: one in three debtors was called
            calls.append(dict(idempotency_key=f"case-{account}:voice_robot:1", account_id=account, debtor_id=debtor,
                              step="voice_robot", attempt_no=1, channel="voice", phone_hash=f"h{i}",
                              attempted_at=now - timedelta(hours=1), local_date=now.date(), local_time="10:00:00",
                              timezone=tz, outcome="answered" if i % 2 else "no_answer", connected=bool(i % 2)))
        if i % 10 == 0:
            payments.append(dict(account_id=account, payment_id=f"P-{i}", amount=Decimal("250.00"), currency="CNY",
                                 received_at=now, source="event"))
    for model, rows in ((Debtor, debtors), (Case, cases), (CaseHistory, history), (WorkItem, tasks),
                        (ContactAttempt, calls), (Payment, payments)):
        await _insert(db, model, rows)
    await _insert(db, Complaint, [dict(event_id=f"C-{i}", team_id=TEAMS[i % 3], account_id=f"BA-{i:06d}",
                                       day=now.date(), text="complaint", filed_at=now) for i in range(40)])
    await _insert(db, TeamSuspension, [dict(team_id="team-0", day=now.date(), complaints=14, threshold=5,
                                            suspended_at=now)])
    if db.dialect == "postgresql":  # statistics, as autovacuum keeps them on a live database
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))


async def sign_in(app, name: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.bench")
    page = (await c.get("/login")).text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = await c.post("/login", data={"csrf": token, "name": name, "password": PASSWORD})
    if r.status_code != 303:
        raise SystemExit(f"desk_pages: cannot sign in as {name}: {r.status_code}")
    return c


async def timed(c: httpx.AsyncClient, path: str, requests: int) -> tuple[float, float, float, int]:
    """(median ms, p95 ms, CPU ms per request, bytes) over ``requests`` GETs after 3 warm-ups.

    CPU time is this process's (the app, SQLite's thread included), so it does
    not grow when other programs load the machine, as wall time does."""
    for _ in range(3):
        r = await c.get(path)
        if r.status_code != 200:
            raise SystemExit(f"desk_pages: {path} answered {r.status_code}")
    times = []
    cpu = time.process_time()
    for _ in range(requests):
        start = time.perf_counter()
        r = await c.get(path)
        times.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / requests
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95, cpu_ms, len(r.content)


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory(prefix="desk-bench-")
    url = args.database or f"sqlite+aiosqlite:///{tmp.name}/desk.db"
    await upgrade(url)
    db = Database(url)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        start = time.perf_counter()
        await populate(db, now, args.cases, args.tasks)
        await operators.add_operator(db, "sup", "supervisor", [], PASSWORD)
        await operators.add_operator(db, "agent", "agent", ["team-1"], PASSWORD)
        print(f"database: {db.dialect}; {args.cases:,} open cases, {args.tasks:,} open tasks "
              f"(inserted in {time.perf_counter() - start:.1f} s)")

        async def clock() -> datetime:
            return now

        app = create_app(load_settings(database_url=url, desk_secret="b" * 40), db=db, clock=clock,
                         connect_temporal=False)
        sup, agent = await sign_in(app, "sup"), await sign_in(app, "agent")
        rows = []
        for who, client, path in (("supervisor", sup, "/supervisor"), ("supervisor", sup, "/queue"),
                                  ("agent (1 team)", agent, "/queue")):
            rows.append((f"{path} as {who}", *await timed(client, path, args.requests)))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (wall times grow with the load)")
        print(f"{'page':<28} {'median ms':>10} {'p95 ms':>8} {'CPU ms':>7} {'KiB':>6}  goal {GOAL_MS:.0f} ms")
        for name, median, p95, cpu_ms, size in rows:
            verdict = "ok" if p95 <= GOAL_MS else "over"
            print(f"{name:<28} {median:>10.1f} {p95:>8.1f} {cpu_ms:>7.1f} {size / 1024:>6.0f}  {verdict}")
        return 0 if all(row[2] <= GOAL_MS for row in rows) else 1
    finally:
        await db.dispose()
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="desk_pages.py", description="Time the web desk's queue and supervisor page.")
    p.add_argument("--cases", type=int, default=10_000, help="open cases (default 10000)")
    p.add_argument("--tasks", type=int, default=1_000, help="open tasks, at most --cases (default 1000)")
    p.add_argument("--requests", type=int, default=40, help="timed requests per page (default 40)")
    p.add_argument("--database", metavar="URL", help="an empty database to fill (default: SQLite in a temp dir)")
    args = p.parse_args(argv)
    if args.tasks > args.cases:
        p.error("--tasks cannot exceed --cases")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
