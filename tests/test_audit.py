"""The compliance audit (SPEC §3, §9): a real run's contact log is clean; a
doctored one has each of its violations named, by account, attempt, rule and why."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, time, timedelta, timezone

from db.models import ContactAttempt
from db.models import Debtor as DebtorRow
from cli.main import main
from lab.audit import RULES, audit, audit_database
from tests.helpers import advance_to_local, default_event, ingestor, point_cli_at, uid
from worker import build_worker
from workflows import rules

TZ = "Asia/Shanghai"
TRACED = "+86 139 0000 1111"


def phone_hash(phone: str) -> str:
    return hashlib.sha256(re.sub(r"\D", "", phone).encode()).hexdigest()


async def real_run(env, db, task_queue) -> list[str]:
    """Four debtors through the intake and the worker for nine days: silent,
    aged 72 (a dialect team calls), lost and traced to a new number, promising."""
    start = await advance_to_local(env, TZ, time(10, 0))
    tag = uid()
    events = [
        default_event(f"A-SILENT-{tag}", occurred_at=start),
        default_event(f"A-ELDER-{tag}", occurred_at=start, age=72, debtor={"dialect": "Cantonese"}),
        default_event(f"A-LOST-{tag}", occurred_at=start, grade="III", simulation={"skip_trace_phone": TRACED}),
        default_event(f"A-PROMISE-{tag}", occurred_at=start, simulation={"answers": True, "promises_in_days": 1}),
    ]
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await ingestor(env, db, task_queue).ingest_lines([json.dumps(e) for e in events], source="t")
        assert report.accepted == 4
        await env.sleep(timedelta(days=9))
    return [e["account_id"] for e in events]


async def test_a_real_runs_contact_log_is_clean_and_a_doctored_one_has_each_violation_named(env, db, task_queue):
    accounts = await real_run(env, db, task_queue)
    report = await audit(db)
    assert report.attempts >= 10
    assert report.clean, [str(v) for v in report.violations]
    checked = {r.rule: r.checked for r in report.rules}
    assert list(checked) == list(RULES)
    assert all(n > 0 for n in checked.values()), checked  # every rule had something to check
    async with db.sessions() as s:
        traced = (await s.get(DebtorRow, f"D-{accounts[2]}")).phone
    assert traced == TRACED  # the lost debtor was called on the traced number, and that is its own

    expected = await doctor(db)
    report = await audit(db)
    assert not report.clean
    assert {(v.rule, v.account_id, v.attempt_key) for v in report.violations} == expected
    whys = {v.rule: v.why for v in report.violations}
    assert "4th connected call of debtor D-DOC-1" in whys["connected_calls"] and "cap 3" in whys["connected_calls"]
    assert "7th dial of number ***0002" in whys["dials_per_number"]
    assert "at 2027-05-03 23:30 Asia/Shanghai" in whys["quiet_hours"]  # its local_time column said 10:00
    assert "***9999, not a number of debtor D-DOC-1" in whys["own_channels"]
    assert "aged 72 called by team general, not dialect-hakka" in whys["dialect_routing"]
    assert "365 days short" in whys["retention"]
    # Under a stricter rule set (a strategy's), more is a violation: two connected calls a day.
    strict = rules.ContactRules(max_connected_calls_per_debtor_per_day=2)
    assert sum(v.rule == "connected_calls" for v in (await audit(db, strict)).violations) == 2


async def doctor(db) -> set[tuple[str, str, str]]:
    """Rows that break each rule of SPEC §3 once; returns (rule, account, attempt key) of each."""
    day = datetime(2027, 5, 3, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
    phones = {"D-DOC-1": "+86 138 0000 0001", "D-DOC-2": "+86 138 0000 0002", "D-DOC-3": "+86 138 0000 0003"}
    rows, n = [], 0

    def attempt(debtor: str, channel: str, at: datetime, *, connected: bool = False, phone: str | None = None,
                team: str | None = None, retain: timedelta = timedelta(days=730), local_time: str | None = None):
        nonlocal n
        n += 1
        number = phone or phones[debtor]
        row = ContactAttempt(
            idempotency_key=f"case-DOC-{n}:{channel}:{n}", account_id=f"DOC-{debtor[-1]}", debtor_id=debtor,
            step={"voice": "voice_robot", "human": "human_call"}[channel], attempt_no=n, channel=channel,
            phone_hash=phone_hash(number), phone_masked=f"***{re.sub(r'[^0-9]', '', number)[-4:]}",
            team_id=team, attempted_at=at, local_date=rules.local_date(at, TZ),
            local_time=local_time or rules.local_datetime(at, TZ).strftime("%H:%M:%S"), timezone=TZ,
            outcome="answered" if connected else "no_answer", connected=connected,
            retain_until=at + retain)
        rows.append(row)
        return row

    calls = [attempt("D-DOC-1", "voice", day + timedelta(minutes=10 * i), connected=True) for i in range(4)]
    dials = [attempt("D-DOC-2", "voice", day + timedelta(minutes=5 * i)) for i in range(7)]
    night = attempt("D-DOC-3", "voice", day + timedelta(hours=13, minutes=30), local_time="10:00:00")
    stranger = attempt("D-DOC-1", "voice", day + timedelta(days=1), phone="+86 137 0000 9999")
    elder = attempt("D-DOC-3", "human", day + timedelta(days=1), team="general")
    short = attempt("D-DOC-2", "voice", day + timedelta(days=2), retain=timedelta(days=365))
    now = datetime.now(timezone.utc)
    async with db.transaction() as s:
        for debtor, phone in phones.items():
            s.add(DebtorRow(debtor_id=debtor, phone=phone, timezone=TZ, region="CN-GD",
                            age=72 if debtor == "D-DOC-3" else 40, dialect="Hakka", updated_at=now))
        await s.flush()
        s.add_all(rows)
    return {
        ("connected_calls", calls[3].account_id, calls[3].idempotency_key),
        ("dials_per_number", dials[6].account_id, dials[6].idempotency_key),
        ("quiet_hours", night.account_id, night.idempotency_key),
        ("own_channels", stranger.account_id, stranger.idempotency_key),
        ("dialect_routing", elder.account_id, elder.idempotency_key),
        ("retention", short.account_id, short.idempotency_key),
    }


async def test_the_audit_command_names_each_violation_and_exits_1(db, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert await main(["audit"]) == 0  # an empty log
    assert "0 contact attempts audited: no violations" in capsys.readouterr().out
    expected = await doctor(db)
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///" + str(tmp_path / "elsewhere.db"))
    assert await main(["audit", "--database", db.url]) == 1
    out = capsys.readouterr().out
    for rule, account, key in expected:
        assert re.search(rf"^\s+1 {rule}: ", out, re.M), out
        assert f"  {account}  {key}  {rule}: " in out
    assert "6 violations" in out
    assert await main(["audit", "--database", db.url, "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["violations"] == 6 and not answer["clean"]
    assert {(v["rule"], v["account_id"], v["attempt_key"]) for r in answer["rules"] for v in r["violations"]} \
        == expected
    assert len((await audit_database(db.url)).violations) == 6


async def test_bad_arguments_of_the_audit_are_one_line_and_exit_2(db, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert await main(["audit", "--database", "mysql://x@y/z"]) == 2
    assert "--database must be a SQLAlchemy URL" in capsys.readouterr().err
    loose = tmp_path / "loose.toml"
    loose.write_text('name = "x"\nversion = "1"\n[contact]\nmax_connected_calls = 5\n')
    assert await main(["audit", "--strategy", str(loose)]) == 2
    err = capsys.readouterr().err.strip()
    assert "contact.max_connected_calls" in err and len(err.splitlines()) == 1
