"""What the benchmarks share: a real dev server on a fresh SQLite database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from db.migrate import upgrade  # noqa: E402
from support.temporal import register_search_attributes  # noqa: E402


@asynccontextmanager
async def dev_server_and_database(tmp: str) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A dev server (SQLite history in ``tmp``, WAL) with the search attributes
    registered, and the URL of a migrated SQLite database beside it."""
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    await upgrade(url)
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(ROOT / ".venv" / "bin" / "temporal"),
        dev_server_database_filename=f"{tmp}/temporal.db",
        dev_server_extra_args=["--log-level", "error", "--sqlite-pragma", "journal_mode=WAL",
                               "--sqlite-pragma", "synchronous=NORMAL"],
        ui=False,
    ) as env:
        await register_search_attributes(env.client)  # as `collections` registers them
        yield env, url
