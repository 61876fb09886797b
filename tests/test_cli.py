"""The operator command line (``collections``, ``python starter.py``): one
subcommand per event type validated by the event contract, parser errors with
suggestions, help everywhere, settings, the ingest progress bar, ``show`` and
the visibility-backed ``cases``, search-attribute registration, and output
without ANSI escapes off a terminal or with NO_COLOR."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from cli import cases as cli_cases
from cli.cases import as_status
from cli.ingest import IngestProgress
from cli.main import app, main
from cli.show import Contact, History, Note, PaymentRow, render_case
from intake.events import EVENT_TYPES, EventRejected, SuspensionGranted, parse_event
from intake.ingest import IngestReport
from support.codec import new_key_spec
from tests.helpers import STARTED, default_event, ingestor, point_cli_at, start_case, uid
from worker import build_worker
from workflows.case import DelinquentAccountWorkflow
from workflows.model import SuspensionRequest, case_workflow_id
from workflows.search import DEFINITIONS

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
ANSI = "\x1b["

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
ENVELOPE = ("event_id", "occurred_at", "actor")


async def dry_run(argv: list[str], capsys) -> dict:
    assert await main(argv + ["--dry-run"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv,expected", EVENT_COMMANDS, ids=[" ".join(a[:2]) for a, _ in EVENT_COMMANDS])
async def test_each_event_command_builds_a_valid_event(argv, expected, capsys):
    event = await dry_run(argv + ["--event-id", "ev-cli-1", "--occurred-at", "2026-11-24T10:00:00+08:00",
                                  "--actor", "ops-wang"], capsys)
    assert {k: v for k, v in event.items() if k not in ENVELOPE} == expected
    assert event["event_id"] == "ev-cli-1" and event["occurred_at"] == "2026-11-24T10:00:00+08:00"
    assert event["actor"] == "ops-wang"
    parse_event(json.dumps(event))  # the ingest contract accepts it as is


def test_every_event_type_has_a_command():
    assert {e["type"] for _, e in EVENT_COMMANDS} == set(EVENT_TYPES)


async def test_defaults_fill_event_id_time_actor_and_payment_id(capsys):
    event = await dry_run(["pay", "ACC-1", "--amount", "5"], capsys)
    assert event["event_id"].startswith("op-") and event["payment_id"].startswith("P-")
    assert datetime.fromisoformat(event["occurred_at"]).tzinfo is not None
    assert event["actor"]  # operator commands always say who sent them


DEFAULT_A = ["default", "A", "--amount", "1", "--contract", "K", "--debtor-id", "D", "--phone", "+86 138 0013 8000",
             "--region", "CN-GD", "--age", "40"]


async def test_the_operator_is_named_by_option_setting_or_login(monkeypatch, capsys):
    """--operator (or its alias --actor) wins; else COLLECTIONS_OPERATOR; else the login name."""
    assert (await dry_run(["recall", "ACC-1", "--yes", "--operator", "ops-wang"], capsys))["actor"] == "ops-wang"
    assert (await dry_run(["pay", "ACC-1", "--amount", "5", "--actor", "ops-li"], capsys))["actor"] == "ops-li"
    monkeypatch.setenv("COLLECTIONS_OPERATOR", "ops-zhao")
    assert (await dry_run(["suspension", "revoke", "ACC-1"], capsys))["actor"] == "ops-zhao"
    assert (await dry_run(["disaster", "CN-XJ", "--operator", "sup-chen"], capsys))["actor"] == "sup-chen"
    monkeypatch.setenv("COLLECTIONS_OPERATOR", " ")
    assert await main(["review-cleared", "team-b", "--dry-run"]) == 2
    assert "COLLECTIONS_OPERATOR=' ' is not accepted: must name someone" in capsys.readouterr().err


@pytest.mark.parametrize("variable,value,message", [
    ("TEMPORAL_ADDRESS", "localhost:notaport", "must be host:port"),
    ("DATABASE_URL", "postgresql://ops:s3cret@db/collections", "postgresql://ops:***@db/collections"),
    ("DATABASE_URL", "nonsense", "must be a SQLAlchemy URL with an async driver"),
    ("COLLECTIONS_MAX_DIAL_ATTEMPTS", "many", "COLLECTIONS_MAX_DIAL_ATTEMPTS='many' is not accepted"),
])
def test_bad_settings_are_one_line_and_exit_2_from_every_entry_point(variable, value, message):
    for program, argv in (("starter.py", ["cases"]), ("collections", ["pay", "A", "--amount", "5"]),
                          ("worker.py", [])):
        done = run_cli(*argv, program=program, env={variable: value}, timeout=30)
        assert done.returncode == 2, (program, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, (program, done.stderr)
        assert "Traceback" not in done.stderr and "s3cret" not in done.stderr


# The event contract (intake/events.py) is the one place arguments of event
# commands are checked: its reason reaches the operator as one line, exit 2.
@pytest.mark.parametrize("argv,message", [
    (["pay", "ACC-1", "--amount", "-5"], "invalid amount: must not be negative"),
    (["pay", "ACC-1", "--amount", "1,200.00"], "must be a decimal string"),
    (["pay", "ACC-1", "--amount", "10.005"], "fractions of a cent"),
    (["pay", "ACC-1", "--amount", "0.00"], "greater than zero"),
    (["pay", "ACC-1"], "Missing option '--amount'"),
    (["suspend", "ACC-1", "--months", "25", "--reason", "x"],
     "invalid months: Input should be less than or equal to 24"),
    (["suspend", "ACC-1", "--months", "0", "--reason", "x"], "invalid months: Input should be greater than or equal"),
    (["suspend", "ACC-1", "--months", "six", "--reason", "x"], "Invalid value for '--months'"),
    (["suspend", "ACC-1", "--months", "6", "--reason", " "], "invalid reason: must not be blank"),
    (["plan", "accept", "ACC-1", "--periods", "13"], "invalid periods"),
    (["dispute", "resolve", "ACC-1"], "Missing option '--upheld'"),
    (["disaster", "CN-XJ", "--days", "0"], "invalid days"),
    (["pay", "ACC-1", "--amount", "5", "--occurred-at", "2026-11-24T10:00:00"], "UTC offset"),
    ([*DEFAULT_A, "--due-date", "30/09/2026"], "invalid due_date"),
    ([*DEFAULT_A, "--due-date", "2026-09-30", "--timezone", "Asia/Atlantis"], "unknown IANA time zone"),
    ([*DEFAULT_A, "--due-date", "2026-09-30", "--simulation", "[1]"], "--simulation must be a JSON object"),
    (["cases", "--grade", "IV"], "'IV' is not one of"),
    (["cases", "--region", "x' OR 'a'='a"], "without quotes"),
    (["cases", "--min-outstanding", "lots"], "--min-outstanding must be a decimal amount"),
])
async def test_bad_arguments_exit_2_with_one_clear_line(argv, message, capsys):
    assert await main(argv + (["--dry-run"] if argv[0] != "cases" else [])) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""
    assert "Traceback" not in err and ANSI not in err


async def test_emit_keeps_working_and_refuses_bad_pairs_with_exit_2(capsys):
    assert (await dry_run(["emit", "case.recalled", "account_id=A1"], capsys))["account_id"] == "A1"
    planned = await dry_run(["emit", "plan.accepted", "account_id=A1", "periods=6", "--event-id", "ev-e"], capsys)
    assert planned["periods"] == 6 and planned["event_id"] == "ev-e"
    assert (await dry_run(["emit", "dispute.resolved", "account_id=A1", "upheld=yes"], capsys))["upheld"] is True
    assert await main(["emit", "case.exploded", "account_id=A1"]) == 2
    assert await main(["emit", "plan.accepted", "account_id=A1", "periods=six"]) == 2
    assert await main(["emit", "case.recalled", "account_id"]) == 2
    assert await main(["emit", "case.recalled", "account_id=A1", "colour=red"]) == 2
    err = capsys.readouterr().err
    assert "unknown event type 'case.exploded'" in err and "wrong type for periods" in err
    assert "expected field=value, got 'account_id'" in err and "colour" in err


async def test_dry_run_prints_the_event_and_sends_nothing(capsys, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens: a send would fail
    event = await dry_run(["recall", "ACC-1", "--event-id", "ev-dry"], capsys)
    assert event["type"] == "case.recalled" and event["event_id"] == "ev-dry"


def test_cases_query_is_built_from_the_filters():
    q = cli_cases.cases_query(stage=["asset_preservation"], grade=["III"], region=["CN-XJ"])
    assert q == ("WorkflowType = 'DelinquentAccountWorkflow' AND ExecutionStatus = 'Running' AND "
                 "CaseStage = 'asset_preservation' AND DebtorGrade = 'III' AND Region = 'CN-XJ'")
    assert "PausedBy IN ('quiet_hours', 'disaster_grace'" in cli_cases.cases_query(paused=["any"])
    assert "Region IN ('CN-XJ', 'CN-SC')" in cli_cases.cases_query(region=["CN-XJ", "CN-SC"], state="all")
    assert "OutstandingAmount >= 10000" in cli_cases.cases_query(min_outstanding="10000", state="closed")
    assert "ExecutionStatus = 'Running'" not in cli_cases.cases_query(state="closed")


# ---------------------------------------------------------------- help, suggestions, settings, colour

def command_paths(command, path=()):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, path + (name,))


async def test_help_on_the_app_and_every_command(capsys):
    from typer.main import get_command

    assert await main(["--help"]) == 0
    top = capsys.readouterr().out
    for name in ("ingest", "status", "show", "cases", "pay", "default", "dispute", "suspension", "plan", "emit",
                 "migrate", "search-attributes", "settings", "verify-evidence", "codec-server", "new-payload-key"):
        assert name in top, name
    assert await main([]) == 2 and "Usage:" in capsys.readouterr().out  # no command: the help, exit 2
    paths = list(command_paths(get_command(app)))
    assert ("dispute", "open") in paths and ("plan", "accept") in paths
    for path in paths[1:]:
        assert await main([*path, "--help"]) == 0, path
        assert "Usage:" in capsys.readouterr().out, path


async def test_did_you_mean_for_a_mistyped_command_and_option(capsys):
    assert await main(["pya", "ACC-1"]) == 2
    assert "No such command 'pya'. Did you mean 'pay'?" in capsys.readouterr().err
    assert await main(["dispute", "opne", "ACC-1"]) == 2
    assert "Did you mean 'open'?" in capsys.readouterr().err
    assert await main(["pay", "ACC-1", "--amout", "5"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --amout. Did you mean --amount?" in err and "Try '" in err


async def test_settings_are_shown_with_the_payload_keys_masked(monkeypatch, capsys):
    key = new_key_spec("k9")
    monkeypatch.setenv("COLLECTIONS_PAYLOAD_KEYS", key)
    monkeypatch.setenv("COLLECTIONS_TASK_QUEUE", "tq-shown")
    assert await main(["settings"]) == 0
    table = capsys.readouterr().out
    assert await main(["settings", "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    secret = key.split(":", 1)[1]
    assert "COLLECTIONS_PAYLOAD_KEYS" in table and "tq-shown" in table and secret not in table
    assert "********" in as_json["COLLECTIONS_PAYLOAD_KEYS"] and secret not in json.dumps(as_json)
    assert as_json["COLLECTIONS_TASK_QUEUE"] == "tq-shown"


async def test_a_bad_setting_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("COLLECTIONS_COMPLAINT_THRESHOLD", "zero")
    assert await main(["settings"]) == 2
    assert await main(["recall", "ACC-1", "--dry-run"]) == 2  # every command reads them first
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("COLLECTIONS_COMPLAINT_THRESHOLD='zero' is not accepted" in line for line in lines)
    assert out == "" and "Traceback" not in err
    assert await main(["recall", "--help"]) == 0  # help needs no settings


def test_the_app_also_runs_standalone_under_typers_runner():
    """Outside an event loop (``app()``, Typer's CliRunner) a command runs on a loop of its own."""
    from typer.testing import CliRunner

    done = CliRunner().invoke(app, ["recall", "ACC-1", "--dry-run", "--actor", "ops-li"])
    assert done.exit_code == 0 and json.loads(done.output)["actor"] == "ops-li"
    refused = CliRunner().invoke(app, ["pay", "ACC-1", "--amount", "-1", "--dry-run"])
    assert refused.exit_code == 2 and "must not be negative" in refused.output


def run_cli(*argv: str, env: dict | None = None, program: str = "starter.py", timeout: float = 60):
    """A real process: stdout and stderr are pipes, not terminals."""
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS", "NO_COLOR", "TERM")}
    command = [str(Path(sys.prefix) / "bin" / "collections")] if program == "collections" else \
        [sys.executable, str(ROOT / program)]
    return subprocess.run(command + list(argv), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def test_console_script_and_starter_are_the_same_cli():
    for program in ("collections", "starter.py"):
        shown = run_cli("--help", program=program)
        assert shown.returncode == 0 and "ingest" in shown.stdout and "search-attributes" in shown.stdout
        bad = run_cli("settings", program=program, env={"COLLECTIONS_MAX_DIAL_ATTEMPTS": "9"})
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
        assert "COLLECTIONS_MAX_DIAL_ATTEMPTS" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("colour_env", [{}, {"NO_COLOR": "1", "FORCE_COLOR": "1"}], ids=["pipe", "NO_COLOR"])
def test_no_ansi_escapes_off_a_terminal_or_with_no_color(colour_env):
    """Piped output never has escapes; NO_COLOR wins even over a forced terminal."""
    for argv in (["--help"], ["pay", "--help"], ["settings"], ["pya"], ["pay", "A", "--amount", "-1", "--dry-run"],
                 ["status", "ACC-1"]):
        done = run_cli(*argv, env={**colour_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"})
        assert done.stdout or done.stderr, argv
        assert ANSI not in done.stdout and ANSI not in done.stderr, (argv, done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, argv
    assert done.returncode == 1 and "cannot reach Temporal at 127.0.0.1:1" in done.stderr


def test_worker_help_exits_0_quickly_without_connecting():
    started = time.monotonic()
    shown = run_cli("--help", program="worker.py", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"}, timeout=30)
    assert shown.returncode == 0 and "usage: worker.py" in shown.stdout
    assert time.monotonic() - started < 20
    bad = run_cli(program="worker.py", env={"COLLECTIONS_MAX_CACHED_CASES": "0"}, timeout=30)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "COLLECTIONS_MAX_CACHED_CASES" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------- show, rendered

def text_of(renderable) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_show_renders_a_full_case_and_a_bare_one():
    full = as_status({
        "account_id": "ACC-7", "case_id": "case-ACC-7", "debtor_id": "DEB-7", "stage": "payment_order",
        "grade": "II", "currency": "CNY", "amount_due": "1200.00", "outstanding": "900.00",
        "paused_by": ["dispute"],
        "protections": [{"kind": "dispute", "ref": "ev-1", "since": "2026-11-24T02:00:00+00:00", "until": None,
                         "reason": "amount wrong"}],
        "next_action": "court_acceptance", "next_action_at": "2026-11-29T02:00:00+00:00", "closed_reason": None,
        "closed_detail": None, "limitation_expires_on": "2029-10-10", "promised_date": "2026-12-01",
        "timezone": "Asia/Shanghai", "ladder": [{"step": "voice_robot", "at": "2026-11-20T02:00:00+00:00",
                                                 "outcome": "no_answer"}],
        "plan": {"installment": "150.00", "periods": 6, "accepted_at": "2026-11-21T02:00:00+00:00", "paid": "150.00",
                 "status": "broken", "schedule": [{"due_on": "2026-12-21", "amount": "150.00", "paid": True},
                                                  {"due_on": "2027-01-21", "amount": "150.00", "paid": False}]},
        "plan_offer": None,
        "legal": {"track": "payment_order", "reason": "grade II with a known address", "status": "applied",
                  "application_ref": "X1", "applied_at": "2026-11-24T02:00:00+00:00",
                  "steps": [{"step": "applied", "at": "2026-11-24T02:00:00+00:00", "detail": "court ref X1"}],
                  "deadline": "2026-11-29T02:00:00+00:00", "escalations": ["court silent past 5 days"]},
    })
    contacts = [Contact(datetime(2026, 11, 20, 2), datetime(2026, 11, 20).date(), "10:00:00", "Asia/Shanghai",
                        "voice_robot", 1, "voice", "no_answer", "general", None, None)]
    payments = [PaymentRow("P-1", "300.00", "CNY", datetime(2026, 11, 22, 2, tzinfo=timezone.utc), "event")]
    notes = [Note(datetime(2026, 11, 23, 16, 30, tzinfo=timezone.utc), "ops-wang", "dispute opened: paused"),
             Note(datetime(2026, 11, 20, 2, tzinfo=timezone.utc), None, "day 0 voice robot")]
    text = text_of(render_case(full, History(contacts, payments, notes), now=NOW))
    for expected in ("Case ACC-7", "times in Asia/Shanghai", "payment_order · grade II",
                     "900.00 CNY outstanding of 1200.00 CNY due", "paused by    dispute", "amount wrong",
                     "court_acceptance at 2026-11-29 10:00 Asia/Shanghai (in 5 d 0 h)", "to pay by 2026-12-01",
                     "expires 2029-10-10", "Installment plan (broken): 6 × 150.00 CNY", "due 2026-12-21",
                     "Legal track: payment_order — grade II with a known address", "court ref X1",
                     "court silent past 5 days", "Contact history (database)", "2026-11-20 10:00 Asia/Shanghai",
                     "no_answer", "team general", "Payments", "2026-11-22 10:00 Asia/Shanghai", "P-1 (event)",
                     "Who did what", "(the case)"):
        assert expected in text, expected
    did = next(line for line in text.splitlines() if "ops-wang" in line)  # who, when (debtor-local), what
    assert did.split() == ["2026-11-24", "00:30", "Asia/Shanghai", "ops-wang", "dispute", "opened:", "paused"]
    bare = text_of(render_case(as_status({
        "account_id": "ACC-8", "case_id": "case-ACC-8", "debtor_id": "DEB-8", "stage": "closed", "grade": "I",
        "currency": "CNY", "amount_due": "300.00", "outstanding": "0.00", "paused_by": [], "protections": [],
        "next_action": None, "next_action_at": None, "closed_reason": "paid", "closed_detail": None,
        "limitation_expires_on": "2029-10-10", "promised_date": None, "timezone": "Asia/Shanghai",
        "plan": None, "legal": None, "plan_offer": {"installment": "100.00", "periods": 3}}), now=NOW))
    assert "closed       paid" in bare and "Plan offered (not accepted): 3 × 100.00" in bare
    assert "Contact history: no contact yet" in bare and "Legal" not in bare


# ---------------------------------------------------------------- ingest progress

def test_progress_shows_counts_and_rate(capsys):
    bar = IngestProgress(total=100)
    report = IngestReport(accepted=40, duplicate=5, rejected=5, seconds=2.0)
    bar(report)
    bar.close(report)
    err = capsys.readouterr().err
    assert "ingest" in err and "50/100" in err and "50%" in err
    assert "accepted 40  duplicate 5  rejected 5" in err and "25 events/s" in err
    assert ANSI not in err  # stderr is no terminal here
    report.seconds = 2.1
    report.accepted, report.duplicate, report.rejected = 51, 0, 0
    assert report.summary() == "accepted 51, duplicate 0, rejected 0 in 2.1 s (24 events/s)"


async def test_cli_events_go_through_ingest_and_are_idempotent(env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await ingestor(env, db, task_queue).ingest_lines(
            [json.dumps(default_event(acct, occurred_at=now, amount="500.00"))], source="t")
        assert report.accepted == 1
        pay = ["pay", acct, "--amount", "100.00", "--payment-id", "P-CLI", "--event-id", f"ev-{uid()}"]
        assert await main(pay) == 0
        assert await main(pay + ["--json"]) == 0  # the same event id again: a duplicate
        assert await main(["suspend", acct, "--months", "3", "--reason", "illness", "--json"]) == 0
        assert await main(["recall", f"ACC-NOPE-{uid()}", "--yes"]) == 1
        await env.sleep(timedelta(seconds=5))
        status = as_status(await env.client.get_workflow_handle_for(
            DelinquentAccountWorkflow.run, case_workflow_id(acct)).query(DelinquentAccountWorkflow.status))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"accepted payment.received for {acct}")
    assert lines[1] == "  payment P-CLI of 100.00 CNY recorded; outstanding 400.00 CNY"  # the case's own answer
    assert json.loads(lines[2])["outcome"] == "duplicate"
    granted = json.loads(lines[3])
    assert granted["outcome"] == "accepted" and granted["effect"]["until"].endswith("+00:00")
    assert granted["event"]["actor"]
    assert "rejected case.recalled" in err and "unknown account" in err
    assert status.outstanding == "400.00" and "suspension" in status.paused_by


async def test_a_refused_suspension_update_is_a_rejection(env, db, task_queue):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        via_update = ingestor(env, db, task_queue, suspension_via_update=True)
        await via_update.ingest_lines([json.dumps(default_event(acct, occurred_at=now))], source="t")
        # months the event contract would refuse first: what the case's validator says reaches the operator
        ev = SuspensionGranted.model_construct(event_id=f"ev-{uid()}", type="suspension.granted", occurred_at=now,
                                               account_id=acct, months=25, reason="x")
        with pytest.raises(EventRejected) as refused:
            await via_update._via_update(env.client.get_workflow_handle(case_workflow_id(acct)), ev,
                                         DelinquentAccountWorkflow.grant_suspension, SuspensionRequest(25, "x"),
                                         "suspension")
    assert "suspension refused" in str(refused.value) and "25 months refused" in str(refused.value)


async def test_plan_accept_goes_through_the_update_and_a_second_plan_is_refused(
        env, db, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        await ingestor(env, db, task_queue).ingest_lines(
            [json.dumps(default_event(acct, occurred_at=now, amount="600.00", grade="I"))], source="t")
        assert await main(["plan", "accept", acct, "--periods", "6", "--json"]) == 0
        assert await main(["plan", "accept", acct, "--periods", "3"]) == 1
        status = as_status(await env.client.get_workflow_handle(case_workflow_id(acct)).query(
            DelinquentAccountWorkflow.status))
    out, err = capsys.readouterr()
    accepted = json.loads(out.splitlines()[0])
    assert accepted["outcome"] == "accepted" and accepted["detail"].startswith("plan of 6 x 100.00, first due ")
    assert "plan refused: an installment plan is already running" in err
    assert status.plan.periods == 6 and status.stage == "installment"


async def test_cli_ingest_progress_only_when_asked(env, db, task_queue, tmp_path, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    accounts = [f"ACC-{uid()}" for _ in range(3)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(default_event(a, occurred_at=now)) + "\n" for a in accounts))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        STARTED.extend(env.client.get_workflow_handle(case_workflow_id(a)) for a in accounts)
        assert await main(["ingest", str(path)]) == 0  # stderr is no terminal here: no bar
        quiet = capsys.readouterr()
        assert await main(["ingest", str(path), "--progress"]) == 0
        shown = capsys.readouterr()
        assert await main(["ingest", str(path), "--json", "--concurrency", "2"]) == 0
        as_json = json.loads(capsys.readouterr().out)
        assert await main(["ingest", str(tmp_path / "missing.jsonl")]) == 2
        missing = capsys.readouterr().err
        monkeypatch.setattr(sys, "stdin", io.StringIO(path.read_text()))
        assert await main(["ingest", "-", "--json"]) == 0
        from_stdin = json.loads(capsys.readouterr().out)
    assert quiet.err == ""
    assert quiet.out.startswith("accepted 3, duplicate 0, rejected 0 in ") and "events/s)" in quiet.out
    assert "ingest" in shown.err and "3/3" in shown.err and "events/s" in shown.err and ANSI not in shown.err
    assert shown.out.startswith("accepted 0, duplicate 3, rejected 0 in ")
    assert as_json["duplicate"] == 3 and "events_per_second" in as_json and "seconds" in as_json
    assert "no such file" in missing
    assert from_stdin["duplicate"] == 3 and from_stdin["rejected"] == 0


async def test_search_attributes_are_registered_idempotently_on_the_test_server(env, monkeypatch, capsys):
    point_cli_at(monkeypatch, env)
    assert await main(["search-attributes", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n: r["type"] for n, r in rows.items()} == DEFINITIONS
    assert all(r["state"] == "already registered" for r in rows.values())  # conftest registered them
    assert await main(["search-attributes"]) == 0
    assert "OutstandingAmount" in capsys.readouterr().out


# ---------------------------------------------------------------- cases and show on a real dev server

async def test_search_attributes_command_registers_what_is_missing(local_env, monkeypatch, capsys):
    point_cli_at(monkeypatch, local_env)
    probe = f"CliProbe{uid()}"
    monkeypatch.setitem(DEFINITIONS, probe, "Keyword")
    assert await main(["search-attributes", "--json"]) == 0
    first = {r["name"]: r["state"] for r in json.loads(capsys.readouterr().out)}
    assert await main(["search-attributes", "--json"]) == 0
    again = {r["name"]: r["state"] for r in json.loads(capsys.readouterr().out)}
    assert first[probe] == "registered" and first["CaseStage"] == "already registered"
    assert set(again.values()) == {"already registered"}


async def test_cases_filters_open_cases_through_visibility_and_show_summarises_one(
        local_env, db, task_queue, monkeypatch, capsys):
    env = local_env
    point_cli_at(monkeypatch, env, db, task_queue)
    region, other = f"T-{uid()}", f"T-{uid()}"
    now = datetime.now(timezone.utc)
    cases = {f"ACC-{uid()}": where for where in ((region, "III"), (region, "II"), (other, "III"))}
    lines = [json.dumps(default_event(a, occurred_at=now, region=r, grade=g, amount="20000.00" if g == "III"
                                      else "300.00")) for a, (r, g) in cases.items()]
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await ingestor(env, db, task_queue).ingest_lines(lines, source="t")
        assert report.accepted == 3
        grade3 = [a for a, (r, g) in cases.items() if r == region and g == "III"]
        listed: list[str] = []
        for _ in range(100):  # visibility catches up within moments
            assert await main(["cases", "--region", region, "--grade", "III", "--json", "--no-live"]) == 0
            listed = [c["account_id"] for c in json.loads(capsys.readouterr().out)["cases"]]
            if listed:
                break
            await asyncio.sleep(0.1)
        assert listed == grade3
        for _ in range(100):
            assert await main(["cases", "--region", region, "--min-outstanding", "10000"]) == 0
            table = capsys.readouterr().out
            if grade3[0] in table:
                break
            await asyncio.sleep(0.1)
        assert await main(["cases", "--region", region, "--region", other, "--json"]) == 0
        everything = json.loads(capsys.readouterr().out)
        assert await main(["cases", "--region", region, "--paused", "disaster_grace"]) == 0
        none_paused = capsys.readouterr().out
        assert await main(["show", grade3[0]]) == 0
        shown = capsys.readouterr().out
        assert await main(["show", grade3[0], "--json"]) == 0
        shown_json = json.loads(capsys.readouterr().out)
        assert await main(["status", grade3[0]]) == 0
        status = json.loads(capsys.readouterr().out)
        assert await main(["show", f"ACC-NOPE-{uid()}"]) == 2
        assert "no case for account ACC-NOPE-" in capsys.readouterr().err
    assert "account" in table and "region" in table and grade3[0] in table and region in table
    assert table.strip().endswith("1 open case")
    assert {c["account_id"] for c in everything["cases"]} == set(cases)
    assert all(c["stage"] for c in everything["cases"])
    assert none_paused.startswith("no open cases match")
    assert f"Case {grade3[0]}" in shown and "20000.00 CNY outstanding" in shown and "stage" in shown
    assert "Contact history" in shown and ANSI not in shown
    assert shown_json["status"]["account_id"] == grade3[0] and isinstance(shown_json["contacts"], list)
    assert status["account_id"] == grade3[0] and status["grade"] == "III" and status["outstanding"] == "20000.00"
    assert set(status) >= {"stage", "paused_by", "next_action", "next_action_at", "closed_reason"}


async def test_a_case_nobody_answers_for_is_a_clear_failure(env, task_queue, monkeypatch, capsys):
    point_cli_at(monkeypatch, env)
    monkeypatch.setattr(cli_cases, "QUERY_TIMEOUT", timedelta(seconds=1))
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    handle = await start_case(env, task_queue, default_event(acct, occurred_at=now))  # no worker runs it
    monkeypatch.setattr(cli_cases, "case_workflow_id", lambda a: handle.id)
    assert await main(["status", acct]) == 1
    err = capsys.readouterr().err
    assert "did not answer its status query" in err and "Traceback" not in err
