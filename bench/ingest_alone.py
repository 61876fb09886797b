"""Ingest alone against bare signal-with-starts, in alternating rounds on one dev server.

    .venv/bin/python bench/ingest_alone.py [N] [ROUNDS] [--before PATH]

Each round ingests N ``account.defaulted`` events through
``Ingestor.ingest_lines`` (concurrency 32, no worker polling, SQLite WAL),
as bench/vs_bare.py's ``ingest_side`` does, then makes N bare
signal-with-starts (concurrency 32) on the same server.  ``--before PATH``
loads a second intake module from PATH (e.g. an older intake/ingest.py from
``git show``) and runs it in every round too, so before and after are
measured in the same minute under the same load.  Prints events/s per round
and each round's ratio to bare with their median (the ratio
within a round is steadier than the rates on a shared machine); nothing is
asserted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.common import default_events, dev_server_and_database  # noqa: E402
from db.session import IMMEDIATE, Database  # noqa: E402
from intake.ingest import Ingestor  # noqa: E402
from support.logs import configure_logging  # noqa: E402
from support.settings import load_settings  # noqa: E402

CONCURRENCY = 32


def ingestor_from(path: str) -> type:
    spec = importlib.util.spec_from_file_location("intake_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.Ingestor


BEGUN = {"write": 0, "read": 0}  # transactions begun on the intake's database
STARTING = {"now": 0, "area": 0.0, "since": 0.0}  # start_workflow calls under way, integrated over time


def count_starts(client) -> None:
    """Wrap the client's start_workflow to integrate how many calls are under way."""
    start = client.start_workflow

    def tick(delta: int) -> None:
        now = time.perf_counter()
        STARTING["area"] += STARTING["now"] * (now - STARTING["since"])
        STARTING["now"], STARTING["since"] = STARTING["now"] + delta, now

    async def counted(*args, **kw):
        tick(1)
        try:
            return await start(*args, **kw)
        finally:
            tick(-1)
    client.start_workflow = counted


def under_way(since: float, area: float) -> float:
    """Mean start_workflow calls under way since ``since`` (area then ``area``)."""
    return (STARTING["area"] - area) / (time.perf_counter() - since)


def count_transactions(db: Database) -> None:
    """Count every transaction begun in this process: through aiosqlite and
    Database.run's plain sqlite3 engine alike (listened on the Engine class, once)."""
    if not BEGUN.get("listening"):
        BEGUN["listening"] = 1

        @event.listens_for(Engine, "begin")
        def _begun(conn) -> None:
            BEGUN["write" if conn.get_execution_options().get(IMMEDIATE, False) else "read"] += 1


async def intake_rate(cls: type, env, db: Database, settings, n: int, prefix: str) -> tuple[float, float, dict]:
    """(events/s, CPU ms of this process an event, {transactions an event, start_workflow calls under way})."""
    lines = default_events(n, datetime.now(timezone.utc), prefix=prefix)
    begun, area = dict(BEGUN), STARTING["area"]
    t0, c0 = time.perf_counter(), time.process_time()
    report = await cls(env.client, db, settings).ingest_lines(lines, source="bench", concurrency=CONCURRENCY)
    rate, cpu = n / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / n
    assert report.accepted == n, report.rejects[:3]
    return rate, cpu, {**{k: (BEGUN[k] - begun[k]) / n for k in ("write", "read")}, "starting": under_way(t0, area)}


async def bare_rate(env, n: int, prefix: str) -> tuple[float, float, float]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(k: int) -> None:
        async with gate:
            await env.client.start_workflow("BareCase", f"S-{k}", id=f"{prefix}-sws-{k}", task_queue="nobody",
                                            start_signal="event", start_signal_args=[{"k": k}])
    t0, c0, area = time.perf_counter(), time.process_time(), STARTING["area"]
    await asyncio.gather(*(one(k) for k in range(n)))
    return n / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / n, under_way(t0, area)


async def main(n: int, rounds: int, before: str | None) -> None:
    configure_logging("WARNING")
    sides = {"after": Ingestor} | ({"before": ingestor_from(before)} if before else {})
    figures: dict[str, list[float]] = {name: [] for name in [*sides, "bare"]}
    cpu: dict[str, list[float]] = {name: [] for name in figures}
    begun: dict[str, list[dict]] = {name: [] for name in sides}
    starting: list[float] = []  # the bare side's start_workflow calls under way
    with tempfile.TemporaryDirectory() as tmp:
        async with dev_server_and_database(tmp) as (env, url):
            settings = load_settings(database_url=url, task_queue="nobody", temporal_address="localhost:1")
            async with Database(url) as db:
                count_transactions(db)
                count_starts(env.client)
                await intake_rate(Ingestor, env, db, settings, 50, "warm")  # imports, pools, first connections
                await bare_rate(env, 50, "warm")
                for r in range(rounds):
                    order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                    for name in order:
                        rate, ms, counts = await intake_rate(sides[name], env, db, settings, n, f"{name}{r}")
                        figures[name].append(rate)
                        cpu[name].append(ms)
                        begun[name].append(counts)
                    rate, ms, calls = await bare_rate(env, n, f"r{r}")
                    figures["bare"].append(rate)
                    cpu["bare"].append(ms)
                    starting.append(calls)
                    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in figures.items()),
                          flush=True)
    bare = statistics.median(figures["bare"])
    print(f"{n} default events a round, {rounds} rounds, concurrency {CONCURRENCY}, no worker (SQLite, WAL)")
    for name in sides:
        rate = statistics.median(figures[name])
        ratios = [x / y for x, y in zip(figures[name], figures["bare"])]
        print(f"  ingest ({name}): median {rate:.1f} events/s against bare {bare:.1f}/s; the round's ratio: "
              f"median {statistics.median(ratios):.2f}x (rounds {', '.join(f'{r:.2f}' for r in ratios)})")
        counts = {k: statistics.median(c[k] for c in begun[name]) for k in begun[name][0]}
        print(f"    {statistics.median(cpu[name]):.2f} ms of this process's CPU an event (bare "
              f"{statistics.median(cpu['bare']):.2f}); transactions an event: {counts['write']:.2f} writing, "
              f"{counts['read']:.2f} reading; start_workflow calls under way: {counts['starting']:.1f} "
              f"(bare {statistics.median(starting):.1f} of {CONCURRENCY})")


if __name__ == "__main__":
    args = sys.argv[1:]
    before_path = None
    if "--before" in args:
        i = args.index("--before")
        before_path = args[i + 1]
        del args[i:i + 2]
    asyncio.run(main(int(args[0]) if args else 500, int(args[1]) if len(args) > 1 else 3, before_path))
