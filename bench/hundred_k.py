"""100,000 open cases on one worker (not in CI: about an hour at full size).

    .venv/bin/python bench/hundred_k.py [N] [--batch B] [--database URL]
        N        cases (default 100000); three in four in region CN-GD
        --batch  cases ingested before waiting for their day-0 calls (default 1000)
        --database  an empty PostgreSQL database (postgresql+asyncpg://…), migrated
                 here; default a fresh SQLite file beside the dev server's

One dev server (SQLite history, WAL) and ``python worker.py`` in a process of
its own (COLLECTIONS_WORKER_MEMORY_MB as set in the environment, default
1024). Cases are opened in batches: each batch is ingested and waited for
until every case of it has placed its day-0 call and parked (waiting for its
day-3 step), so the worker holds them all. Then it prints:

- the worker's resident memory with the N cases open (and the number it
  keeps cached: the budget decides; the others replay when they wake up);
- database bytes per case (the SQLite file, or pg_database_size less the
  empty migrated database);
- Temporal history bytes per case (``history_size_bytes`` of a sample of
  cases, as the server counts it);
- a disaster declared for CN-GD: how long until every case there (3/4 of N)
  is paused, counted in the database and in visibility.

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import default_events, dev_server_and_database, wait_until  # noqa: E402
from bench.vs_bare import daytime_zone, rss_kib, start_worker, stop  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import CaseHistory, ContactAttempt  # noqa: E402
from db.session import Database  # noqa: E402
from intake.faults import IngestStopped  # noqa: E402
from intake.ingest import Ingestor  # noqa: E402
from support.logs import configure_logging  # noqa: E402
from support.settings import load_settings  # noqa: E402
from worker import cached_cases  # noqa: E402
from workflows.model import case_workflow_id  # noqa: E402

TASK_QUEUE = "hundred-k"


def region(i: int) -> str:
    return "CN-GD" if i % 4 else "CN-SC"


async def database_bytes(db: Database, url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    async with db.sessions() as s:
        return int(await s.scalar(text("SELECT pg_database_size(current_database())")))


async def calls(db: Database) -> int:
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(ContactAttempt))


async def ingest(ingestor: Ingestor, lines: list[str]) -> None:
    """Ingest the lines; when the intake stops at an outage (SQLite busy under
    load), ingest them again: events already done are duplicates, a pending one
    is resumed."""
    for attempt in range(10):
        try:
            report = await ingestor.ingest_lines(lines, source="hundred-k", concurrency=32)
        except IngestStopped as stopped:
            print(f"  ingest stopped ({stopped}); again", flush=True)
            await asyncio.sleep(5)
            continue
        assert not report.rejected, report.rejects[:3]
        return
    raise RuntimeError("the intake kept stopping")


async def open_cases(env, db: Database, ingestor: Ingestor, worker_pid: int, n: int, batch: int) -> float:
    """Open N cases, batch after batch, each parked after its day-0 call; seconds taken."""
    now = datetime.now(timezone.utc)
    tz = daytime_zone(now)
    started = time.perf_counter()
    for first in range(0, n, batch):
        size = min(batch, n - first)
        lines = default_events(first + size, now, prefix="H", tz=tz, region=region)[first:]
        await ingest(ingestor, lines)

        async def parked() -> bool:
            return await calls(db) >= first + size
        await wait_until(parked)
        took = time.perf_counter() - started
        print(f"  {first + size:>7} cases open  {took:7.0f} s  {(first + size) / took:6.1f} cases/s  "
              f"worker {rss_kib(worker_pid) / 1024:7.0f} MiB", flush=True)
    return time.perf_counter() - started


async def history_bytes(env, n: int, sample: int = 100) -> float:
    picked = random.Random(7).sample(range(n), min(sample, n))
    sizes = []
    for i in picked:
        desc = await env.client.get_workflow_handle(case_workflow_id(f"H-{i:06d}")).describe()
        sizes.append(desc.raw_description.workflow_execution_info.history_size_bytes)
    return sum(sizes) / len(sizes)


async def disaster(env, db: Database, ingestor: Ingestor, n: int) -> tuple[int, float, float, int]:
    """(cases in the region, seconds to signal them, seconds until all paused, visibility count)."""
    in_region = sum(1 for i in range(n) if region(i) == "CN-GD")
    t0 = time.perf_counter()
    await ingest(ingestor, [json.dumps({
        "event_id": "hundred-k-disaster", "type": "disaster.declared",
        "occurred_at": datetime.now(timezone.utc).isoformat(), "region": "CN-GD", "days": 30})])
    signalled = time.perf_counter() - t0

    said = [t0]

    async def all_paused() -> bool:
        async with db.sessions() as s:
            paused = await s.scalar(select(func.count(func.distinct(CaseHistory.account_id))).where(
                CaseHistory.note.like("disaster grace in CN-GD%")))
        if time.perf_counter() - said[0] >= 60:  # a long fan-out says how far it is
            said[0] = time.perf_counter()
            print(f"  {paused:>7} of {in_region} paused  {said[0] - t0:7.0f} s", flush=True)
        return paused >= in_region
    await wait_until(all_paused, timeout=4 * 3600)
    paused = time.perf_counter() - t0

    async def visible() -> bool:
        return (await env.client.count_workflows('PausedBy = "disaster_grace"')).count >= in_region
    await wait_until(visible, timeout=600)
    count = (await env.client.count_workflows('PausedBy = "disaster_grace"')).count
    return in_region, signalled, paused, count


async def main(n: int, batch: int, database: str | None) -> None:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        async with dev_server_and_database(tmp_name) as (env, sqlite_url):
            url = database or sqlite_url
            if database:
                await upgrade(url)
            target = env.client.service_client.config.target_host
            settings = load_settings(database_url=url, task_queue=TASK_QUEUE, temporal_address=target)
            proc = start_worker(["worker.py"], {"TEMPORAL_ADDRESS": target, "TEMPORAL_NAMESPACE": env.client.namespace,
                                                "DATABASE_URL": url, "COLLECTIONS_TASK_QUEUE": TASK_QUEUE,
                                                "LOG_LEVEL": "INFO"}, "worker started", tmp / "worker.log")
            try:
                async with Database(url) as db:
                    empty = await database_bytes(db, url)
                    base = rss_kib(proc.pid)
                    ingestor = Ingestor(env.client, db, settings)
                    print(f"{n} cases in batches of {batch}; worker starts at {base / 1024:.0f} MiB, caches up to "
                          f"{cached_cases(settings)} cases (COLLECTIONS_WORKER_MEMORY_MB={settings.worker_memory_mb})")
                    opened = await open_cases(env, db, ingestor, proc.pid, n, batch)
                    await asyncio.sleep(10)
                    rss = rss_kib(proc.pid)
                    db_bytes = (await database_bytes(db, url) - empty) / n
                    hist = await history_bytes(env, n)
                    # Printed now: the fan-out below may take as long again.
                    print(f"opened and parked:        {n} cases in {opened:.0f} s ({n / opened:.1f} cases/s)")
                    print(f"worker resident memory:   {rss / 1024:.0f} MiB ({(rss - base) / n:.0f} KiB a case over "
                          f"the {base / 1024:.0f} MiB it starts with)")
                    print(f"database bytes per case:  {db_bytes:.0f} "
                          f"({'SQLite' if url.startswith('sqlite') else 'PostgreSQL'})")
                    print(f"history bytes per case:   {hist:.0f} (Temporal, after the day-0 call)", flush=True)
                    in_region, signalled, paused, visible = await disaster(env, db, ingestor, n)
            finally:
                stop(proc)
    print(f"disaster fan-out:         {in_region} cases signalled in {signalled:.0f} s, all paused "
          f"{paused:.0f} s after the declaration; visibility PausedBy=disaster_grace: {visible}")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database", default=os.environ.get("HUNDRED_K_DATABASE"))
    args = parser.parse_args()
    asyncio.run(main(args.n, args.batch, args.database))
