"""Shared fixtures: a real Temporal test server (time skipping), real databases.

SQLite always; PostgreSQL too when ``TEST_POSTGRES_URL`` is set (CI sets it),
each test on a database of its own, migrated with Alembic.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from db.session import Database
from support.logs import configure_logging
from support.payloads import DATA_CONVERTER
from support.temporal import register_search_attributes
from tests.helpers import STARTED, start_case
from worker import build_worker

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")

def binary(name: str) -> str:
    candidate = Path(sys.prefix) / "bin" / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.exit(f"{name} not found: install the project's test dependencies (make test does)")
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server per test module: its clock only moves forward,
    and a module's leftovers cannot stall another module's time skipping."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=DATA_CONVERTER,
    ) as e:
        await register_search_attributes(e.client)
        yield e


@pytest_asyncio.fixture(loop_scope="session")
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own, for a test that holds work in
    flight (a contact held back in its queue, open_case held) or skips weeks:
    the server's time skipping does not always come back after a worker
    stopped with work in flight, and on a shared server the next test's first
    skip then times out."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=DATA_CONVERTER,
    ) as e:
        await register_search_attributes(e.client)
        yield e


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real-time dev server, for tests where real time matters (killed workers)."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_extra_args=["--log-level", "error"],
        ui=False, data_converter=DATA_CONVERTER,
    ) as e:
        await register_search_attributes(e.client)
        yield e


async def _postgres_database(base_url: str) -> tuple[str, str]:
    import asyncpg

    name = f"collections_test_{uuid.uuid4().hex[:12]}"
    admin = base_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base_url.rsplit("/", 1)[0] + f"/{name}", name


async def _drop_postgres_database(base_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(base_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest_asyncio.fixture(loop_scope="session")
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'collections.db'}"
    await upgrade(url)
    return url


@pytest_asyncio.fixture(loop_scope="session", params=BACKENDS)
async def database_url(request, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database on every configured backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'collections.db'}"
        await upgrade(url)
        yield url
        return
    url, name = await _postgres_database(POSTGRES_URL)
    await upgrade(url)
    try:
        yield url
    finally:
        await _drop_postgres_database(POSTGRES_URL, name)


@pytest_asyncio.fixture(loop_scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _terminate_leftover_cases() -> AsyncIterator[None]:
    """A test's cases must not keep running into the next test: with no worker
    left to run them, the time-skipping server stalls on their timers."""
    yield
    while STARTED:
        handle = STARTED.pop()
        try:  # by id alone: the latest run, also after continue-as-new
            await handle._client.get_workflow_handle(handle.id).terminate("test finished")
        except RPCError:
            pass  # it had already finished


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What the project's logging writes during the test, as text."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        configure_logging()


class Running:
    """A worker on this test's task queue and database; ``start`` opens a case on it."""

    def __init__(self, env: WorkflowEnvironment, db: Database, task_queue: str) -> None:
        self.env, self.db, self.task_queue = env, db, task_queue

    async def start(self, event: dict, **kw):
        return await start_case(self.env, self.task_queue, event, **kw)


@pytest_asyncio.fixture(loop_scope="session")
async def running(env: WorkflowEnvironment, db: Database, task_queue: str) -> AsyncIterator[Running]:
    """A worker running for the whole test; ``await running.start(event)`` starts a case on it."""
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        yield Running(env, db, task_queue)
