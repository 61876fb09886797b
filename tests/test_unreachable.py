"""An unopenable database or an unreachable service is one line for a person,
never a traceback: exit 1 from every command that needs it, and from
``worker.py`` before it takes any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.helpers import default_event, ingestor, point_cli_at, uid
from worker import build_worker

ROOT = Path(__file__).resolve().parent.parent
MISSING_DIR = "sqlite+aiosqlite:////nonexistent-collections-dir/collections.db"
NO_SERVER = "postgresql+asyncpg://ops:s3cret@127.0.0.1:1/collections"


def run(program: str, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTIONS_", "DATABASE_", "TEMPORAL_"))}
    return subprocess.run([sys.executable, str(ROOT / program), *argv], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**base, "PYTHONPATH": str(ROOT), **env})


def one_line(done: subprocess.CompletedProcess, *expected: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in lines[0], done.stderr
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("url,expected", [
    (MISSING_DIR, "cannot open the database sqlite+aiosqlite:////nonexistent-collections-dir/collections.db: "
                  "unable to open database file"),
    (NO_SERVER, "cannot open the database postgresql+asyncpg://ops:***@127.0.0.1:1/collections"),
])
def test_the_worker_says_in_one_line_that_it_cannot_open_the_database(url, expected):
    done = run("worker.py", env={"DATABASE_URL": url, "TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert done.returncode == 1
    one_line(done, "worker.py: " + expected)


def test_the_worker_says_in_one_line_that_temporal_is_unreachable(sqlite_url):
    done = run("worker.py", env={"DATABASE_URL": sqlite_url, "TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert done.returncode == 1
    one_line(done, "worker.py: cannot reach Temporal at 127.0.0.1:1: Connection refused")


@pytest.mark.parametrize("argv", [["verify-evidence"], ["migrate"], ["ingest", "samples/events.jsonl"],
                                  ["pay", "ACC-1", "--amount", "5"], ["review-cleared", "team-b"]])
@pytest.mark.parametrize("url", [MISSING_DIR, NO_SERVER], ids=["missing-dir", "no-postgres"])
async def test_every_command_that_needs_the_database_says_it_cannot_open_it(argv, url, env, monkeypatch, capsys):
    point_cli_at(monkeypatch, env)  # Temporal answers; the database does not
    monkeypatch.setenv("DATABASE_URL", url)
    assert await main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert ("cannot open the database" in err or "database error" in err) and "s3cret" not in err, err


async def test_show_says_it_cannot_open_the_database(env, db, task_queue, monkeypatch, capsys):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        await ingestor(env, db, task_queue).ingest_lines([json.dumps(default_event(acct, occurred_at=now))],
                                                         source="t")
        point_cli_at(monkeypatch, env, task_queue=task_queue)
        monkeypatch.setenv("DATABASE_URL", MISSING_DIR)
        assert await main(["show", acct]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "cannot open the database (SQLite file /nonexistent-collections-dir/collections.db): unable to open database "
        "file (does its directory exist? `collections migrate` creates the file)"]


async def test_an_unreachable_temporal_is_one_short_line(monkeypatch, capsys):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert await main(["status", "ACC-1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("cannot reach Temporal at 127.0.0.1:1: Connection refused (is the server running? "
                           "`make demo` starts one)")
