"""`collections health`: Temporal, the database and its migrations, one line
each; exit 0 healthy, 1 not, in bounded time and without a traceback."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from alembic.script import ScriptDirectory

from cli.main import main
from db.migrate import alembic_config, upgrade
from tests.helpers import point_cli_at

POSTGRES_URL = __import__("os").environ.get("TEST_POSTGRES_URL")

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
BEFORE_HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(HEAD).down_revision


async def health(capsys, *args: str) -> tuple[int, list[str], str]:
    """Run `collections health` in-process (bounded: a hang fails the test); (exit code, stdout lines, stderr)."""
    code = await asyncio.wait_for(main(["health", *args]), 120)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out.splitlines(), err


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
async def blank_url(request, tmp_path: Path) -> AsyncIterator[str]:
    """A database that exists and answers, with no schema at all."""
    if request.param == "sqlite":
        sqlite3.connect(tmp_path / "blank.db").close()
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    name = f"collections_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_healthy_against_the_server_and_a_migrated_database(env, db, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db)
    code, lines, err = await health(capsys)
    assert code == 0, lines
    assert [line.split()[:2] for line in lines] == [["temporal", "ok"], ["database", "ok"], ["migrations", "ok"]]
    assert env.client.service_client.config.target_host in lines[0]
    assert lines[2].endswith(f"at head {HEAD}")
    assert err == ""


async def test_an_unmigrated_database_then_one_behind_head_is_unhealthy(env, blank_url, monkeypatch, capsys):
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("DATABASE_URL", blank_url)
    code, lines, _ = await health(capsys)
    assert code == 1
    assert lines[0].split()[:2] == ["temporal", "ok"] and lines[1].split()[:2] == ["database", "ok"]
    assert lines[2] == f"migrations FAILED  not migrated (head is {HEAD}): run `collections migrate`"

    await upgrade(blank_url, BEFORE_HEAD)
    code, lines, _ = await health(capsys)
    assert code == 1
    assert lines[2] == f"migrations FAILED  at {BEFORE_HEAD}, behind head {HEAD}: run `collections migrate`"

    await upgrade(blank_url)  # what the line says to do makes it healthy
    code, lines, _ = await health(capsys)
    assert code == 0 and lines[2] == f"migrations ok  at head {HEAD}"


async def test_a_missing_sqlite_file_is_reported_not_created(env, tmp_path, monkeypatch, capsys):
    path = tmp_path / "nowhere.db"
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    code, lines, _ = await health(capsys)
    assert code == 1
    assert lines[1:] == [f"database   FAILED  SQLite file {path}: no such file (`collections migrate` creates it)",
                         "migrations FAILED  not checked: the database cannot be opened"]
    assert not path.exists()


async def test_temporal_unreachable_is_one_line_in_bounded_time(db, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("DATABASE_URL", db.url)
    code, lines, _ = await health(capsys, "--timeout", "5")
    assert code == 1
    assert lines[0].startswith(f"temporal   FAILED  127.0.0.1:{port} namespace default: ")
    assert [line.split()[:2] for line in lines[1:]] == [["database", "ok"], ["migrations", "ok"]]


async def test_a_temporal_that_never_answers_is_cut_off_at_the_timeout(db, monkeypatch, capsys):
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("TEMPORAL_ADDRESS", address)
        monkeypatch.setenv("DATABASE_URL", db.url)
        code, lines, _ = await health(capsys, "--timeout", "1")
    assert code == 1
    assert lines[0] == f"temporal   FAILED  {address} namespace default: no answer within 1 s"


async def test_health_follows_the_temporal_profile_as_every_command_does(env, db, tmp_path, monkeypatch, capsys):
    host = env.client.service_client.config.target_host
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.default]\naddress = "127.0.0.1:1"\n\n[profile.staging]\naddress = "{host}"\n'
                      f'namespace = "{env.client.namespace}"\n')
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    code, lines, _ = await health(capsys)
    assert code == 0 and lines[0].startswith(f"temporal   ok  {host} namespace {env.client.namespace}")
    monkeypatch.setenv("TEMPORAL_PROFILE", "default")
    code, lines, _ = await health(capsys, "--timeout", "5")
    assert code == 1 and lines[0].startswith("temporal   FAILED  127.0.0.1:1 namespace default: ")
