"""What the benchmarks share: a real dev server on a fresh SQLite database."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from db.migrate import upgrade  # noqa: E402
from support.temporal import register_search_attributes  # noqa: E402


def default_events(n: int, now: datetime, *, prefix: str = "B", tz: str = "Asia/Shanghai",
                   region: Callable[[int], str] = lambda i: "CN-GD") -> list[str]:
    """N ``account.defaulted`` lines of distinct debtors, opened ``now``."""
    return [json.dumps({
        "event_id": f"{prefix}-ev-{i}", "type": "account.defaulted", "occurred_at": now.isoformat(),
        "account_id": f"{prefix}-{i:06d}", "amount_due": "1000.00", "currency": "CNY",
        "due_date": (now.date() - timedelta(days=40)).isoformat(), "contract_id": f"K-{i}",
        "debtor": {"debtor_id": f"{prefix}-D-{i}", "phone": f"+86 139{i:08d}", "timezone": tz,
                   "region": region(i), "age": 30 + i % 40},
    }) for i in range(n)]


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 3600) -> float:
    """Seconds until ``predicate()`` holds (polled every 0.2 s)."""
    start = time.perf_counter()
    while not await predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.2)
    return time.perf_counter() - start


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
