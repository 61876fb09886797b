"""Benchmark: how long an ingest takes to say that Temporal went away mid-file.

    .venv/bin/python bench/ingest_outage.py [N]      (default 300 lines)

A dev server of its own (the ``temporal`` binary) and a fresh SQLite
database, no worker.  The ingest (parallelism 16, COLLECTIONS_TEMPORAL_TIMEOUT
at its default, 10 s) is cut after 20 lines by stopping the server; printed:
the seconds from the stop to the ingest's report of it, and, side by side,
the seconds bare Temporal (a client with the SDK's default retries) takes to
fail one start_workflow call on a stopped server.  Before issue 11 the
ingest retried every remaining line in turn (2 minutes for 300 lines).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from bench.common import default_events  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.session import Database  # noqa: E402
from intake.faults import IngestStopped  # noqa: E402
from intake.ingest import Ingestor  # noqa: E402
from support.logs import configure_logging  # noqa: E402
from support.settings import load_settings  # noqa: E402
from support.temporal import connect, register_search_attributes  # noqa: E402

CUT_AFTER = 20


def start_server(port: int, tmp: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--db-filename", f"{tmp}/temporal.db"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def connected(address: str) -> Client:
    for _ in range(300):
        try:
            return await Client.connect(address)
        except RuntimeError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"no dev server at {address}")


async def main(n: int) -> None:
    configure_logging("ERROR")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade(url)
        server = start_server(port, tmp)
        bare = await connected(address)
        await register_search_attributes(bare)
        settings = load_settings(database_url=url, task_queue="bench-no-worker", temporal_address=address)
        client = await connect(settings)
        cut_at: list[float] = []

        def cut(report) -> None:
            if report.processed == CUT_AFTER and not cut_at:
                server.terminate()
                server.wait()
                cut_at.append(time.perf_counter())

        lines = default_events(n, datetime.now(timezone.utc), prefix=f"O{port}")
        async with Database(url) as db:
            try:
                await Ingestor(client, db, settings).ingest_lines(lines, source="bench", progress=cut)
                raise SystemExit("the ingest finished before the cut: use more lines")
            except IngestStopped as stop:
                ingest_s = time.perf_counter() - cut_at[0]
                done = stop.report.processed
        t0 = time.perf_counter()
        try:
            await bare.start_workflow("Bare", id="bare-after-stop", task_queue="bare")
        except Exception:
            pass
        bare_s = time.perf_counter() - t0
    print(f"{n} lines, Temporal stopped after {CUT_AFTER}; seconds from the stop to the report")
    print(f"{'ingest (stopped, ' + str(done) + ' lines done)':>36}  {ingest_s:6.1f}")
    print(f"{'bare: one start_workflow fails':>36}  {bare_s:6.1f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
