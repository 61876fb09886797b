"""An event is either applied or rejected, always (issue 11).

Every line of a file ends accepted, duplicate or rejected with its reason;
a fault on one line (Temporal refusing it, an unexpected error) is that
line's rejection and the file goes on.  An outage (Temporal stopped, the
database gone) stops the file with one line, the counts so far and exit 1,
stdout stays parseable with ``--json`` (the SDK's own log lines never reach
it), and running the same file again completes it.

These tests run against a dev server of their own (the ``temporal`` binary),
which they stop and start again; it refuses workflow ids longer than
:data:`MAX_ID` (Temporal's ``limit.maxIDLength``), which is how a real
Temporal refuses one line that the intake's validation lets through.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.engine import make_url
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

import cli.ingest as cli_ingest
from cli.main import main
from db.models import IngestedEvent, RejectedEvent
from db.session import Database
from intake.events import canonical
from intake.ingest import Ingestor
from support.temporal import register_search_attributes
from tests.helpers import default_event, settings_for, uid
from workflows.model import case_workflow_id

MAX_ID = 40  # the dev server's limit on workflow ids here: case-<account> longer than this is refused
LONG_ACCOUNT = "ACC-" + "L" * 50  # valid for the intake (64), too long for this server's workflow ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevServer:
    """A Temporal dev server on a fixed port and a file of its own, so it can
    be stopped mid-ingest and started again with its workflows."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.file = directory / "temporal.db"
        self.proc: subprocess.Popen | None = None
        self.client: Client | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--db-filename", str(self.file),
             "--dynamic-config-value", f"limit.maxIDLength={MAX_ID}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                self.client = await Client.connect(self.address)
                break
            except RuntimeError:
                await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"the dev server did not start on {self.address}")
        await register_search_attributes(self.client)

    def stop(self) -> None:
        """Synchronous, so a test can stop it from inside the ingest's progress callback."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

    async def running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            await self.start()

    async def status(self, account: str) -> WorkflowExecutionStatus | None:
        try:
            return (await self.client.get_workflow_handle(case_workflow_id(account)).describe()).status
        except RPCError:
            return None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory) -> AsyncIterator[DevServer]:
    dev = DevServer(tmp_path_factory.mktemp("temporal"))
    await dev.start()
    try:
        yield dev
    finally:
        dev.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def temporal(server: DevServer) -> DevServer:
    """The module's dev server, running (a test before may have stopped it)."""
    await server.running()
    return server


def now() -> datetime:
    return datetime.now(timezone.utc)


def payment(account: str, amount: str = "10.00") -> dict:
    return {"event_id": f"ev-{uid()}", "type": "payment.received", "occurred_at": now().isoformat(),
            "account_id": account, "payment_id": f"P-{uid()}", "amount": amount}


def write(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def cli_env(monkeypatch, temporal: DevServer, database_url: str, task_queue: str, *, timeout: int = 10) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal.address)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("COLLECTIONS_TASK_QUEUE", task_queue)
    monkeypatch.setenv("COLLECTIONS_TEMPORAL_TIMEOUT", str(timeout))  # how long an unreachable Temporal is tried


def fault_after(monkeypatch, lines: int, fault: Callable[[], None]) -> None:
    """The CLI's ingest runs ``fault`` once ``lines`` lines are done (from its
    progress callback: deterministic, mid-file)."""

    class Faulty(Ingestor):
        async def ingest_lines(self, lines_in, **kw):
            shown = kw.get("progress")

            def tap(report):
                if report.processed == lines:
                    fault()
                if shown is not None:
                    shown(report)

            return await super().ingest_lines(lines_in, **{**kw, "progress": tap})

    monkeypatch.setattr(cli_ingest, "Ingestor", Faulty)


async def rows(db: Database) -> dict[str, IngestedEvent]:
    async with db.sessions() as s:
        return {r.event_id: r for r in (await s.scalars(select(IngestedEvent))).all()}


async def rejected(db: Database) -> list[RejectedEvent]:
    async with db.sessions() as s:
        return list((await s.scalars(select(RejectedEvent).order_by(RejectedEvent.line_no))).all())


# -- a line Temporal refuses ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5, 120], ids=["small-file", "large-file"])
async def test_a_line_temporal_refuses_is_rejected_with_its_reason_and_the_file_goes_on(
        size, temporal, db, task_queue, tmp_path, monkeypatch, capfd):
    """Today: a small file prints a traceback and loses every line after the
    refused one; a large file loses the line and exits 0."""
    cli_env(monkeypatch, temporal, db.url, task_queue)
    accounts = [f"ACC-{uid()}" for _ in range(size - 1)]
    events = [default_event(a, occurred_at=now()) for a in accounts]
    refused = default_event(LONG_ACCOUNT + uid()[:4], occurred_at=now())
    events.insert(2, refused)  # line 3
    path = write(tmp_path / "events.jsonl", events)

    assert await main(["ingest", str(path), "--json"]) == 1
    out, err = capfd.readouterr()
    report = json.loads(out)
    assert (report["accepted"], report["duplicate"], report["rejected"]) == (size - 1, 0, 1), (report, err)
    [(line, reason)] = [(r["line"], r["reason"]) for r in report["rejects"]]
    assert line == 3 and "Temporal refused" in reason and "WorkflowId exceeds maximum allowed length" in reason
    assert "Traceback" not in err
    # the tables say the same: no ingested row for the refused event, its rejection with the reason
    kept = await rows(db)
    assert refused["event_id"] not in kept and len(kept) == size - 1
    assert {r.status for r in kept.values()} == {"dispatched"}
    assert [(r.line_no, r.event_id, r.reason) for r in await rejected(db)] == [(3, refused["event_id"], reason)]
    for a in (accounts[0], accounts[-1]):
        assert await temporal.status(a) == WorkflowExecutionStatus.RUNNING


async def test_an_event_for_the_refused_account_is_rejected_too_never_a_late_payment(temporal, db, task_queue):
    refused = default_event(LONG_ACCOUNT + uid()[:4], occurred_at=now())
    later = payment(refused["account_id"])
    report = await Ingestor(temporal.client, db, settings_for(db, task_queue)).ingest_lines(
        [json.dumps(refused), json.dumps(later)], source="t")
    assert (report.accepted, report.rejected) == (0, 2)
    assert "Temporal refused" in report.rejects[0][1]
    assert report.rejects[1] == (2, f"unknown account {refused['account_id']}: no account.defaulted event for it")


async def test_an_unexpected_error_on_one_line_is_that_lines_rejection(temporal, db, task_queue):
    bad = f"ACC-{uid()}"

    class Broken(Ingestor):
        async def _dispatch(self, ev, line):
            if getattr(ev, "account_id", None) == bad:
                raise ValueError("the adapter could not read this one")
            return await super()._dispatch(ev, line)

    good = [f"ACC-{uid()}" for _ in range(3)]
    lines = [json.dumps(default_event(a, occurred_at=now())) for a in (good[0], bad, *good[1:])]
    report = await Broken(temporal.client, db, settings_for(db, task_queue)).ingest_lines(lines, source="t")
    assert (report.accepted, report.rejected) == (3, 1)
    assert report.rejects == [(2, "could not be handled: ValueError: the adapter could not read this one")]
    assert len(await rejected(db)) == 1


# -- a default whose case already exists in the namespace --------------------------------------------------


async def test_a_default_whose_case_runs_in_the_namespace_but_not_in_this_database_is_rejected(
        temporal, db, task_queue):
    """A fresh database on an old namespace. Today: reported 'dispatched',
    and the case has no row here."""
    acct = f"ACC-{uid()}"
    await temporal.client.start_workflow("DelinquentAccountWorkflow", id=case_workflow_id(acct),
                                         task_queue=task_queue)  # from another database, long ago
    default = default_event(acct, occurred_at=now())
    report = await Ingestor(temporal.client, db, settings_for(db, task_queue)).ingest_lines(
        [json.dumps(default), json.dumps(payment(acct))], source="t")
    assert (report.accepted, report.rejected) == (0, 2)
    assert report.rejects[0] == (1, f"a case for {acct} already runs in the Temporal namespace default "
                                    f"(workflow {case_workflow_id(acct)}) but is not in this database")
    assert report.rejects[1] == (2, f"unknown account {acct}: no account.defaulted event for it")
    assert await rows(db) == {}


async def test_a_default_left_pending_by_an_interrupted_run_is_dispatched_not_rejected(temporal, db, task_queue):
    """The earlier run recorded the event and started its case, then died
    before marking the row: running the file again completes it."""
    acct = f"ACC-{uid()}"
    line = json.dumps(default_event(acct, occurred_at=now()))
    ingest = Ingestor(temporal.client, db, settings_for(db, task_queue))
    await ingest.ingest_lines([line], source="t")
    async with db.transaction() as s:  # as if the run had died before marking it
        row = await s.get(IngestedEvent, json.loads(line)["event_id"])
        row.status = "pending"
    report = await ingest.ingest_lines([line], source="t")
    assert (report.accepted, report.duplicate, report.rejected) == (1, 0, 0), report.rejects
    assert (await rows(db))[json.loads(line)["event_id"]].status == "dispatched"
    assert canonical(line) == (await rows(db))[json.loads(line)["event_id"]].payload


# -- Temporal stopped mid-file -----------------------------------------------------------------------------


def _one_stop_line(err: str, starts: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(starts), lines[0]
    assert "re-run the same file to finish" in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("parallel", [1, 16])
async def test_temporal_stopped_mid_file_stops_it_cleanly_and_a_rerun_completes_it(
        parallel, temporal, db, task_queue, tmp_path, monkeypatch, capfd):
    """Today: minutes of retries, the Rust core's WARN lines on stdout (so
    --json is not JSON), then a one-line error without the counts."""
    cli_env(monkeypatch, temporal, db.url, task_queue, timeout=5)
    n = 6 if parallel == 1 else 100
    accounts = [f"ACC-{uid()}" for _ in range(n)]
    events = [default_event(a, occurred_at=now()) for a in accounts] + [payment(a) for a in accounts]
    path = write(tmp_path / "events.jsonl", events)
    fault_after(monkeypatch, 4, temporal.stop)

    assert await main(["ingest", str(path), "--json", "--concurrency", str(parallel)]) == 1
    out, err = capfd.readouterr()
    first = json.loads(out)  # nothing but the report on stdout
    stop = _one_stop_line(err, f"Temporal unreachable at {temporal.address}: ")
    assert first["stopped"]["line"] in range(1, 2 * n + 1) and first["stopped"]["reason"] == stop
    assert 4 <= first["accepted"] < 2 * n and first["rejected"] == 0
    assert f"{first['accepted']} accepted, 0 duplicate, 0 rejected" in stop
    if parallel == 1:  # exactly: four lines done, the fifth recorded but never dispatched
        assert (first["accepted"], first["stopped"]["line"]) == (4, 5)
        assert (await rows(db))[events[4]["event_id"]].status == "pending"

    await temporal.start()  # Temporal is back: the same file again finishes it
    monkeypatch.setattr(cli_ingest, "Ingestor", Ingestor)
    code = await main(["ingest", str(path), "--json", "--concurrency", str(parallel)])
    out, err = capfd.readouterr()
    assert code == 0, err
    again = json.loads(out)
    assert (again["accepted"] + again["duplicate"], again["rejected"]) == (2 * n, 0)
    # a line whose end the outage hid (done, but not counted) is a duplicate now
    assert again["duplicate"] >= first["accepted"] and "stopped" not in again
    assert {r.status for r in (await rows(db)).values()} == {"dispatched"} and len(await rows(db)) == 2 * n
    for a in accounts:
        assert await temporal.status(a) == WorkflowExecutionStatus.RUNNING


async def test_the_counts_so_far_are_said_in_words_without_json(temporal, db, task_queue, tmp_path, monkeypatch,
                                                                capfd):
    cli_env(monkeypatch, temporal, db.url, task_queue, timeout=5)
    events = [default_event(f"ACC-{uid()}", occurred_at=now()) for _ in range(4)]
    events.insert(1, {"event_id": "broken"})
    path = write(tmp_path / "events.jsonl", events)
    fault_after(monkeypatch, 2, temporal.stop)
    assert await main(["ingest", str(path), "--concurrency", "1"]) == 1
    out, err = capfd.readouterr()
    assert out == ""
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines[0] == "  line 2: missing field type"
    assert lines[-1] == (f"Temporal unreachable at {temporal.address}: tcp connect error — stopped at line 3 after "
                         "1 accepted, 0 duplicate, 1 rejected; re-run the same file to finish")


# -- the database gone mid-file ----------------------------------------------------------------------------


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (connections and listener) and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.listen = host, port, _free_port()
        self.server: asyncio.Server | None = None
        self.open: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.open += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.server.close()
        for w in self.open:
            w.transport.abort()
        self.open.clear()


@pytest_asyncio.fixture(loop_scope="session")
async def outage(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, Callable[[], None], Callable]]:
    """(a URL of the test's database, cut it, restore it). SQLite: its
    directory moves away and back; PostgreSQL: through a proxy that is cut."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        home, away = tmp_path / "db", tmp_path / "db-away"
        home.mkdir()
        os.rename(url.database, home / "collections.db")
        moved = url.set(database=str(home / "collections.db")).render_as_string(hide_password=False)

        async def back_sqlite() -> None:
            os.rename(away, home)

        yield moved, lambda: os.rename(home, away), back_sqlite
        return
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through = url.set(host="127.0.0.1", port=proxy.listen).render_as_string(hide_password=False)
    yield through, proxy.cut, proxy.start
    proxy.cut()


async def test_the_database_gone_mid_file_stops_it_cleanly_and_a_rerun_completes_it(
        outage, temporal, task_queue, tmp_path, monkeypatch, capfd):
    url, cut, restore = outage
    cli_env(monkeypatch, temporal, url, task_queue)
    accounts = [f"ACC-{uid()}" for _ in range(60)]
    events = [default_event(a, occurred_at=now()) for a in accounts] + [payment(a) for a in accounts]
    path = write(tmp_path / "events.jsonl", events)
    fault_after(monkeypatch, 4, cut)

    assert await main(["ingest", str(path), "--json"]) == 1
    out, err = capfd.readouterr()
    first = json.loads(out)
    stop = _one_stop_line(err, "database unreachable (")
    assert first["stopped"]["reason"] == stop and first["rejected"] == 0 and 4 <= first["accepted"] < 120

    await restore()
    monkeypatch.setattr(cli_ingest, "Ingestor", Ingestor)
    code = await main(["ingest", str(path), "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    again = json.loads(out)
    assert (again["accepted"] + again["duplicate"], again["rejected"]) == (120, 0)
    assert again["duplicate"] >= first["accepted"]  # and lines the cut hid the end of
    async with Database(url) as db:
        kept = await rows(db)
        assert len(kept) == 120 and {r.status for r in kept.values()} == {"dispatched"}
    for a in accounts:
        assert await temporal.status(a) == WorkflowExecutionStatus.RUNNING
