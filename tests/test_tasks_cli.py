"""``collections tasks …`` (SPEC §6, §8): the work desk from the command line,
in-process against a real database and the test server (whose clock starts
at the wall clock's, which the command line judges windows by)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.main import main
from db.models import Case, ContactAttempt, DeskAction, Debtor, Disaster, WorkItem
from desk import operators
from tests.helpers import default_event, point_cli_at, start_case, uid
from worker import build_worker
from workflows import rules

ROOT = Path(__file__).resolve().parent.parent
ZONES = ["Asia/Shanghai", "Europe/London", "America/New_York", "America/Los_Angeles", "Pacific/Auckland",
         "Asia/Kolkata", "Europe/Moscow", "America/Sao_Paulo", "Asia/Dubai", "Pacific/Honolulu", "Asia/Tokyo",
         "Atlantic/Azores"]


def daytime_zone(now: datetime) -> str:
    """A zone where it is between 10:00 and 19:59 now (the debtor's contact window, with room either side)."""
    return next(z for z in ZONES if 10 <= rules.local_datetime(now, z).hour < 20)


async def run(monkeypatch, capsys, env, db, argv: list[str], task_queue: str | None = None) -> tuple[int, str, str]:
    point_cli_at(monkeypatch, env, db, task_queue)
    code = await main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
async def people(db):
    await operators.add_operator(db, "alice", "agent", ["general"])
    await operators.add_operator(db, "olga", "agent", ["team-b"])
    await operators.add_operator(db, "cora", "compliance")
    await operators.add_operator(db, "sam", "supervisor")


async def a_call_task(db) -> tuple[int, str, str]:
    """A human_call task open now (wall clock) for a debtor in daytime, as a case would have opened it."""
    now = datetime.now(timezone.utc)
    tz, account = daytime_zone(now), f"A-CLI-{uid()}"
    debtor = f"D-{account}"
    async with db.transaction() as s:
        s.add(Debtor(debtor_id=debtor, phone="+86 138 0013 8000", timezone=tz, region="CN-GD", age=41,
                     simulation={}, updated_at=now))
        s.add(Case(account_id=account, workflow_id=f"case-{account}", debtor_id=debtor, contract_id="K-1",
                   currency="CNY", amount_due=Decimal("500.00"), outstanding=Decimal("500.00"),
                   due_date=now.date() - timedelta(days=40), grade="II", stage="wake_up_ladder", team_id="general",
                   region="CN-GD", limitation_expires_on=now.date() + timedelta(days=900), revision=1,
                   opened_at=now - timedelta(days=3), updated_at=now))
        item = WorkItem(key=f"case-{account}:human_call:human_call:2", account_id=account, debtor_id=debtor,
                        kind="human_call", team_id="general", step="human_call",
                        window_start=now - timedelta(hours=1), window_end=now + timedelta(hours=2), status="open",
                        detail={"workflow_id": f"case-{account}", "slot": f"case-{account}:human_call:2",
                                "attempt_no": 2}, created_at=now, updated_at=now)
        s.add(item)
        await s.flush()
        return item.id, account, tz


async def test_list_claim_release_and_refusals_in_one_line(env, db, monkeypatch, capsys, people):
    task, account, tz = await a_call_task(db)
    code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "list", "--operator", "alice", "--json"])
    assert (code, err) == (0, "")
    listed = {t["id"]: t for t in json.loads(out)}
    assert listed[task]["kind"] == "human_call" and listed[task]["calls_left"] == 3
    year = datetime.now(timezone.utc).year
    assert listed[task]["due_local"].endswith(tz) and str(year) in listed[task]["due_local"]
    code, out, _ = await run(monkeypatch, capsys, env, db, ["tasks", "list", "--operator", "alice"])
    assert code == 0 and account in out and "due (debtor-local)" in out
    code, out, _ = await run(monkeypatch, capsys, env, db, ["tasks", "list", "--operator", "olga", "--json"])
    assert code == 0 and task not in [t["id"] for t in json.loads(out)]  # another team's

    code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "claim", str(task), "--operator", "olga"])
    assert code == 1 and out == ""
    assert err.strip() == f"refused: task {task}: this task belongs to team general; olga works for team-b"
    code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "claim", "x1", "--operator", "alice"])
    assert code == 1 and "refused: no task 'x1'" in err
    code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "claim", str(task), "--operator", "alice"])
    assert (code, err) == (0, "")
    assert f"task {task} (human_call, account {account}) claimed by alice" in out
    assert f"{tz}" in out and "2 more connected calls today" in out

    yesterday = (rules.local_date(datetime.now(timezone.utc), tz) - timedelta(days=1)).isoformat()
    for argv, code_wanted, message in [
        (["--outcome", "answered", "--promise-date", yesterday], 1, f"promise date {yesterday} is in the past"),
        (["--outcome", "answered", "--paid", "abc"], 1, "payment 'abc' is not accepted"),
        (["--outcome", "answered", "--promise-date", "2026-13-01"], 2, "--promise-date '2026-13-01' is not a date"),
        (["--outcome", "maybe"], 1, "outcome 'maybe' is not accepted"),
    ]:
        code, out, err = await run(monkeypatch, capsys, env, db,
                                   ["tasks", "complete", str(task), "--operator", "alice", *argv])
        assert (code, out) == (code_wanted, ""), err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    async with db.sessions() as s:
        assert (await s.get(WorkItem, task)).status == "claimed"  # nothing changed
        row = await s.scalar(select(ContactAttempt).where(ContactAttempt.account_id == account))
        assert row.outcome == "dialing"

    code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "release", str(task), "--operator", "alice",
                                                              "--json"])
    assert (code, err) == (0, "") and json.loads(out)["status"] == "open"
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ContactAttempt).where(
            ContactAttempt.account_id == account)) == 0  # the slot is free again
        audit = (await s.scalars(select(DeskAction).where(DeskAction.work_item_id == task)
                                 .order_by(DeskAction.id))).all()
    assert [(a.operator, a.action, a.result) for a in audit] == [
        ("olga", "claim", "refused"), ("alice", "claim", "done")] + [("alice", "complete", "refused")] * 3 + [
        ("alice", "release", "done")]  # the unparsable date never reached the desk

    # the outcome is recorded even when the case cannot be told now (here: no such workflow); it says so
    assert (await run(monkeypatch, capsys, env, db, ["tasks", "claim", str(task), "--operator", "alice"]))[0] == 0
    code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "complete", str(task), "--operator", "alice",
                                                              "--outcome", "no_answer"])
    assert (code, err) == (0, "")
    assert out.startswith(f"task {task} done: call recorded: no_answer; the case was not told now")
    async with db.sessions() as s:
        row = await s.scalar(select(ContactAttempt).where(ContactAttempt.account_id == account))
        assert (row.outcome, row.connected) == ("no_answer", False)


async def test_starter_py_tasks_is_the_same_command(db, people):
    task, _, _ = await a_call_task(db)
    env = {**os.environ, "DATABASE_URL": db.url, "COLLECTIONS_OPERATOR": "alice"}
    proc = subprocess.run([sys.executable, "starter.py", "tasks", "list", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert task in [t["id"] for t in json.loads(proc.stdout)]


async def test_completing_a_review_reaches_the_case(env, db, task_queue, monkeypatch, capsys, people):
    account = f"A-CLITRACE-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        now = await env.get_current_time()
        await start_case(env, task_queue, default_event(account, occurred_at=now, tz=daytime_zone(now), grade="III"),
                         desk_steps=["skip_trace_review"])

        async def review():
            async with db.sessions() as s:
                return await s.scalar(select(WorkItem.id).where(WorkItem.account_id == account))
        for _ in range(300):
            if task := await review():
                break
            await asyncio.sleep(0.1)
        code, out, err = await run(monkeypatch, capsys, env, db, ["tasks", "claim", str(task), "--operator", "cora"],
                                   task_queue)
        assert (code, err) == (0, "")
        code, out, err = await run(monkeypatch, capsys, env, db, [
            "tasks", "complete", str(task), "--operator", "cora", "--outcome", "found", "--phone",
            "+86 139 2222 3333", "--json"], task_queue)
    assert (code, err) == (0, "")
    done = json.loads(out)
    assert done["task"]["status"] == "done" and done["case"]["applied"] is True
    assert "new number on file" in done["effect"] and "case now wake_up_ladder" in done["effect"]


async def test_only_a_supervisor_declares_a_disaster_or_recalls_a_case(env, db, monkeypatch, capsys, people):
    code, out, err = await run(monkeypatch, capsys, env, db, ["disaster", "CN-SC", "--days", "30",
                                                              "--operator", "olga"])
    assert code == 1 and out == ""
    assert err.strip() == ("refused: only supervisors may declare a disaster; olga's role is agent; "
                           "nothing sent")
    code, out, err = await run(monkeypatch, capsys, env, db, ["recall", "ACC-1", "--yes", "--operator", "cora"])
    assert code == 1 and "only supervisors may recall a case; cora's role is compliance" in err
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Disaster)) == 0
        refused = (await s.scalars(select(DeskAction).where(DeskAction.result == "refused")
                                   .order_by(DeskAction.id))).all()
    assert [(r.operator, r.action) for r in refused] == [("olga", "declare_disaster"), ("cora", "recall_case")]
    code, out, err = await run(monkeypatch, capsys, env, db, ["disaster", "CN-SC", "--days", "30",
                                                              "--operator", "sam"])
    assert code == 0, err
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Disaster)) == 1
