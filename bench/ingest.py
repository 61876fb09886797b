"""Benchmark: ingest throughput alone, at several levels of parallelism.

    .venv/bin/python bench/ingest.py [N]      (default 2000; `make bench-ingest`)

A real dev server (SQLite history, WAL) and a fresh SQLite database, and no
worker, so the figures are the ingest's own work: validate, record, start a
case (``account.defaulted``) or signal it (``payment.received``), write
rejects.  For each parallelism it ingests N defaults, then N payments for
them, then the same file again (every line a duplicate); prints events/s.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intake.ingest import Ingestor  # noqa: E402
from support.logs import configure_logging  # noqa: E402
from bench.common import default_events, dev_server_and_database  # noqa: E402
from db.session import Database  # noqa: E402
from support.settings import load_settings  # noqa: E402

PARALLELISM = (1, 4, 16, 32)


def payments(n: int, prefix: str, now: datetime) -> list[str]:
    return [json.dumps({
        "event_id": f"{prefix}-pay-{i}", "type": "payment.received", "occurred_at": now.isoformat(),
        "account_id": f"{prefix}-{i:06d}", "payment_id": f"{prefix}-P-{i}", "amount": "10.00",
    }) for i in range(n)]


async def timed(ingestor: Ingestor, lines: list[str], parallel: int):
    t0 = time.perf_counter()
    report = await ingestor.ingest_lines(lines, source="bench", concurrency=parallel)
    return report, time.perf_counter() - t0


async def main(n: int) -> None:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        async with dev_server_and_database(tmp) as (env, url), Database(url) as db:
            ingestor = Ingestor(env.client, db, load_settings(database_url=url, task_queue="bench-no-worker"))
            now = datetime.now(timezone.utc)
            print(f"{n} events per run, no worker; events/s (seconds)")
            print(f"{'parallel':>8}  {'defaults':>16}  {'payments':>16}  {'duplicates':>16}")
            for parallel in PARALLELISM:
                prefix = f"P{parallel}"
                opened = default_events(n, now, prefix=prefix)
                a, ta = await timed(ingestor, opened, parallel)
                b, tb = await timed(ingestor, payments(n, prefix, now), parallel)
                c, tc = await timed(ingestor, opened, parallel)
                assert (a.accepted, b.accepted, c.duplicate) == (n, n, n), (a, b, c)
                print(f"{parallel:>8}  {n / ta:>8.0f} ({ta:5.1f})  {n / tb:>8.0f} ({tb:5.1f})  "
                      f"{n / tc:>8.0f} ({tc:5.1f})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
