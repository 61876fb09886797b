"""Operator actions are safe and say what they changed (issue 10).

Every command that changes a case goes through the case's ``apply_event``
Update: the operator reads the case's own answer (a payment's new balance, a
suspension's end, debtor-local), and an event that does not apply (resolving
a dispute that is not open, revoking twice, a payment id used before, a
closed case) changes nothing and exits 1. Commands that close a case ask
first on a terminal and need --yes off one. Every action names its operator,
kept with the event and shown by ``show``.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from sqlalchemy import select

from cli.cases import as_status
from cli.main import main
from db.models import IngestedEvent
from tests.helpers import default_event, ingestor, point_cli_at, uid
from worker import build_worker
from workflows.case import DelinquentAccountWorkflow
from workflows.model import case_workflow_id


class Terminal(io.StringIO):
    """Standard input that is a terminal, with the operator's answers."""

    def isatty(self) -> bool:
        return True


# ---------------------------------------------------------------- closing a case asks first

@pytest.mark.parametrize("argv", [["recall", "ACC-1"], ["dispute", "resolve", "ACC-1", "--upheld"],
                                  ["emit", "case.recalled", "account_id=ACC-1"]])
async def test_closing_a_case_off_a_terminal_needs_yes(argv, monkeypatch, capsys):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens: nothing may be sent
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert await main(argv) == 2
    out, err = capsys.readouterr()
    assert "closes its case: pass --yes to confirm (no terminal to ask on)" in err and out == ""
    assert len(err.strip().splitlines()) == 1 and "ACC-1" in err


async def test_closing_a_case_on_a_terminal_asks_and_no_sends_nothing(monkeypatch, capsys):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert await main(["recall", "ACC-1"]) == 1
    out, err = capsys.readouterr()
    assert "This recalls ACC-1 and closes its case for good. Send it? [y/N]" in out and "nothing sent" in err
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert await main(["dispute", "resolve", "ACC-1", "--upheld"]) == 1  # yes: it is sent (and Temporal is down)
    out, err = capsys.readouterr()
    assert "upholds the dispute on ACC-1" in out and "cannot reach Temporal at 127.0.0.1:1" in err


async def test_what_does_not_close_a_case_is_not_asked(monkeypatch, capsys):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert await main(["dispute", "resolve", "ACC-1", "--rejected"]) == 1
    assert "cannot reach Temporal" in capsys.readouterr().err  # sent without a question


# ---------------------------------------------------------------- the case's own answer

async def open_case(env, db, task_queue, **kw) -> str:
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    report = await ingestor(env, db, task_queue).ingest_lines(
        [json.dumps(default_event(acct, occurred_at=now, amount="500.00", tz="Asia/Urumqi", region="CN-XJ",
                                  **kw))], source="t")
    assert report.accepted == 1
    return acct


async def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = await main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_events_that_do_not_apply_change_nothing_and_exit_1(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        acct = await open_case(env, db, task_queue)
        code, _, err = await run(capsys, "dispute", "resolve", acct, "--upheld", "--yes")
        assert code == 1 and "no effect: no open dispute" in err
        code, _, err = await run(capsys, "suspension", "revoke", acct)
        assert code == 1 and "no effect: no suspension in force" in err
        assert (await run(capsys, "dispute", "open", acct, "--reason", "not my loan"))[0] == 0
        code, out, _ = await run(capsys, "dispute", "resolve", acct, "--rejected", "--operator", "ops-li")
        assert code == 0 and f"accepted dispute.resolved for {acct}" in out and "by ops-li" in out
        code, _, err = await run(capsys, "dispute", "resolve", acct, "--rejected")
        assert code == 1 and "no effect: no open dispute" in err
        code, out, _ = await run(capsys, "suspend", acct, "--months", "3", "--reason", "illness")
        assert code == 0 and "Asia/Urumqi" in out  # its end, on the debtor's clock with the zone and year
        assert (await run(capsys, "suspension", "revoke", acct))[0] == 0
        code, _, err = await run(capsys, "suspension", "revoke", acct)
        assert code == 1 and "no effect: no suspension in force" in err
        status = as_status(await env.client.get_workflow_handle(case_workflow_id(acct)).query(
            DelinquentAccountWorkflow.status))
    assert status.closed_reason is None and status.paused_by == [] or status.paused_by == ["quiet_hours"]


async def test_pay_says_the_balance_and_a_payment_id_used_before(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        acct = await open_case(env, db, task_queue)
        event_id = f"ev-{uid()}"
        pay = ["pay", acct, "--amount", "100.00", "--payment-id", "P-77"]
        code, out, _ = await run(capsys, *pay, "--event-id", event_id)
        assert code == 0 and "outstanding 400.00 CNY" in out
        code, out, _ = await run(capsys, *pay, "--event-id", event_id)  # the same event again: a duplicate
        assert code == 0 and "duplicate" in out
        code, _, err = await run(capsys, *pay)  # the same payment id in a new event
        assert code == 1 and "payment P-77 was already recorded" in err
        code, out, _ = await run(capsys, "pay", acct, "--amount", "50.00", "--json")
        answer = json.loads(out)
        assert code == 0 and answer["effect"]["applied"] is True and answer["effect"]["outstanding"] == "350.00"
        assert answer["effect"]["currency"] == "CNY" and answer["event"]["actor"]


async def test_recall_closes_once_and_json_has_the_effect(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        acct = await open_case(env, db, task_queue)
        code, out, _ = await run(capsys, "suspend", acct, "--months", "2", "--reason", "illness", "--json")
        granted = json.loads(out)
        assert code == 0 and granted["effect"]["until"].endswith("+00:00")  # JSON: UTC ISO 8601
        code, out, _ = await run(capsys, "recall", acct, "--yes", "--json", "--operator", "sup-chen")
        recalled = json.loads(out)
        assert code == 0 and recalled["effect"]["closed_reason"] == "recalled"
        code, _, err = await run(capsys, "recall", acct, "--yes")
        assert code == 1 and "no effect" in err and "closed" in err


async def test_the_operator_is_kept_with_the_event_and_shown(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        acct = await open_case(env, db, task_queue)
        event_id = f"ev-{uid()}"
        assert (await run(capsys, "dispute", "open", acct, "--reason", "not mine", "--operator", "ops-wang",
                          "--event-id", event_id))[0] == 0
        code, shown, _ = await run(capsys, "show", acct)
        code_json, shown_json, _ = await run(capsys, "show", acct, "--json")
    async with db.sessions() as s:
        kept = await s.scalar(select(IngestedEvent).where(IngestedEvent.event_id == event_id))
    assert kept.actor == "ops-wang"
    assert code == 0 and "Who did what" in shown
    did = next(line for line in shown.splitlines() if "ops-wang" in line)
    assert "Asia/Urumqi" in did and "dispute" in did
    assert any(n["actor"] == "ops-wang" for n in json.loads(shown_json)["history"])


async def test_clearing_a_team_that_is_not_suspended_exits_1(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    team = f"team-{uid()}"
    code, _, err = await run(capsys, "review-cleared", team)
    assert code == 1 and f"no effect: team {team} is not suspended" in err
    region = f"T{uid()}"
    assert (await run(capsys, "disaster", region, "--days", "30"))[0] == 0
    code, _, err = await run(capsys, "disaster", region, "--days", "5")
    assert code == 1 and f"no effect: a disaster in {region} is already declared" in err
