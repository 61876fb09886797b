"""The worker's HTTP endpoints on ``COLLECTIONS_METRICS_BIND``: ``/metrics``,
``/healthz`` and ``/readyz`` (what they answer: :mod:`support.metrics`).

Served by Uvicorn inside the worker's event loop; the worker keeps its own
SIGINT/SIGTERM handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from support.metrics import REGISTRY, parse_bind

PROBE_TIMEOUT_SECONDS = 3.0


# ---------------------------------------------------------------- what a scrape and a probe read

async def _database_gauges(engine: AsyncEngine) -> list[GaugeMetricFamily]:
    cases = GaugeMetricFamily("collections_open_cases", "Open cases by stage (database)", labels=["stage"])
    items = GaugeMetricFamily("collections_open_work_items", "Work items waiting for people, by kind and status "
                              "(database)", labels=["kind", "status"])
    async with engine.connect() as conn:
        for stage, n in await conn.execute(text(
                "SELECT stage, count(*) FROM cases WHERE closed_reason IS NULL GROUP BY stage")):
            cases.add_metric([stage], n)
        for kind, status, n in await conn.execute(text(
                "SELECT kind, status, count(*) FROM work_items WHERE status IN ('open', 'claimed') "
                "GROUP BY kind, status")):
            items.add_metric([kind, status], n)
    return [cases, items]


class _Families:
    """A collector handing out families read beforehand (the database's, at this scrape)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


def _first_line(e: BaseException) -> str:
    shown = str(getattr(e, "orig", None) or e).strip()
    return shown.splitlines()[0] if shown else type(e).__name__


class Probe:
    """What ``/metrics`` and ``/readyz`` read: the SDK's page, the database, Temporal."""

    def __init__(self, database_url: str, client: Client | None, sdk_address: str | None) -> None:
        # A connection of its own each time (no pool): a database gone is seen at once.
        # A SQLite file is opened only if it exists: a probe never creates an empty one.
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            url = url.set(database=f"file:{url.database}?mode=rw", query={"uri": "true"})
        self.engine = create_async_engine(url, poolclass=NullPool)
        self.client = client
        self.sdk_address = sdk_address

    async def sdk_text(self) -> bytes:
        if self.sdk_address is None:
            return b""
        def fetch() -> bytes:
            with urllib.request.urlopen(f"http://{self.sdk_address}/metrics", timeout=PROBE_TIMEOUT_SECONDS) as r:
                return r.read()
        try:
            page = await asyncio.to_thread(fetch)
            return page if page.endswith(b"\n") or not page else page + b"\n"
        except OSError as e:
            return f"# the Temporal SDK's metrics are not available: {_first_line(e)}\n".encode()

    async def product_text(self) -> bytes:
        registry = CollectorRegistry()
        try:
            families = await asyncio.wait_for(_database_gauges(self.engine), PROBE_TIMEOUT_SECONDS)
        except Exception as e:  # a scrape never fails for the database: the counters are still worth having
            gauges = f"# the database gauges are not available: {_first_line(e)}\n".encode()
        else:
            registry.register(_Families(families))
            gauges = generate_latest(registry)
        return generate_latest(REGISTRY) + gauges

    async def problems(self) -> list[str]:
        """Why the worker is not ready ([] = ready): Temporal and the database, each within a bound."""
        found = []
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.workflow_service.get_system_info(
                    GetSystemInfoRequest(), timeout=timedelta(seconds=PROBE_TIMEOUT_SECONDS)), PROBE_TIMEOUT_SECONDS + 1)
            except Exception as e:
                found.append(f"temporal: {_first_line(e)}")
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT count(*) FROM alembic_version"))
        except Exception as e:
            found.append(f"database: {_first_line(e)}")
        return found


def app_for(probe: Probe) -> Starlette:
    async def metrics(request: Request) -> Response:
        body = await probe.sdk_text() + await probe.product_text()
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        problems = await probe.problems()
        if problems:
            return PlainTextResponse("not ready\n" + "".join(f"{p}\n" for p in problems), status_code=503)
        return PlainTextResponse("ready\n")

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz)])


class _Server(uvicorn.Server):
    """Uvicorn inside the worker's loop: the worker owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@contextlib.asynccontextmanager
async def serving(bind: str | None, *, database_url: str, client: Client | None = None,
                  sdk_address: str | None = None) -> AsyncIterator[None]:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``bind`` while the block
    runs (nothing when ``bind`` is None). A port that cannot be bound is an
    OSError here, before the block runs."""
    if bind is None:
        yield
        return
    host, port = parse_bind(bind)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    probe = Probe(database_url, client, sdk_address)
    server = _Server(uvicorn.Config(app_for(probe), log_config=None, log_level="warning", access_log=False,
                                    lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # it failed to start: say why
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()
        await probe.engine.dispose()
