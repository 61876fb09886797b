"""What a worker keeps in memory: the case cache follows the memory budget
(COLLECTIONS_WORKER_MEMORY_MB), and a case's run in the workflow sandbox
executes no module afresh (issue 12; figures in
docs/benchmarks.md, from bench/sandbox_cost.py and bench/vs_bare.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.sandbox_cost import details, executed_in_sandbox
from support.settings import load_settings
from worker import CASE_MEMORY_KIB, STRICT_RUNNER, WORKER_BASE_MIB, WORKFLOW_RUNNER, build_worker
from workflows.case import DelinquentAccountWorkflow

ROOT = Path(__file__).resolve().parent.parent


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "worker.py")], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "TEMPORAL_ADDRESS": "127.0.0.1:1",
                                         **env})


@pytest.mark.parametrize("value", ["lots", "100", "0", "-1", "1.5"])
def test_a_bad_memory_budget_is_one_line_and_exit_2(value):
    bad = run_worker({"COLLECTIONS_WORKER_MEMORY_MB": value})
    assert bad.returncode == 2, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert "COLLECTIONS_WORKER_MEMORY_MB" in bad.stderr and "256" in bad.stderr


async def test_the_memory_budget_sets_how_many_cases_the_worker_keeps_cached(env, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    queues = iter(range(100))

    def cached(**setting) -> int:
        worker = build_worker(env.client, task_queue=f"memory-{next(queues)}",  # one worker per queue and client
                              settings=load_settings(database_url=url, **setting))
        return worker.config()["max_cached_workflows"]

    assert cached() == (1024 - WORKER_BASE_MIB) * 1024 // CASE_MEMORY_KIB  # the default budget, 1 GiB
    assert cached(worker_memory_mb=256) == (256 - WORKER_BASE_MIB) * 1024 // CASE_MEMORY_KIB
    assert cached(worker_memory_mb=256) < cached(worker_memory_mb=512) < cached()
    # a budget that fits more than COLLECTIONS_MAX_CACHED_CASES: the cap still holds
    assert cached(worker_memory_mb=100_000, max_cached_cases=3000) == 3000
    assert cached(worker_memory_mb=100_000) == 10000


async def test_a_case_run_executes_no_module_afresh_and_the_full_sandbox_executes_the_workflows():
    # The worker runs cases without the sandbox: a cached case holds no copy
    # of its module, classes and handler definitions (once about half of a
    # cached case's Python heap; and earlier still, every module of the package).
    instance = WORKFLOW_RUNNER.create_instance(details(DelinquentAccountWorkflow))
    assert executed_in_sandbox(instance) == [] and not hasattr(instance, "importer")
    # The full sandbox, in which the tests replay every recorded history,
    # executes the workflow's module afresh under the sandbox's restrictions,
    # with the modules of workflows/ it names in a from-list (`from workflows
    # import rules`, which importlib loads past the sandbox's passthrough).
    strict = STRICT_RUNNER.create_instance(details(DelinquentAccountWorkflow))
    assert {"workflows.case", "workflows.rules", "workflows.strategy"} <= set(executed_in_sandbox(strict))
    assert not any(m == "workflows" or m.startswith("workflows.") for m in STRICT_RUNNER.restrictions.passthrough_modules)
