"""``collections health``: Temporal, the database and its migrations, one line
each; exit 0 when all three are healthy, 1 when any is not. Each check is
bounded in time and reports its failure as a line, never a traceback."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from cli import render
from cli.errors import FAILED, OK, _first_line, where
from cli.session import launch, session_of
from db.migrate import alembic_config, current_revision, schema_differences
from db.session import Database
from support.settings import Settings
from support.temporal import connect


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def check_temporal(settings: Settings, timeout: float) -> Check:
    """Connect as every command does and make one call."""
    place = f"{settings.temporal_address} namespace {settings.temporal_namespace}"
    try:
        async with asyncio.timeout(timeout):
            client = await connect(settings)
            info = await client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=timeout))
    except TimeoutError:
        return Check("temporal", False, f"{place}: no answer within {timeout:g} s")
    except Exception as e:  # the transport's, Core's or the server's error: its gist
        return Check("temporal", False, f"{place}: {_first_line(e)}")
    version = f" (server {info.server_version})" if info.server_version else ""
    return Check("temporal", True, f"{place}{version}")


def _missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
        and not Path(parsed.database).exists()


async def check_database(url: str, timeout: float) -> Check:
    """One query; a SQLite file that is not there is reported, not created."""
    if _missing_sqlite_file(url):
        return Check("database", False, f"{where(url)}: no such file (`collections migrate` creates it)")
    try:
        async with asyncio.timeout(timeout), Database(url) as db, db.sessions() as s:
            await s.execute(text("SELECT 1"))
    except TimeoutError:
        return Check("database", False, f"{where(url)}: no answer within {timeout:g} s")
    except Exception as e:
        return Check("database", False, f"{where(url)}: {_first_line(e)}")
    return Check("database", True, where(url))


async def check_migrations(url: str, timeout: float) -> Check:
    """The database's revision is the code's head, and its schema is the models'."""
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    try:
        async with asyncio.timeout(timeout):
            current = await current_revision(url)
            differences = await schema_differences(url) if current == head else []
    except TimeoutError:
        return Check("migrations", False, f"no answer within {timeout:g} s")
    except Exception as e:
        return Check("migrations", False, _first_line(e))
    if current is None:
        return Check("migrations", False, f"not migrated (head is {head}): run `collections migrate`")
    if current != head:
        known = {rev.revision for rev in script.walk_revisions()}
        if current not in known:
            return Check("migrations", False, f"at {current}, which this version does not know (head is {head}): "
                                              "a newer version migrated it")
        return Check("migrations", False, f"at {current}, behind head {head}: run `collections migrate`")
    if differences:
        return Check("migrations", False, f"at head {head}, but the schema differs from the models in "
                                          f"{len(differences)} places (changed by hand?)")
    return Check("migrations", True, f"at head {head}")


async def run_checks(settings: Settings, timeout: float) -> list[Check]:
    temporal, database = await asyncio.gather(check_temporal(settings, timeout),
                                              check_database(settings.database_url, timeout))
    migrations = (await check_migrations(settings.database_url, timeout) if database.ok
                  else Check("migrations", False, "not checked: the database cannot be opened"))
    return [temporal, database, migrations]


def health(ctx: typer.Context, timeout: Annotated[float, typer.Option(
        min=0.5, max=300, help="seconds each check may take")] = 10.0,
           as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False) -> Any:
    """Check Temporal, the database and that its migrations are at head (exit 0 healthy, 1 not).

    One line each. A worker with COLLECTIONS_METRICS_BIND set answers /readyz for itself (its Temporal
    connection and the database).
    """
    async def work() -> int:
        checks = await run_checks(session_of(ctx).settings, timeout)
        if as_json:
            render.json_out([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
        else:
            for c in checks:
                render.say(f"{c.name:<10} {'ok' if c.ok else 'FAILED'}  {c.detail}", None if c.ok else "red")
        return OK if all(c.ok for c in checks) else FAILED
    return launch(ctx, work())
