"""What one run of a workflow costs the worker in its runner, with no server:
the case workflow beside bench/bare.py's bare workflow.

    .venv/bin/python bench/sandbox_cost.py [N]      (default 200)

Creates N instances of each, as a worker does for every case it
starts or replays, and prints per instance: the Python heap it keeps
(tracemalloc, by file), the CPU time, and the modules the
sandbox executed afresh for the run (anything but the workflow's own module
there is a cost paid again by every case).  Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import temporalio.converter  # noqa: E402
import temporalio.workflow  # noqa: E402
from temporalio.api.common.v1 import Payloads  # noqa: E402
from temporalio.api.failure.v1 import Failure  # noqa: E402
from temporalio.worker import WorkflowInstanceDetails, WorkflowRunner  # noqa: E402
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner  # noqa: E402
from temporalio.worker.workflow_sandbox._runner import _fake_info  # noqa: E402

from bench import bare  # noqa: E402
from worker import STRICT_RUNNER, WORKFLOW_RUNNER  # noqa: E402
from workflows.case import DelinquentAccountWorkflow  # noqa: E402


def details(cls: type) -> WorkflowInstanceDetails:
    """What the worker hands the runner for a new run (the SDK's own validation values)."""
    return WorkflowInstanceDetails(
        payload_converter_factory=temporalio.converter.DataConverter.default._new_payload_converter,
        failure_converter_class=temporalio.converter.DataConverter.default.failure_converter_class,
        interceptor_classes=[], defn=temporalio.workflow._Definition.must_from_class(cls), info=_fake_info,
        randomness_seed=-1, extern_functions={}, disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[], patch_activation_callback=None,
        last_completion_result=Payloads(), last_failure=Failure())


def executed_in_sandbox(instance) -> list[str]:
    """Modules the sandbox executed for this run (not passed through from the host)."""
    importer = getattr(instance, "importer", None)  # the worker's runner has no sandbox, so none
    return sorted(name for name, mod in (importer.new_modules.items() if importer else ())
                  if name != "__main__" and sys.modules.get(name) is not mod
                  and type(mod).__name__ != "RestrictedModule")


def measure(runner: WorkflowRunner, cls: type, n: int) -> dict:
    det = details(cls)
    keep = [runner.create_instance(det) for _ in range(5)]  # warm: host imports done
    gc.collect()
    cpu0 = time.process_time()
    keep += [runner.create_instance(det) for _ in range(n)]
    cpu = (time.process_time() - cpu0) / n * 1000
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    keep += [runner.create_instance(det) for _ in range(n)]
    gc.collect()
    by_file = tracemalloc.take_snapshot().compare_to(before, "filename")
    tracemalloc.stop()
    return {"cpu": cpu, "heap": sum(d.size_diff for d in by_file) / n / 1024,
            "top": [(d.size_diff / n / 1024, d.traceback[0].filename) for d in by_file[:5]],
            "executed": executed_in_sandbox(keep[-1])}


async def main(n: int) -> None:
    sides = {"bare": measure(SandboxedWorkflowRunner(), bare.BareCase, n)}
    sides["product"] = measure(WORKFLOW_RUNNER, DelinquentAccountWorkflow, n)
    sides["product, full sandbox"] = measure(STRICT_RUNNER, DelinquentAccountWorkflow, n)
    print(f"{n} instances a side, no server; bare in the SDK's default sandbox, the product in the worker's runner "
          "(no sandbox) and in the full sandbox the tests replay in")
    print(f"{'':34}{'product':>12}{'full sandbox':>14}{'bare':>12}{'ratio':>8}")
    for key, label, fmt in (("heap", "Python heap (KiB/instance)", ".0f"), ("cpu", "CPU (ms/instance)", ".1f")):
        p, f, b = sides["product"][key], sides["product, full sandbox"][key], sides["bare"][key]
        print(f"{label:34}{p:>12{fmt}}{f:>14{fmt}}{b:>12{fmt}}{p / b:>8.2f}")
    for side, m in sorted(sides.items(), reverse=True):
        print(f"{side}: executed afresh per run: {', '.join(m['executed'])}")
        for kib, filename in m["top"]:
            print(f"    {kib:6.1f} KiB  {filename}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
