"""Run a collections worker: ``python worker.py``.

``build_worker`` is the embedding point for tests and other programs: it
returns a Worker with every workflow and activity registered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.adapters import Adapters, load_adapters
from activities.case_activities import CaseActivities
from support.logs import configure_logging, get_logger, temporal_runtime
from db.session import Database
from workflows.case import DelinquentAccountWorkflow
from workflows.model import DEFAULT_TASK_QUEUE
from support.settings import Settings, load_settings
from support.temporal import connect
from workflows.rules import ContactRules


# Time zones are read-only data: the rules convert to debtor-local time
# inside the workflow, so the sandbox must hand out real ZoneInfo objects.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=dataclasses.replace(
        SandboxRestrictions.default,
        invalid_module_members=SandboxRestrictions.invalid_module_members_default.with_child_unrestricted(
            "zoneinfo", "ZoneInfo"
        ),
    ).with_passthrough_modules("zoneinfo")
)


def build_worker(
    client: Client,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    database_url: str | None = None,
    settings: Settings | None = None,
    adapters: Adapters | None = None,
    contact_rules: ContactRules | None = None,
    **worker_options,
) -> Worker:
    """A worker for the case workflow and its activities. ``settings`` defaults
    to the environment's; ``database_url``, ``adapters`` and ``contact_rules``
    override them (tests, embedders)."""
    settings = settings or load_settings()
    db = Database(database_url or settings.database_url)
    rules_ = contact_rules or settings.contact_rules
    activities = CaseActivities(db, adapters or load_adapters(settings.adapters), rules_)
    worker_options.setdefault("max_concurrent_activities", 50)
    # Cases live for months and wait most of the time: keep many cached (an
    # evicted case is replayed from its history on its next event), and run
    # few workflow tasks at once so each finishes well inside its timeout
    # when the CPU is busy (measured with bench/disaster_fanout.py).
    worker_options.setdefault("max_cached_workflows", settings.max_cached_cases)
    worker_options.setdefault("max_concurrent_workflow_tasks", 16)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DelinquentAccountWorkflow],
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities.all(),
        **worker_options,
    )


async def serve(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM."""
    # JSON lines on stderr, personal data masked: one line per step a case
    # takes; the SDK's and Core's own loggers only from WARNING up (no line per poll).
    configure_logging(settings.log_level or "INFO")
    log = get_logger(component="worker")
    client = await connect(settings, runtime=temporal_runtime())
    task_queue = settings.task_queue
    worker = build_worker(client, task_queue=task_queue, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", task_queue=task_queue)
    async with worker:
        await stop.wait()
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    """``python worker.py [--help]``: settings from the environment, read once;
    a bad one is one line and exit 2, an unreachable Temporal one line and exit 1."""
    import argparse
    import sys

    from support.settings import SettingsError

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
    except RuntimeError as e:
        if "connect" not in str(e).lower():
            raise
        print(f"worker.py: cannot reach Temporal at {settings.temporal_address}: {str(e).splitlines()[0]}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
