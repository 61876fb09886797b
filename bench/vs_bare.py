"""The product beside bare Temporal, on one dev server in one run.

    .venv/bin/python bench/vs_bare.py [N]      (default 1000; `make bench-vs-bare`)

For N cases each side, with its worker in a process of its own:

- opening: N cases started until each has run as many activities as a case
  runs to its day-0 call (CASE_STEPS, two: open_case and contact_debtor) —
  for the product, N ``account.defaulted`` events ingested until N day-0 calls
  are in ``contact_attempts``; for bare Temporal, N workflows of four no-op
  activities started until N second activities ran (and, beside it, until N
  first activities ran);
- CPU per case opened, by process (the dev server, the worker, the intake or
  the bare starter): milliseconds of CPU over the same span, a figure the
  machine's load hardly moves, unlike the rates;
- memory: the worker's resident memory with those N cases parked in its
  cache, per case, after the memory it had with 20 warm-up cases (its
  one-time set-up: imports, pools, caches) is taken off;
- ingest alone (no worker polling): N default events through the intake
  against N bare signal-with-starts.

Prints both figures and the ratio; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import default_events, dev_server_and_database, wait_until  # noqa: E402
from db.models import ContactAttempt  # noqa: E402
from db.session import Database  # noqa: E402
from intake.ingest import Ingestor  # noqa: E402
from support.logs import configure_logging  # noqa: E402
from support.settings import load_settings  # noqa: E402

DAYTIME_ZONES = ("Asia/Shanghai", "Europe/London", "America/New_York", "America/Los_Angeles", "Pacific/Auckland")


# Cases each side opens before measuring: the first ones pay for what a worker
# sets up once (imports, connection pools, caches), not a per-case cost.
WARM_UP = 20


def daytime_zone(now: datetime) -> str:
    """A zone where it is working hours now, so the day-0 call goes out at once."""
    return next((z for z in DAYTIME_ZONES if 9 <= now.astimezone(ZoneInfo(z)).hour < 19), "Asia/Shanghai")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


class CpuMeter:
    """CPU milliseconds per case spent by the dev server, the worker and this
    process (the intake, or the bare starter) between ``start`` and ``stop``:
    a figure the machine's load hardly moves, unlike a rate."""

    def __init__(self, worker_pid: int) -> None:
        server = [p for p in children(os.getpid()) if p != worker_pid]  # the dev server
        self.pids = {"server": server, "worker": [worker_pid], "client": [os.getpid()]}
        self.begin = self.end = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}

    def start(self) -> None:
        self.begin = self._now()

    def stop(self) -> None:
        self.end = self._now()

    def per_case(self, n: int) -> dict[str, float]:
        return {name: 1000 * (self.end[name] - self.begin[name]) / n for name in self.pids}


def start_worker(args: list[str], env: dict[str, str], ready: str, log: Path) -> subprocess.Popen:
    out = log.open("w")
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while ready not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # never left behind, polling a task queue
            raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    time.sleep(1.0)  # settle: first polls, imports done
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def bare_side(env, tmp: Path, n: int, steps: int) -> tuple[float, float, float]:
    """(cases/s to the first activity, cases/s to the ``steps``-th, KiB per parked case) for bare Temporal."""
    marks = tmp / "bare.marks"
    marks.touch()
    target = env.client.service_client.config.target_host
    proc = start_worker(["bench/bare.py", target, env.client.namespace, "bare"], {"BARE_MARK_FILE": str(marks)},
                        "ready", tmp / "bare-worker.log")
    try:
        await asyncio.gather(*(env.client.start_workflow("BareCase", f"W-{k}", id=f"bare-warm-{k}", task_queue="bare")
                               for k in range(WARM_UP)))

        def ran(step: int, count: int):
            async def check() -> bool:
                return marks.read_text().split().count(str(step)) >= count
            return check
        await wait_until(ran(steps - 1, WARM_UP))
        await asyncio.sleep(5)
        before = rss_kib(proc.pid)
        meter = CpuMeter(proc.pid)
        meter.start()
        t0 = time.perf_counter()
        for i in range(0, n, 50):
            await asyncio.gather(*(env.client.start_workflow("BareCase", f"B-{k}", id=f"bare-{k}", task_queue="bare")
                                   for k in range(i, min(i + 50, n))))
        await wait_until(ran(0, WARM_UP + n))
        first = time.perf_counter() - t0
        await wait_until(ran(steps - 1, WARM_UP + n))
        same = time.perf_counter() - t0
        meter.stop()
        CPU["bare"] = meter.per_case(n)
        await asyncio.sleep(5)  # the other activities, then parked
        return n / first, n / same, (rss_kib(proc.pid) - before) / n
    finally:
        stop(proc)


async def project_side(env, url: str, tmp: Path, n: int) -> tuple[float, float]:
    """(cases opened per second, KiB per parked case) for the product."""
    target = env.client.service_client.config.target_host
    worker_env = {"TEMPORAL_ADDRESS": target, "TEMPORAL_NAMESPACE": env.client.namespace, "DATABASE_URL": url,
                  "COLLECTIONS_TASK_QUEUE": "project", "LOG_LEVEL": "INFO"}
    proc = start_worker(["worker.py"], worker_env, "worker started", tmp / "project-worker.log")
    try:
        settings = load_settings(database_url=url, task_queue="project", temporal_address=target)
        async with Database(url) as db:
            now = datetime.now(timezone.utc)
            ingestor = Ingestor(env.client, db, settings)

            async def called(count: int):
                async def check() -> bool:
                    async with db.sessions() as s:
                        return await s.scalar(select(func.count()).select_from(ContactAttempt)) >= count
                return check
            warm = await ingestor.ingest_lines(default_events(WARM_UP, now, prefix="W", tz=daytime_zone(now)),
                                               source="bench", concurrency=32)
            assert warm.accepted == WARM_UP, warm.rejects[:3]
            await wait_until(await called(WARM_UP))
            await asyncio.sleep(5)
            before = rss_kib(proc.pid)
            meter = CpuMeter(proc.pid)
            meter.start()
            t0 = time.perf_counter()
            report = await ingestor.ingest_lines(
                default_events(n, now, prefix="P", tz=daytime_zone(now)), source="bench", concurrency=32)
            assert report.accepted == n, report.rejects[:3]
            await wait_until(await called(WARM_UP + n))
            opened = time.perf_counter() - t0
            meter.stop()
            CPU["product"] = meter.per_case(n)
        await asyncio.sleep(5)  # recorded and parked until day 3
        return n / opened, (rss_kib(proc.pid) - before) / n
    finally:
        stop(proc)


async def ingest_side(env, url: str, n: int) -> tuple[float, float]:
    """(project events/s, bare signal-with-starts/s) with no worker polling."""
    settings = load_settings(database_url=url, task_queue="nobody", temporal_address="localhost:1")
    async with Database(url) as db:
        t0 = time.perf_counter()
        report = await Ingestor(env.client, db, settings).ingest_lines(
            default_events(n, datetime.now(timezone.utc), prefix="I"), source="bench", concurrency=32)
        project = n / (time.perf_counter() - t0)
    assert report.accepted == n
    gate = asyncio.Semaphore(32)

    async def one(k: int) -> None:
        async with gate:
            await env.client.start_workflow("BareCase", f"S-{k}", id=f"sws-{k}", task_queue="nobody",
                                            start_signal="event", start_signal_args=[{"k": k}])
    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(n)))
    return project, n / (time.perf_counter() - t0)


CPU: dict[str, dict[str, float]] = {}  # side -> process -> CPU ms per case opened

# Activities a case runs from its default event to its day-0 call recorded
# (open_case, contact_debtor; before open-in-one-v1 also record_case): the bare
# side runs as many before it is counted, "the same number of activities".
CASE_STEPS = int(os.environ.get("CASE_STEPS", "2"))


async def main(n: int) -> None:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        async with dev_server_and_database(tmp_name) as (env, url):
            bare_first, bare_rate, bare_mem = await bare_side(env, tmp, n, CASE_STEPS)
            project_rate, project_mem = await project_side(env, url, tmp, n)
            ingest_rate, sws_rate = await ingest_side(env, url, n)
    print(f"{n} cases a side, one dev server (SQLite, WAL), workers in processes of their own")
    print(f"{'':44}{'product':>10}{'bare':>10}{'ratio':>8}")
    print(f"{f'opening (cases/s, {CASE_STEPS} activities done)':44}{project_rate:>10.1f}{bare_rate:>10.1f}"
          f"{project_rate / bare_rate:>8.2f}")
    print(f"{'  bare to its first activity only':44}{'':>10}{bare_first:>10.1f}{project_rate / bare_first:>8.2f}")
    print(f"{'worker memory per parked case (KiB)':44}{project_mem:>10.0f}{bare_mem:>10.0f}"
          f"{project_mem / bare_mem:>8.2f}")
    for process in ("server", "worker", "client"):
        label = f"  CPU ms a case opened: {'intake' if process == 'client' else process}"
        print(f"{label:44}{CPU['product'][process]:>10.1f}{CPU['bare'][process]:>10.1f}"
              f"{CPU['product'][process] / max(CPU['bare'][process], 0.01):>8.2f}")
    print(f"{'ingest alone (events/s)':44}{ingest_rate:>10.1f}{sws_rate:>10.1f}{ingest_rate / sws_rate:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
