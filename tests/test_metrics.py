"""The worker's metrics and health endpoints (COLLECTIONS_METRICS_BIND): a
real `python worker.py` on the test server, scraped like Prometheus would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from db.models import Case, ContactAttempt
from support.settings import SettingsError, load_settings
from tests import helpers
from tests.helpers import default_event, start_case, uid

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daytime_zone(now: datetime) -> str:
    """A fixed-offset zone in which it is about noon at ``now`` (UTC)."""
    offset = (12 - now.hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def worker_process(env, database_url: str, task_queue: str, bind: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
             "TEMPORAL_NAMESPACE": env.client.namespace, "DATABASE_URL": database_url,
             "COLLECTIONS_TASK_QUEUE": task_queue, "COLLECTIONS_METRICS_BIND": bind, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen]]:
    """Worker processes to stop (SIGTERM, then SIGKILL) after the test."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def samples(page: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, for every sample of a Prometheus page."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(page) for s in family.samples}


until = partial(helpers.until, seconds=60.0)  # a worker process starting under load: a minute

async def test_the_worker_serves_sdk_and_product_metrics_healthz_and_readyz(env, db, task_queue, stopped):
    bind = f"127.0.0.1:{free_port()}"
    proc = worker_process(env, db.url, task_queue, bind)
    stopped.append(proc)
    base = f"http://{bind}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        async def up():
            assert proc.poll() is None, proc.stderr.read()
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False
        await until(up, "the worker answering /healthz")
        assert (await http.get("/readyz")).status_code == 200

        # Four accounts of one debtor who answers and pays on the voice call:
        # three calls connect and close their cases paid, the fourth is capped.
        now = await env.get_current_time()
        tz, debtor = daytime_zone(now), f"D-{uid()}"
        for i in range(4):
            await start_case(env, task_queue, default_event(
                f"A-MET{i}-{uid()}", occurred_at=now, tz=tz, debtor_id=debtor,
                simulation={"answers": True, "pays_after": "voice"}))

        async def scraped():
            page = samples((await http.get("/metrics")).text)
            return page if page.get(("collections_contacts_refused_total", (("reason", "cap"),))) else None
        page = await until(scraped, "a contact refused by the cap, counted")

        async def closed():
            async with db.sessions() as s:
                n = await s.scalar(select(func.count()).select_from(Case).where(Case.closed_reason == "paid"))
            return n == 3
        await until(closed, "three cases closed paid")
        page = samples((await http.get("/metrics")).text)

        # The product's counters say what the database holds.
        async with db.sessions() as s:
            rows = (await s.execute(select(ContactAttempt.channel, ContactAttempt.outcome))).all()
        held = Counter((channel, outcome) for channel, outcome in rows)
        counted = {(dict(labels)["channel"], dict(labels)["outcome"]): value
                   for (name, labels), value in page.items() if name == "collections_contacts_total"}
        assert counted == held == {("voice", "answered"): 3}
        assert page[("collections_contacts_refused_total", (("reason", "cap"),))] == 1
        assert page[("collections_cases_opened_total", ())] == 4
        assert page[("collections_cases_closed_total", (("reason", "paid"),))] == 3
        open_cases = {dict(labels)["stage"]: value for (name, labels), value in page.items()
                      if name == "collections_open_cases"}
        assert sum(open_cases.values()) == 1  # the capped one, waiting for tomorrow
        assert page[("process_resident_memory_bytes", ())] > 0
        # The SDK's own metrics, from the worker's runtime: its activities and workflow tasks.
        sdk = {name for name, _ in page if name.startswith("temporal_")}
        assert "temporal_activity_execution_latency_seconds_count" in sdk
        assert "temporal_workflow_task_execution_latency_seconds_count" in sdk

        # The database goes away: not ready, and says why; still alive.
        gone = await remove_database(db.url)
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.text.startswith("not ready\ndatabase: ")
        assert "temporal" not in response.text
        assert gone is None or not gone.exists()  # the probe made no empty SQLite file in its place
        assert (await http.get("/healthz")).status_code == 200
        assert "collections_contacts_total" in (await http.get("/metrics")).text  # the counters still served


async def remove_database(url: str) -> Path | None:
    """Take the database away (a SQLite file moved: its path; a PostgreSQL database dropped)."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        path.rename(path.with_name("gone.db"))
        return path
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0].replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    return None


def test_a_bad_metrics_bind_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("COLLECTIONS_METRICS_BIND", "9464")
    with pytest.raises(SettingsError, match=r"^COLLECTIONS_METRICS_BIND='9464' is not accepted: must be HOST:PORT"):
        load_settings()
    monkeypatch.setenv("COLLECTIONS_METRICS_BIND", "")
    assert load_settings().metrics_bind is None  # empty: off, as unset


async def test_a_metrics_port_taken_stops_the_worker_with_one_line(env, sqlite_url, task_queue):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        proc = worker_process(env, sqlite_url, task_queue, bind)
        _, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == (f"worker.py: cannot serve COLLECTIONS_METRICS_BIND={bind}: "
                                             "Address already in use")
    assert "Traceback" not in err
