"""The operator CLI: one subcommand per event type, argument errors, the
ingest progress bar and throughput, `show` and the visibility-backed `cases`."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

import starter
from intake.events import EVENT_TYPES, EventRejected, SuspensionGranted, parse_event
from intake.ingest import IngestReport, ProgressBar
from tests.helpers import STARTED, TrackingIngestor, default_event, start_case, uid, point_cli_at
from worker import build_worker
from workflows.model import SuspensionRequest, case_workflow_id

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)

# (argv, the event fields it must produce)
EVENT_COMMANDS = [
    (["pay", "ACC-1", "--amount", "100.00", "--payment-id", "P-1"],
     {"type": "payment.received", "account_id": "ACC-1", "payment_id": "P-1", "amount": "100.00"}),
    (["dispute", "open", "ACC-1", "--reason", "not my loan"],
     {"type": "dispute.opened", "account_id": "ACC-1", "reason": "not my loan"}),
    (["dispute", "resolve", "ACC-1", "--upheld"], {"type": "dispute.resolved", "account_id": "ACC-1", "upheld": True}),
    (["dispute", "resolve", "ACC-1", "--rejected"],
     {"type": "dispute.resolved", "account_id": "ACC-1", "upheld": False}),
    (["suspend", "ACC-1", "--months", "6", "--reason", "illness"],
     {"type": "suspension.granted", "account_id": "ACC-1", "months": 6, "reason": "illness"}),
    (["suspension", "grant", "ACC-1", "--months", "24", "--reason", "illness"],
     {"type": "suspension.granted", "account_id": "ACC-1", "months": 24, "reason": "illness"}),
    (["suspension", "revoke", "ACC-1"], {"type": "suspension.revoked", "account_id": "ACC-1"}),
    (["disaster", "CN-XJ"], {"type": "disaster.declared", "region": "CN-XJ", "days": 30}),
    (["disaster", "CN-XJ", "--days", "45"], {"type": "disaster.declared", "region": "CN-XJ", "days": 45}),
    (["complaint", "ACC-1", "--team", "team-b", "--text", "rude"],
     {"type": "complaint.filed", "account_id": "ACC-1", "team_id": "team-b", "text": "rude"}),
    (["review-cleared", "team-b"], {"type": "team.review_cleared", "team_id": "team-b"}),
    (["plan", "accept", "ACC-1", "--periods", "6"], {"type": "plan.accepted", "account_id": "ACC-1", "periods": 6}),
    (["recall", "ACC-1"], {"type": "case.recalled", "account_id": "ACC-1"}),
    (["default", "ACC-9", "--amount", "1200.50", "--due-date", "2026-09-30", "--contract", "K-9", "--debtor-id",
      "DEB-9", "--phone", "+86 138 0013 8000", "--region", "CN-GD", "--age", "67", "--dialect", "cantonese",
      "--grade", "III", "--asset-flight-risk", "--team", "team-a", "--income", "3000.00",
      "--simulation", '{"answers": true}'],
     {"type": "account.defaulted", "account_id": "ACC-9", "amount_due": "1200.50", "currency": "CNY",
      "due_date": "2026-09-30", "contract_id": "K-9", "grade": "III", "asset_flight_risk": True,
      "team_id": "team-a",
      "debtor": {"debtor_id": "DEB-9", "phone": "+86 138 0013 8000", "timezone": "Asia/Shanghai",
                 "region": "CN-GD", "age": 67, "dialect": "cantonese", "monthly_disposable_income": "3000.00",
                 "simulation": {"answers": True}}}),
]


@pytest.mark.parametrize("argv,expected", EVENT_COMMANDS, ids=[" ".join(a[:2]) for a, _ in EVENT_COMMANDS])
def test_each_event_command_builds_a_valid_event(argv, expected):
    args = starter.parser().parse_args(argv + ["--event-id", "ev-cli-1", "--occurred-at", "2026-11-24T10:00:00+08:00"])
    event = starter.event_from_args(args)
    assert {k: v for k, v in event.items() if k not in ("event_id", "occurred_at")} == expected
    assert event["event_id"] == "ev-cli-1" and event["occurred_at"] == "2026-11-24T10:00:00+08:00"
    parse_event(json.dumps(event))  # the ingest contract accepts it as is


def test_every_event_type_has_a_command():
    assert {e["type"] for _, e in EVENT_COMMANDS} == set(EVENT_TYPES)


def test_defaults_fill_event_id_time_and_payment_id():
    event = starter.event_from_args(starter.parser().parse_args(["pay", "ACC-1", "--amount", "5"]))
    assert event["event_id"].startswith("op-") and event["payment_id"].startswith("P-")
    assert datetime.fromisoformat(event["occurred_at"]).tzinfo is not None


@pytest.mark.parametrize("argv,message", [
    (["pay", "ACC-1", "--amount", "-5"], "positive decimal amount"),
    (["pay", "ACC-1", "--amount", "1,200.00"], "positive decimal amount"),
    (["pay", "ACC-1", "--amount", "10.005"], "at most 2 decimals"),
    (["pay", "ACC-1", "--amount", "0.00"], "greater than zero"),
    (["pay", "ACC-1"], "--amount"),
    (["suspend", "ACC-1", "--months", "25", "--reason", "x"], "must be 1–24 months, got 25"),
    (["suspend", "ACC-1", "--months", "0", "--reason", "x"], "must be 1–24 months, got 0"),
    (["suspend", "ACC-1", "--months", "six", "--reason", "x"], "whole number of months"),
    (["suspend", "ACC-1", "--months", "6", "--reason", " "], "must not be blank"),
    (["plan", "accept", "ACC-1", "--periods", "13"], "must be 1–12 periods, got 13"),
    (["dispute", "resolve", "ACC-1"], "one of the arguments --upheld --rejected is required"),
    (["disaster", "CN-XJ", "--days", "0"], "1–366 days"),
    (["pay", "ACC-1", "--amount", "5", "--occurred-at", "2026-11-24T10:00:00"], "UTC offset"),
    (["default", "A", "--amount", "1", "--due-date", "30/09/2026", "--contract", "K", "--debtor-id", "D",
      "--phone", "1", "--region", "R", "--age", "40"], "YYYY-MM-DD"),
    (["default", "A", "--amount", "1", "--due-date", "2026-09-30", "--contract", "K", "--debtor-id", "D",
      "--phone", "1", "--region", "R", "--age", "40", "--timezone", "Asia/Atlantis"], "unknown IANA time zone"),
    (["cases", "--grade", "IV"], "invalid choice"),
    (["cases", "--region", "x' OR 'a'='a"], "without quotes"),
])
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        starter.parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


async def test_emit_keeps_working_and_refuses_bad_pairs_with_exit_2(capsys):
    assert json.loads(starter.build_event("case.recalled", ["account_id=A1"]))["account_id"] == "A1"
    assert json.loads(starter.build_event("plan.accepted", ["account_id=A1", "periods=6"]))["periods"] == 6
    assert await starter.main(["emit", "case.exploded", "account_id=A1"]) == 2
    assert await starter.main(["emit", "plan.accepted", "account_id=A1", "periods=six"]) == 2
    err = capsys.readouterr().err
    assert "unknown event type 'case.exploded'" in err and "periods must be a whole number" in err


async def test_dry_run_prints_the_event_and_sends_nothing(capsys):
    assert await starter.main(["recall", "ACC-1", "--dry-run", "--event-id", "ev-dry"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["type"] == "case.recalled" and event["event_id"] == "ev-dry"


def test_cases_query_is_built_from_the_filters():
    q = starter.cases_query(stage=["asset_preservation"], grade=["III"], region=["CN-XJ"])
    assert q == ("WorkflowType = 'DelinquentAccountWorkflow' AND ExecutionStatus = 'Running' AND "
                 "CaseStage = 'asset_preservation' AND DebtorGrade = 'III' AND Region = 'CN-XJ'")
    assert "PausedBy IN ('quiet_hours', 'disaster_grace'" in starter.cases_query(paused=["any"])
    assert "Region IN ('CN-XJ', 'CN-SC')" in starter.cases_query(region=["CN-XJ", "CN-SC"], state="all")
    assert "OutstandingAmount >= 10000" in starter.cases_query(min_outstanding="10000", state="closed")
    assert "ExecutionStatus = 'Running'" not in starter.cases_query(state="closed")


# ---------------------------------------------------------------- show, rendered

def test_show_renders_a_full_case_and_a_bare_one():
    full = {
        "account_id": "ACC-7", "case_id": "case-ACC-7", "debtor_id": "DEB-7", "stage": "payment_order",
        "grade": "II", "currency": "CNY", "amount_due": "1200.00", "outstanding": "900.00",
        "paused_by": ["dispute"], "protections": [{"kind": "dispute", "ref": "ev-1", "since": "2026-11-24T02:00:00+00:00",
                                                   "until": None, "reason": "amount wrong"}],
        "next_action": "court_acceptance", "next_action_at": "2026-11-29T02:00:00+00:00", "closed_reason": None,
        "closed_detail": None, "limitation_expires_on": "2029-10-10", "promised_date": "2026-12-01",
        "timezone": "Asia/Shanghai", "ladder": [{"step": "voice_robot", "at": "2026-11-20T02:00:00+00:00",
                                                 "outcome": "no_answer"}],
        "plan": {"installment": "150.00", "periods": 6, "accepted_at": "2026-11-21T02:00:00+00:00",
                 "status": "broken", "schedule": [{"due_on": "2026-12-21", "amount": "150.00", "paid": True},
                                                  {"due_on": "2027-01-21", "amount": "150.00", "paid": False}]},
        "plan_offer": None,
        "legal": {"track": "payment_order", "reason": "grade II with a known address", "status": "applied",
                  "steps": [{"step": "applied", "at": "2026-11-24T02:00:00+00:00", "detail": "court ref X1"}],
                  "deadline": "2026-11-29T02:00:00+00:00", "escalations": ["court silent past 5 days"]},
    }
    contacts = [{"local_date": "2026-11-20", "local_time": "10:00:00", "step": "voice_robot", "channel": "voice",
                 "outcome": "no_answer", "team_id": "general", "promised_date": None, "paid_amount": None}]
    text = starter.render_case(full, contacts, [{"payment_id": "P-1", "amount": "300.00", "currency": "CNY",
                                                 "received_at": "2026-11-22T02:00:00+00:00", "source": "event"}],
                               now=NOW)
    for expected in ("Case ACC-7", "payment_order · grade II", "900.00 CNY outstanding of 1200.00 CNY due",
                     "paused by    dispute", "amount wrong", "court_acceptance at 2026-11-29 10:00 (in 5 d 0 h)",
                     "to pay by 2026-12-01", "expires 2029-10-10", "Installment plan (broken): 6 × 150.00 CNY",
                     "due 2026-12-21", "Legal track: payment_order — grade II with a known address",
                     "court ref X1", "court silent past 5 days", "Contact history (database)", "2026-11-20 10:00",
                     "no_answer", "team general", "Payments", "P-1 (event)"):
        assert expected in text, expected
    bare = starter.render_case({"account_id": "ACC-8", "stage": "closed", "grade": "I", "outstanding": "0.00",
                                "paused_by": [], "closed_reason": "paid", "plan": None, "legal": None,
                                "plan_offer": {"installment": "100.00", "periods": 3}}, now=NOW)
    assert "closed       paid" in bare and "Plan offered (not accepted): 3 × 100.00" in bare
    assert "Contact history: no contact yet" in bare and "Legal" not in bare


# ---------------------------------------------------------------- ingest progress

def test_progress_bar_shows_counts_rate_and_eta():
    clock = iter([0.0, 2.0, 2.0]).__next__
    bar = ProgressBar(io.StringIO(), total=100, clock=clock)
    report = IngestReport(accepted=40, duplicate=5, rejected=5)
    line = bar.render(report, now=2.0)
    assert "[" in line and "50/100" in line and "50%" in line
    assert "accepted 40  duplicate 5  rejected 5" in line and "25 events/s" in line and "ETA 2.0 s" in line
    report.seconds = 2.1
    report.accepted, report.duplicate, report.rejected = 51, 0, 0
    assert report.summary() == "accepted 51, duplicate 0, rejected 0 in 2.1 s (24 events/s)"


async def test_cli_events_go_through_ingest_and_are_idempotent(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await TrackingIngestor(env.client, db, task_queue).ingest_lines(
            [json.dumps(default_event(acct, occurred_at=now, amount="500.00"))], source="t")
        assert report.accepted == 1
        pay = ["pay", acct, "--amount", "100.00", "--payment-id", "P-CLI", "--event-id", f"ev-{uid()}"]
        assert await starter.main(pay) == 0
        assert await starter.main(pay + ["--json"]) == 0  # the same event id again: a duplicate
        assert await starter.main(["suspend", acct, "--months", "3", "--reason", "illness", "--json"]) == 0
        assert await starter.main(["recall", f"ACC-NOPE-{uid()}"]) == 1
        await env.sleep(timedelta(seconds=5))
        status = await env.client.get_workflow_handle(case_workflow_id(acct)).query("status")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"accepted payment.received for {acct}")
    assert json.loads(lines[1])["outcome"] == "duplicate"
    granted = json.loads(lines[2])
    assert granted["outcome"] == "accepted" and granted["detail"].startswith("suspended until ")
    assert "rejected case.recalled" in err and "unknown account" in err
    assert status["outstanding"] == "400.00" and "suspension" in status["paused_by"]


async def test_a_refused_suspension_update_is_a_rejection(env, db, task_queue):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        ingestor = TrackingIngestor(env.client, db, task_queue, suspension_via_update=True)
        await ingestor.ingest_lines([json.dumps(default_event(acct, occurred_at=now))], source="t")
        # months the event contract would refuse first: what the case's validator says reaches the operator
        ev = SuspensionGranted.model_construct(event_id=f"ev-{uid()}", type="suspension.granted", occurred_at=now,
                                               account_id=acct, months=25, reason="x")
        with pytest.raises(EventRejected) as refused:
            await ingestor._via_update(env.client.get_workflow_handle(case_workflow_id(acct)), ev,
                                       "grant_suspension", SuspensionRequest(25, "x"), "suspension")
    assert "suspension refused" in str(refused.value) and "25 months refused" in str(refused.value)


async def test_plan_accept_goes_through_the_update_and_a_second_plan_is_refused(
        env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        await TrackingIngestor(env.client, db, task_queue).ingest_lines(
            [json.dumps(default_event(acct, occurred_at=now, amount="600.00", grade="I"))], source="t")
        assert await starter.main(["plan", "accept", acct, "--periods", "6", "--json"]) == 0
        assert await starter.main(["plan", "accept", acct, "--periods", "3"]) == 1
        status = await env.client.get_workflow_handle(case_workflow_id(acct)).query("status")
    out, err = capsys.readouterr()
    accepted = json.loads(out.splitlines()[0])
    assert accepted["outcome"] == "accepted" and accepted["detail"].startswith("plan of 6 x 100.00, first due ")
    assert "plan refused: an installment plan is already running" in err
    assert status["plan"]["periods"] == 6 and status["stage"] == "installment"


async def test_cli_ingest_progress_only_when_asked(env, db, task_queue, tmp_path, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    accounts = [f"ACC-{uid()}" for _ in range(3)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(default_event(a, occurred_at=now)) + "\n" for a in accounts))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        STARTED.extend(env.client.get_workflow_handle(case_workflow_id(a)) for a in accounts)
        assert await starter.main(["ingest", str(path)]) == 0  # stderr is no terminal here: no bar
        quiet = capsys.readouterr()
        assert await starter.main(["ingest", str(path), "--progress"]) == 0
        shown = capsys.readouterr()
        assert await starter.main(["ingest", str(path), "--json", "--concurrency", "2"]) == 0
        as_json = json.loads(capsys.readouterr().out)
    assert quiet.err == ""
    assert quiet.out.startswith("accepted 3, duplicate 0, rejected 0 in ") and "events/s)" in quiet.out
    assert "ingest [" in shown.err and "3/3" in shown.err and "events/s" in shown.err
    assert shown.out.startswith("accepted 0, duplicate 3, rejected 0 in ")
    assert as_json["duplicate"] == 3 and "events_per_second" in as_json and "seconds" in as_json


# ---------------------------------------------------------------- cases and show on a real dev server

async def test_cases_filters_open_cases_through_visibility_and_show_summarises_one(
        local_env, db, task_queue, monkeypatch, capsys):
    env = local_env
    point_cli_at(monkeypatch, env, db, task_queue)
    region, other = f"T-{uid()}", f"T-{uid()}"
    now = datetime.now(timezone.utc)
    cases = {f"ACC-{uid()}": (region, "III"), f"ACC-{uid()}": (region, "II"), f"ACC-{uid()}": (other, "III")}
    lines = [json.dumps(default_event(a, occurred_at=now, region=r, grade=g, amount="20000.00" if g == "III"
                                      else "300.00")) for a, (r, g) in cases.items()]
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await TrackingIngestor(env.client, db, task_queue).ingest_lines(lines, source="t")
        assert report.accepted == 3
        grade3 = [a for a, (r, g) in cases.items() if r == region and g == "III"]
        listed: list[str] = []
        for _ in range(100):  # visibility catches up within moments
            assert await starter.main(["cases", "--region", region, "--grade", "III", "--json", "--no-live"]) == 0
            listed = [c["account_id"] for c in json.loads(capsys.readouterr().out)["cases"]]
            if listed:
                break
            await asyncio.sleep(0.1)
        assert listed == grade3
        for _ in range(100):
            assert await starter.main(["cases", "--region", region, "--min-outstanding", "10000"]) == 0
            table = capsys.readouterr().out
            if grade3[0] in table:
                break
            await asyncio.sleep(0.1)
        assert await starter.main(["cases", "--region", region, "--region", other, "--json"]) == 0
        everything = json.loads(capsys.readouterr().out)
        assert await starter.main(["cases", "--region", region, "--paused", "disaster_grace"]) == 0
        none_paused = capsys.readouterr().out
        assert await starter.main(["show", grade3[0]]) == 0
        shown = capsys.readouterr().out
        assert await starter.main(["status", grade3[0]]) == 0
        status = json.loads(capsys.readouterr().out)
        assert await starter.main(["show", f"ACC-NOPE-{uid()}"]) == 2
    assert "account" in table and "region" in table and grade3[0] in table and region in table
    assert table.strip().endswith("1 open case")
    assert {c["account_id"] for c in everything["cases"]} == set(cases)
    assert all(c["stage"] for c in everything["cases"])
    assert none_paused.startswith("no open cases match")
    assert f"Case {grade3[0]}" in shown and "20000.00 CNY outstanding" in shown and "stage" in shown
    assert "Contact history" in shown
    assert status["account_id"] == grade3[0] and status["grade"] == "III"


async def test_a_case_nobody_answers_for_is_a_clear_failure(env, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env)
    monkeypatch.setattr(starter, "QUERY_TIMEOUT", timedelta(seconds=1))
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    handle = await start_case(env, task_queue, default_event(acct, occurred_at=now))  # no worker runs it
    monkeypatch.setattr(starter, "case_workflow_id", lambda a: handle.id)
    assert await starter.main(["status", acct]) == 1
    assert "did not answer its status query" in capsys.readouterr().err
