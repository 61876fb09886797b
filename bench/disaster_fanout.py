"""Benchmark: ingest N cases in one region, declare a disaster, and measure
how long it takes until every one of them is paused.

    .venv/bin/python bench/disaster_fanout.py [N]     (default 2000; `make bench`)

Runs a real dev server (SQLite history, WAL) and one in-process worker on a
fresh SQLite database in a temporary directory; prints the figures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intake.ingest import Ingestor  # noqa: E402
from bench.common import default_events, dev_server_and_database, wait_until  # noqa: E402
from support.logs import configure_logging  # noqa: E402
from db.models import Case, CaseHistory  # noqa: E402
from db.session import Database  # noqa: E402
from support.settings import load_settings  # noqa: E402
from worker import build_worker  # noqa: E402


def defaults(n: int, now: datetime) -> list[str]:
    """Three in four inside the disaster region."""
    return default_events(n, now, region=lambda i: "CN-GD" if i % 4 else "CN-SC")


async def main(n: int) -> None:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        async with dev_server_and_database(tmp) as (env, url), Database(url) as db:
            tq = "bench"
            async with build_worker(env.client, task_queue=tq, database_url=url):
                ingestor = Ingestor(env.client, db, load_settings(database_url=url, task_queue=tq))
                now = datetime.now(timezone.utc)
                t0 = time.perf_counter()
                report = await ingestor.ingest_lines(defaults(n, now), source="bench")
                ingest_s = time.perf_counter() - t0

                async def opened() -> bool:
                    async with db.sessions() as s:
                        return await s.scalar(select(func.count()).select_from(Case)) == n

                open_s = await wait_until(opened)
                in_region = n - len(range(0, n, 4))
                t1 = time.perf_counter()
                declared = await ingestor.ingest_lines([json.dumps({
                    "event_id": "bench-disaster", "type": "disaster.declared",
                    "occurred_at": datetime.now(timezone.utc).isoformat(), "region": "CN-GD", "days": 30,
                })], source="bench")
                fanout_s = time.perf_counter() - t1

                async def all_paused() -> bool:
                    async with db.sessions() as s:
                        paused = await s.scalar(select(func.count(func.distinct(CaseHistory.account_id))).where(
                            CaseHistory.note.like("disaster grace in CN-GD%")))
                    return paused == in_region

                paused_s = await wait_until(all_paused)
                count = await env.client.count_workflows('PausedBy = "disaster_grace"')
                outside = await env.client.count_workflows('PausedBy = "disaster_grace" AND Region = "CN-SC"')
    assert declared.accepted == 1 and report.accepted == n
    print(f"cases ingested:              {n} ({n / ingest_s:.0f} events/s, {ingest_s:.1f} s)")
    print(f"all cases opened after:      {open_s:.1f} s")
    print(f"disaster fan-out signalled:  {in_region} cases in {fanout_s:.2f} s ({in_region / fanout_s:.0f} signals/s)")
    print(f"all of them paused within:   {fanout_s + paused_s:.1f} s of the declaration")
    print(f"visibility PausedBy=disaster_grace: {count.count} (outside the region: {outside.count})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
