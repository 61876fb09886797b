"""Run a collections worker: ``python worker.py``.

``build_worker`` is the embedding point for tests and other programs: it
returns a Worker with every workflow and activity registered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import sys

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.adapters import Adapters, load_adapters
from activities.case_activities import CaseActivities
from activities.desk_activities import DeskActivities
from activities.score_activities import ScoreActivities, ScoreModelError, load_model
from support.health import serving
from support.logs import configure_logging, get_logger, temporal_runtime
from support.metrics import sdk_bind
from db.session import Database
from workflows.case import DelinquentAccountWorkflow
from workflows.model import DEFAULT_TASK_QUEUE
from support.settings import Settings, SettingsError, load_settings
from support.temporal import connect
from workflows.rules import ContactRules


# Time zones are read-only data: the rules convert to debtor-local time
# inside the workflow, so the sandbox must hand out real ZoneInfo objects.
_RESTRICTIONS = dataclasses.replace(
    SandboxRestrictions.default,
    invalid_module_members=SandboxRestrictions.invalid_module_members_default.with_child_unrestricted(
        "zoneinfo", "ZoneInfo"
    ),
).with_passthrough_modules("zoneinfo")

# The full sandbox: each run executes the workflow's module afresh under the
# sandbox's restrictions, with the modules of workflows/ it names in a
# from-list (`from workflows import rules`), so their code fails its task if
# it reads the clock, draws a random number or does I/O.  The tests replay every recorded history in it
# (tests/test_durability.py): the guard on the workflow's code.
STRICT_RUNNER = SandboxedWorkflowRunner(restrictions=_RESTRICTIONS)

# The worker's: no sandbox.  The case's code is checked in the full sandbox
# above, by the tests; in the worker, the sandbox guarded nothing more once all
# of workflows/ was passed through (a passed-through module reads the real
# clock, so the guard applies only to code the sandbox imports itself), and it
# still cost every workflow task its import hooks and proxies: without it a
# case opened with 67 ms of worker CPU instead of 80 to 89, and 115 KiB a
# parked case instead of 123 to 135 (bench/vs_bare.py, docs/benchmarks.md).
# Loaded once per process, the case's module is shared by every case
# (deterministic by the house rules).
WORKFLOW_RUNNER = UnsandboxedWorkflowRunner()


# What a worker costs (docs/benchmarks.md, "The memory budget"): its resident
# memory once started (114 MiB, bench/hundred_k.py) with room for its
# activities' connections and buffers, and what each case in its cache adds
# (131-189 KiB parked after its day-0 call, Python and Core together,
# bench/vs_bare.py and bench/hundred_k.py) with room for its history to grow
# until it continues as new.
WORKER_BASE_MIB = 200
CASE_MEMORY_KIB = 256


def cached_cases(settings: Settings) -> int:
    """How many cases the worker keeps cached: COLLECTIONS_MAX_CACHED_CASES, or
    fewer, so that the cache stays inside COLLECTIONS_WORKER_MEMORY_MB however
    many cases are open (the others are replayed when they wake up)."""
    fits = (settings.worker_memory_mb - WORKER_BASE_MIB) * 1024 // CASE_MEMORY_KIB
    return max(1, min(settings.max_cached_cases, fits))


def build_worker(
    client: Client,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    database_url: str | None = None,
    settings: Settings | None = None,
    adapters: Adapters | None = None,
    contact_rules: ContactRules | None = None,
    score_model: dict | None = None,
    **worker_options,
) -> Worker:
    """A worker for the case workflow and its activities. ``settings`` defaults
    to the environment's; ``database_url``, ``adapters`` and ``contact_rules``
    override them (tests, embedders). ``score_model``: the recovery score
    model already loaded (else COLLECTIONS_SCORE_MODEL's, loaded here, once)."""
    settings = settings or load_settings()
    db = Database(database_url or settings.database_url)
    rules_ = contact_rules or settings.contact_rules
    activities = CaseActivities(db, adapters or load_adapters(settings.adapters), rules_)
    worker_options.setdefault("max_concurrent_activities", 50)
    # Cases live for months and wait most of the time: keep many cached (an
    # evicted case is replayed from its history on its next event), and run
    # few workflow tasks at once so each finishes well inside its timeout
    # when the CPU is busy (measured with bench/disaster_fanout.py).
    worker_options.setdefault("max_cached_workflows", cached_cases(settings))
    worker_options.setdefault("max_concurrent_workflow_tasks", 16)
    worker_options.setdefault("workflow_runner", WORKFLOW_RUNNER)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DelinquentAccountWorkflow],
        activities=activities.all() + DeskActivities(db, rules_).all() + ScoreActivities(
            db, score_model or (load_model(settings.score_model) if settings.score_model else None)).all(),
        **worker_options,
    )


class Unavailable(Exception):
    """Temporal, the database or the adapters cannot be had: one line for the operator."""


def _gist(e: BaseException) -> str:
    """``Connection refused`` rather than a driver's or Core's transport dump."""
    text = str(getattr(e, "orig", None) or e)
    quoted = re.search(r'message: "([^"]+)"', text)
    return quoted.group(1) if quoted else (text.splitlines()[0] if text else type(e).__name__)


async def _connect(settings: Settings, sdk_metrics: str | None = None) -> Client:
    try:
        return await connect(settings, runtime=temporal_runtime(sdk_metrics))
    except (RuntimeError, ValueError, OSError) as e:
        raise Unavailable(f"cannot reach Temporal at {settings.temporal_address}: {_gist(e)}") from None


async def _check_database(url: str) -> None:
    """Open the database and ask it one question before taking any work."""
    try:
        async with Database(url) as db, db.sessions() as s:
            await s.execute(text("SELECT 1"))
    except (DBAPIError, OSError, asyncio.TimeoutError) as e:
        shown = make_url(url).render_as_string(hide_password=True)
        raise Unavailable(f"cannot open the database {shown}: {_gist(e)}") from None


async def serve(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM."""
    # JSON lines on stderr, personal data masked: one line per step a case
    # takes; the SDK's and Core's own loggers only from WARNING up (no line per poll).
    configure_logging(settings.log_level or "INFO")
    log = get_logger(component="worker")
    score_model = load_model(settings.score_model) if settings.score_model else None  # once; wrong shape: exit 2
    await _check_database(settings.database_url)
    sdk_metrics = sdk_bind() if settings.metrics_bind else None  # the SDK's page, read by /metrics
    client = await _connect(settings, sdk_metrics)
    task_queue = settings.task_queue
    try:
        worker = build_worker(client, task_queue=task_queue, settings=settings, score_model=score_model)
    except (ImportError, AttributeError, TypeError) as e:
        raise Unavailable(f"cannot load the adapters COLLECTIONS_ADAPTERS={settings.adapters!r}: {e}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", task_queue=task_queue)
    async with contextlib.AsyncExitStack() as stack:
        try:  # /metrics, /healthz, /readyz when COLLECTIONS_METRICS_BIND is set
            await stack.enter_async_context(serving(settings.metrics_bind, database_url=settings.database_url,
                                                    client=client, sdk_address=sdk_metrics))
        except OSError as e:
            raise Unavailable(f"cannot serve COLLECTIONS_METRICS_BIND={settings.metrics_bind}: "
                              f"{e.strerror or e}") from None
        async with worker:
            await stop.wait()
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    """``python worker.py [--help]``: settings from the environment, read once;
    a bad one is one line and exit 2; an unopenable database, an unreachable
    Temporal or adapters that do not load are one line and exit 1."""
    argparse.ArgumentParser(
        prog="worker.py", description="Run a collections worker: every case workflow and activity, on the task "
                                      "queue COLLECTIONS_TASK_QUEUE, until SIGINT or SIGTERM.",
        epilog="Settings come from the environment: `collections settings` shows them. Run as many workers as "
               "you like.").parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"worker.py: error: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except ScoreModelError as e:  # COLLECTIONS_SCORE_MODEL names a file of the wrong shape
        print(f"worker.py: error: COLLECTIONS_SCORE_MODEL: {e}", file=sys.stderr)
        return 2
    except Unavailable as e:
        print(f"worker.py: {e}", file=sys.stderr)
        return 1
    return 0


def exit_now(code: int) -> None:
    """Exit without interpreter teardown: the Temporal client's Core threads can
    abort a finalizing interpreter (temporalio/sdk-python#300), turning exit 1 into a crash."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
