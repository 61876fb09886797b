"""The strategy lab (issue 14): populations, runs, reports, the recovery score.

Two small lab runs (module-scoped: each starts its own time-skipping server
and database) feed the report, champion/challenger and training tests.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import joblib
import pytest
import pytest_asyncio

from cli.main import main as cli
from intake.events import AccountDefaulted, parse_event
from lab import population
from lab.plots import FILES as PLOTS
from tests.helpers import default_event, ingestor, settings_for, uid
from worker import build_worker
from workflows.case import DelinquentAccountWorkflow
from workflows.model import case_workflow_id
from workflows.search import RECOVERY_SCORE

STRATEGIES = Path(__file__).parent.parent / "samples" / "strategies"
REPORT_KEYS = {
    "recovery_rate_by_count", "recovery_rate_by_amount", "amount_recovered", "days_to_resolution",
    "closures_by_reason", "legal_tracks", "contacts_per_debtor", "complaints", "plan_uptake", "plan_break_rate",
    "stage_funnel", "recovery_by_day",
}


async def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await cli([*args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- population (no server) -------------------------------------------------------------------


def test_population_is_the_same_for_a_seed_and_covers_300_patterns(tmp_path):
    n = len(population.pattern_names())
    assert n >= 300
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    population.write(a, n, seed=11)
    population.write(b, n, seed=11)
    population.write(c, n, seed=12)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    events = [parse_event(line) for line in a.read_text().splitlines()]
    assert all(isinstance(e, AccountDefaulted) for e in events)
    patterns = {e.debtor.simulation["pattern"] for e in events}
    assert len(patterns) == n  # every pattern, once per debtor
    assert len({e.account_id for e in events}) == len(events)
    several = [e for e in events if e.debtor.simulation["pattern"].endswith(".several-accounts")]
    assert Counter(e.debtor.debtor_id for e in several).most_common(1)[0][1] == 3
    elderly = [e for e in events if e.debtor.simulation["pattern"].endswith(".elderly-dialect")]
    assert elderly and all(e.debtor.age >= 60 and e.debtor.dialect for e in elderly)


async def test_population_cli_writes_the_file_and_refuses_an_unknown_pattern(tmp_path, capsys):
    out = tmp_path / "pop.jsonl"
    code, stdout, _ = await run_cli(capsys, "lab", "population", "--debtors", "5", "--seed", "3", "--out", str(out),
                                    "--patterns", "always.full-on-call.plain,never.none.disaster")
    assert code == 0 and "5 debtors" in stdout
    assert {json.loads(line)["debtor"]["simulation"]["pattern"] for line in out.read_text().splitlines()} == {
        "always.full-on-call.plain", "never.none.disaster"}
    bad = tmp_path / "bad.jsonl"
    code, stdout, err = await run_cli(capsys, "lab", "population", "--debtors", "5", "--out", str(bad),
                                      "--patterns", "always.full-on-call.plain,always.pays-in-gold.plain")
    assert code == 2 and not bad.exists()
    assert "unknown pattern 'always.pays-in-gold.plain'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--split", "1.5"], "--split must be between 0 and 1"),
    (["--split", "0"], "--split must be between 0 and 1"),
    (["--debtors", "0"], "--debtors must be at least 1"),
    (["--strategy", "broken.toml"], "not valid TOML"),
    (["--population", "broken.jsonl"], "population file"),
])
async def test_lab_run_refuses_bad_input_and_writes_nothing(tmp_path, capsys, args, message):
    (tmp_path / "broken.toml").write_text("name = [unclosed\n")
    (tmp_path / "broken.jsonl").write_text('{"event_id": "e1", "type": "account.defaulted"}\n')
    args = [str(tmp_path / a) if a.startswith("broken") else a for a in args]
    out = tmp_path / "run"
    code, _, err = await run_cli(capsys, "lab", "run", "--debtors", "3", "--days", "2", "--out", str(out),
                                 "--challenger", str(STRATEGIES / "letter-first.toml"), *args)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# ---- runs ------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def runs(tmp_path_factory) -> dict[str, Path]:
    """A default run, and a champion/challenger run of another population."""
    base = tmp_path_factory.mktemp("lab")
    one, two = base / "one", base / "two"
    assert await cli(["lab", "run", "--debtors", "20", "--days", "25", "--seed", "1", "--out", str(one)]) == 0
    assert await cli(["lab", "run", "--debtors", "20", "--days", "25", "--seed", "2", "--out", str(two),
                      "--strategy", str(STRATEGIES / "default.toml"),
                      "--challenger", str(STRATEGIES / "letter-first.toml"), "--split", "0.5"]) == 0
    return {"one": one, "two": two}


def database_says(db_file: Path, accounts: list[str] | None = None) -> dict:
    """Recovery figures computed straight from the run's database."""
    con = sqlite3.connect(db_file)
    try:
        cases = con.execute("SELECT account_id, amount_due, closed_reason FROM cases").fetchall()
        paid = dict(con.execute("SELECT account_id, SUM(amount) FROM payments GROUP BY account_id").fetchall())
    finally:
        con.close()
    if accounts is not None:
        cases = [c for c in cases if c[0] in accounts]
    due = sum(Decimal(str(c[1])) for c in cases)
    recovered = sum(min(Decimal(str(paid.get(c[0], 0))), Decimal(str(c[1]))) for c in cases)
    return {"accounts": len(cases), "paid": sum(c[2] == "paid" for c in cases),
            "recovered": recovered.quantize(Decimal("0.01")), "due": due}


async def test_a_lab_run_reports_what_its_database_says(runs):
    out = runs["one"]
    report = json.loads((out / "report.json").read_text())
    figures = report["strategies"]["champion"]
    assert REPORT_KEYS <= set(figures)
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    truth = database_says(out / "lab.db")
    assert figures["accounts"] == truth["accounts"] == len((out / "population.jsonl").read_text().splitlines())
    assert figures["recovery_rate_by_count"] == round(truth["paid"] / truth["accounts"], 4)
    assert Decimal(figures["amount_recovered"]) == truth["recovered"] > 0
    assert figures["recovery_rate_by_amount"] == round(float(truth["recovered"] / truth["due"]), 4)
    assert sum(figures["closures_by_reason"].values()) == truth["accounts"]
    assert figures["recovery_by_day"][-1] == figures["recovery_rate_by_amount"]
    assert report["run"]["debtors"] == 20 and report["run"]["debtor_days_per_second"] > 0
    assert report["audit"]["violations"] == 0 and report["audit"]["attempts"] > 0


async def test_champion_and_challenger_are_reported_side_by_side(runs):
    out = runs["two"]
    report = json.loads((out / "report.json").read_text())
    champion, challenger = report["strategies"]["champion"], report["strategies"]["challenger"]
    assert champion["strategy"].endswith("default.toml") and challenger["strategy"].endswith("letter-first.toml")
    assert champion["debtors"] > 0 and challenger["debtors"] > 0
    assert champion["debtors"] + challenger["debtors"] == 20
    truth = database_says(out / "lab.db")
    assert champion["accounts"] + challenger["accounts"] == truth["accounts"]
    # each cohort's cases carry its strategy (the Strategy the case started with)
    con = sqlite3.connect(out / "lab.db")
    try:
        columns = {row[1] for row in con.execute("PRAGMA table_info(cases)")}
        if "strategy" in columns:
            labels = Counter(row[0] for row in con.execute("SELECT strategy FROM cases"))
            assert set(labels) == {"default@1", "letter-first@1"}
            assert labels["letter-first@1"] == challenger["accounts"]
    finally:
        con.close()
    assert report["audit"]["violations"] == 0


async def test_train_writes_a_model_and_prints_its_auc(runs, tmp_path, capsys):
    model = tmp_path / "model.joblib"
    code, stdout, err = await run_cli(capsys, "lab", "train", "--runs", str(runs["one"]), str(runs["two"]),
                                      "--out", str(model))
    assert code == 0, err
    assert "AUC" in stdout and "simulated debtors" in stdout
    bundle = joblib.load(model)
    assert 0 <= bundle["auc"] <= 1 and f"{bundle['auc']:.3f}" in stdout
    code, _, err = await run_cli(capsys, "lab", "train", "--runs", str(tmp_path), "--out", str(tmp_path / "x"))
    assert code == 2 and "not a lab run directory" in err and not (tmp_path / "x").exists()


# ---- the score on a case -----------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def model_file(runs, tmp_path_factory) -> Path:
    from lab import score

    path = tmp_path_factory.mktemp("model") / "model.joblib"
    await score.train([runs["one"], runs["two"]], path)
    return path


async def test_a_case_opened_with_a_model_shows_its_score(env, db, task_queue, model_file, tmp_path):
    """Scored when it opens; its strategy grades it by the score (every score is at least 0: grade I)."""
    from activities.score_activities import load_model

    strategy = tmp_path / "by-score.toml"
    strategy.write_text('name = "by-score"\nversion = "1"\n[score]\ngrade_thresholds = { I = "0.00" }\n')
    event = default_event(f"ACC-{uid()}", occurred_at=await env.get_current_time(),
                          debtor={"monthly_disposable_income": "3000.00"})
    settings = settings_for(db, task_queue, score_model=str(model_file), strategy=str(strategy))
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url, settings=settings,
                            score_model=load_model(model_file)):
        intake = ingestor(env, db, task_queue)
        intake.settings = settings
        report = await intake.ingest_lines([json.dumps(event)], source="test")
        assert report.accepted == 1
        handle = env.client.get_workflow_handle(case_workflow_id(event["account_id"]))
        published = None
        for _ in range(300):  # the case publishes its search attributes once it has opened
            published = (await handle.describe()).typed_search_attributes.get(RECOVERY_SCORE)
            if published is not None:
                break
            await asyncio.sleep(0.1)
        status = await handle.query(DelinquentAccountWorkflow.status)
        assert status.score is not None and 0 <= status.score <= 1
        assert published == status.score
        assert status.grade == "I"  # upstream gave none: the strategy's threshold for the score


async def test_without_a_model_a_case_has_no_score(env, db, task_queue):
    event = default_event(f"ACC-{uid()}", occurred_at=await env.get_current_time())
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        await ingestor(env, db, task_queue).ingest_lines([json.dumps(event)], source="test")
        handle = env.client.get_workflow_handle(case_workflow_id(event["account_id"]))
        for _ in range(300):
            status = await handle.query(DelinquentAccountWorkflow.status)
            if status.stage != "verifying":
                break
            await asyncio.sleep(0.1)
        assert status.stage != "verifying" and status.score is None and status.grade == "II"
        assert (await handle.describe()).typed_search_attributes.get(RECOVERY_SCORE) is None


def test_a_model_file_of_the_wrong_shape_stops_the_worker_with_exit_2(tmp_path, monkeypatch, capsys):
    import worker

    wrong = tmp_path / "wrong.joblib"
    joblib.dump({"kind": "collections-recovery-score", "features": ["amount"], "pipeline": None}, wrong)
    monkeypatch.setenv("COLLECTIONS_SCORE_MODEL", str(wrong))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    assert worker.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "COLLECTIONS_SCORE_MODEL" in err and "expects features ['amount']" in err
    assert len(err.splitlines()) == 1
    not_a_model = tmp_path / "text.joblib"
    not_a_model.write_text("hello")
    monkeypatch.setenv("COLLECTIONS_SCORE_MODEL", str(not_a_model))
    assert worker.main([]) == 2
    assert "is not a joblib model file" in capsys.readouterr().err

