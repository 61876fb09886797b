"""Strategy as configuration (SPEC §9): the TOML loader refuses what loosens
SPEC §3, a case follows the strategy it started with, and shows it."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.worker import Replayer

from cli.main import main
from db.models import Case, LegalAction
from support.settings import SettingsError, load_settings
from support.strategy import StrategyError, default_strategy, load_strategy, parse_strategy
from tests.helpers import (
    TrackingIngestor, advance_to_local, attempts, default_event, point_cli_at, settings_for, uid,
)
from worker import WORKFLOW_RUNNER, build_worker
from workflows import rules, strategy as strategies
from workflows.case import DelinquentAccountWorkflow
from workflows.model import case_workflow_id

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "strategies"
HEAD = 'name = "t"\nversion = "1"\n'
LADDER = '[[ladder]]\nday = 0\nchannel = "voice"\n{at}[[ladder]]\nday = 3\nchannel = "letter"\n'


# ------------------------------------------------------------------ the loader

def test_the_default_file_is_the_built_in_default_and_todays_constants():
    default = load_strategy(SAMPLES / "default.toml")
    assert default == default_strategy()
    assert default.label == "default@1"
    assert default.contact_rules() == rules.DEFAULT_RULES
    case = default.to_case()
    assert strategies.ladder_of(case) == rules.LADDER
    assert (case.income_share, case.max_periods, case.legal_min_amount, case.bands) == ("0.30", 12, "0.00", [])


def test_the_challenger_sample_is_stricter_and_reorders_the_ladder():
    challenger = load_strategy(SAMPLES / "letter-first.toml")
    assert challenger.label == "letter-first@1"
    ladder = strategies.ladder_of(challenger.to_case())
    assert [(s.name, s.day, s.channel) for s in ladder] == [
        ("legal_notice", 0, "letter"), ("voice_robot", 2, "voice"), ("human_call", 5, "human")]
    assert ladder[0].label == "day 0 10:00 legal notice letter"
    r = challenger.contact_rules()
    assert (r.max_connected_calls_per_debtor_per_day, r.quiet_start, r.quiet_end) == (2, time(21), time(9))


LOOSER = [
    ("contact.quiet_start", '[contact]\nquiet_start = "22:30"\n'),
    ("contact.quiet_start", "[contact]\nquiet_start = 23:00:00\n"),  # a TOML time, not a string
    ("contact.quiet_end", '[contact]\nquiet_end = "07:30"\n'),
    ("contact.max_connected_calls", "[contact]\nmax_connected_calls = 4\n"),
    ("contact.max_dial_attempts", "[contact]\nmax_dial_attempts = 7\n"),
    ("contact.recording_retention_days", "[contact]\nrecording_retention_days = 365\n"),
    ("contact.dialect_team_min_age", "[contact]\ndialect_team_min_age = 65\n"),
    ("plan.max_periods", "[plan]\nmax_periods = 18\n"),
    ("plan.income_share", '[plan]\nincome_share = "0.40"\n'),
    ("ladder[0].at", LADDER.format(at='at = "23:00"\n')),
    ("ladder[0].at", LADDER.format(at='at = "07:59"\n')),
    # quiet hours the strategy itself made longer hold for its own ladder too
    ("ladder[0].at", LADDER.format(at='at = "21:30"\n') + '[contact]\nquiet_start = "21:00"\n'),
]


@pytest.mark.parametrize("key,body", LOOSER, ids=[f"{k}:{b.splitlines()[-1]}" for k, b in LOOSER])
def test_a_strategy_looser_than_the_law_is_refused_naming_the_key(key, body):
    with pytest.raises(StrategyError) as refused:
        parse_strategy(HEAD + body, "loose.toml")
    message = str(refused.value)
    assert message.startswith(f"loose.toml: {key}")
    assert "\n" not in message
    assert "never looser" in message or "quiet hours" in message


@pytest.mark.parametrize("body,expected", [
    ("name = [", "loose.toml: not valid TOML"),
    (HEAD + "colour = 'blue'\n", "loose.toml: colour: unknown key"),
    (HEAD + "[contact]\nmax_calls = 2\n", "loose.toml: contact.max_calls: unknown key"),
    (HEAD + LADDER.format(at="speed = 2\n"), "loose.toml: ladder[0].speed: unknown key"),
    ('name = "t"\n', "loose.toml: version: missing"),
    (HEAD + '[[ladder]]\nday = 0\nchannel = "fax"\n', "loose.toml: ladder[0].channel = 'fax'"),
    (HEAD + '[[ladder]]\nday = 0\nchannel = "voice"\n', "loose.toml: ladder: needs exactly one letter step"),
    (HEAD + '[[ladder]]\nday = 2\nchannel = "voice"\n[[ladder]]\nday = 2\nchannel = "letter"\n',
     "loose.toml: ladder[1].day: day 2 is not after"),
    (HEAD + '[legal]\nmin_amount = "lots"\n', "loose.toml: legal.min_amount = 'lots': must be a decimal amount"),
    (HEAD + '[[legal.bands]]\nfrom_amount = "100"\nstart_with = "human"\n'
     '[[ladder]]\nday = 0\nchannel = "letter"\n[[ladder]]\nday = 1\nchannel = "human"\n',
     "loose.toml: legal.bands[0].start_with: starting with the human step would skip the legal notice"),
])
def test_a_malformed_strategy_is_refused_in_one_line(body, expected):
    with pytest.raises(StrategyError) as refused:
        parse_strategy(body, "loose.toml")
    assert str(refused.value).startswith(expected)
    assert "\n" not in str(refused.value)


def test_a_stricter_strategy_is_accepted(tmp_path):
    path = tmp_path / "strict.toml"
    path.write_text(HEAD + LADDER.format(at='at = "09:30"\n') + '[contact]\nquiet_start = "20:00"\nquiet_end = '
                    '"09:00"\nmax_connected_calls = 1\nmax_dial_attempts = 2\nrecording_retention_days = 1000\n'
                    'dialect_team_min_age = 55\n[plan]\nincome_share = 0.2\nmax_periods = 6\n')
    s = load_strategy(path)
    assert s.contact_rules() == rules.ContactRules(1, 2, time(20), time(9), 1000, 55)
    assert (s.to_case().income_share, s.to_case().max_periods) == ("0.2", 6)


def test_a_missing_strategy_file_is_named(tmp_path):
    with pytest.raises(StrategyError, match=r"nope\.toml: no such strategy file"):
        load_strategy(tmp_path / "nope.toml")


# ---------------------------------------------------------------- the settings

def test_collections_strategy_refuses_a_looser_file_naming_variable_and_key(tmp_path):
    path = tmp_path / "loose.toml"
    path.write_text(HEAD + "[contact]\nmax_dial_attempts = 9\n")
    with pytest.raises(SettingsError) as refused:
        load_settings(strategy=str(path))
    assert str(refused.value).startswith(f"COLLECTIONS_STRATEGY={str(path)!r} is not accepted: ")
    assert "contact.max_dial_attempts" in str(refused.value)


async def test_the_command_line_exits_2_on_a_looser_strategy(tmp_path, monkeypatch, capsys):
    path = tmp_path / "loose.toml"
    path.write_text(HEAD + '[plan]\nmax_periods = 24\n')
    monkeypatch.setenv("COLLECTIONS_STRATEGY", str(path))
    assert await main(["settings"]) == 2
    err = capsys.readouterr().err.strip()
    assert "plan.max_periods" in err and len(err.splitlines()) == 1


def test_a_case_plans_with_the_stricter_of_the_settings_and_its_strategy():
    s = load_settings(strategy=str(SAMPLES / "letter-first.toml"), max_dial_attempts=3)
    r = s.case_contact_rules
    assert (r.max_connected_calls_per_debtor_per_day, r.max_dial_attempts_per_number_per_day) == (2, 3)
    assert (r.quiet_start, r.quiet_end, r.recording_retention_days) == (time(21), time(9), 1095)
    assert load_settings().active_strategy == default_strategy()


# ------------------------------------------------------------------- the rules

def test_a_step_due_at_its_wall_time_and_a_band_that_skips_to_the_letter():
    tz = "Asia/Shanghai"
    opened = rules.local_instant(date(2027, 3, 1), time(15, 30), tz)
    ladder = strategies.ladder_of(load_strategy(SAMPLES / "letter-first.toml").to_case())
    due = rules.step_due(1, opened_at=opened, tz=tz, ladder=ladder, at=time(10))
    assert rules.local_datetime(due, tz).replace(tzinfo=None) == datetime(2027, 3, 3, 10, 0)
    case = parse_strategy(HEAD + '[[legal.bands]]\nfrom_amount = "10000"\ngrade = "III"\nstart_with = "letter"\n'
                          '[[legal.bands]]\nfrom_amount = "50000"\ngrade = "I"\n').to_case()
    assert strategies.band_for(case, "9999.99") is None
    band = strategies.band_for(case, "20000.00")
    assert (band.grade, strategies.first_step(rules.LADDER, band)) == ("III", 2)
    assert strategies.band_for(case, "60000").grade == "I"  # the highest band that applies
    # Started at the letter (day 7 of the ladder): it is due on day 0.
    due = rules.step_due(2, opened_at=opened, tz=tz, start=2)
    assert rules.local_date(due, tz) == date(2027, 3, 1)


# ------------------------------------------------------------------- the case

def ingestor_with(env, db, task_queue, strategy: Path | None) -> TrackingIngestor:
    overrides = {"strategy": str(strategy)} if strategy else {}
    return TrackingIngestor(env.client, db, settings_for(db, task_queue, **overrides))


async def test_a_case_started_with_the_challenger_follows_its_ladder(env, db, task_queue):
    tz = "America/New_York"
    start = await advance_to_local(env, tz, time(9, 30))
    account = f"A-LF-{uid()}"
    event = default_event(account, occurred_at=start, tz=tz)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        ing = ingestor_with(env, db, task_queue, SAMPLES / "letter-first.toml")
        report = await ing.ingest_lines([json.dumps(event)], source="t")
        assert report.accepted == 1
        handle = env.client.get_workflow_handle(case_workflow_id(account))
        await env.sleep(timedelta(days=6))
        status = await handle.query(DelinquentAccountWorkflow.status)
        history = await handle.fetch_history()
    rows = await attempts(db, account)
    day0 = rules.local_date(start, tz)
    assert [(r.channel, (r.local_date - day0).days, rules.local_datetime(r.attempted_at, tz).strftime("%H:%M"))
            for r in rows] == [("letter", 0, "10:00"), ("voice", 2, "10:00"), ("human", 5, "14:00")]
    assert all(r.retain_until >= r.attempted_at + timedelta(days=1095) for r in rows if r.channel != "letter")
    assert [e.step for e in status.ladder] == ["legal_notice", "voice_robot", "human_call"]
    assert status.stage == "awaiting_response"  # the notice was served on day 0: its window runs
    async with db.sessions() as s:
        assert await s.scalar(select(Case.strategy).where(Case.account_id == account)) == "letter-first@1"
    # The new code replays its own history (the strategy-v1 marker in it).
    await Replayer(workflows=[DelinquentAccountWorkflow], workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)


async def test_an_amount_band_starts_at_the_letter_and_the_legal_minimum_holds_the_court(env, db, task_queue,
                                                                                          tmp_path):
    path = tmp_path / "big-first.toml"
    path.write_text('name = "big-letter"\nversion = "2"\n[legal]\nmin_amount = "1000000.00"\n'
                    '[[legal.bands]]\nfrom_amount = "20000.00"\nstart_with = "letter"\n')
    tz = "Asia/Shanghai"
    start = await advance_to_local(env, tz, time(10, 0))
    account = f"A-BIG-{uid()}"
    event = default_event(account, occurred_at=start, tz=tz, amount="25000.00")
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await ingestor_with(env, db, task_queue, path).ingest_lines([json.dumps(event)], source="t")
        assert report.accepted == 1
        handle = env.client.get_workflow_handle(case_workflow_id(account))
        await env.sleep(timedelta(days=20))
        status = await handle.query(DelinquentAccountWorkflow.status)
    rows = await attempts(db, account)
    assert [(r.channel, r.local_date) for r in rows] == [("letter", rules.local_date(start, tz))]
    assert status.stage == "legal_pending" and status.closed_reason is None
    assert status.next_action == "limitation_expiry"
    async with db.sessions() as s:
        assert (await s.scalars(select(LegalAction).where(LegalAction.account_id == account))).all() == []


async def test_the_strategy_search_attribute_filters_cases(local_env, db, task_queue, monkeypatch, capsys):
    env = local_env
    now = datetime.now(timezone.utc)
    accounts = {f"A-SA-{uid()}": SAMPLES / "letter-first.toml", f"A-SA-{uid()}": None}
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        for account, path in accounts.items():
            event = default_event(account, occurred_at=now, tz="Asia/Shanghai")
            await ingestor_with(env, db, task_queue, path).ingest_lines([json.dumps(event)], source="t")
        challenger, champion = list(accounts)
        query = f"WorkflowId = '{case_workflow_id(challenger)}' AND Strategy = 'letter-first@1'"
        for _ in range(100):  # visibility is eventually consistent
            found = [wf.id async for wf in env.client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.1)
        assert found == [case_workflow_id(challenger)]
        point_cli_at(monkeypatch, env, db, task_queue)
        assert await main(["cases", "--strategy", "letter-first", "--no-live", "--json"]) == 0
        listed = {c["account_id"]: c["strategy"] for c in json.loads(capsys.readouterr().out)["cases"]}
        assert listed.get(challenger) == "letter-first@1" and champion not in listed
        assert await main(["cases", "--strategy", "default@1", "--no-live", "--json"]) == 0
        listed = [c["account_id"] for c in json.loads(capsys.readouterr().out)["cases"]]
        assert champion in listed and challenger not in listed
