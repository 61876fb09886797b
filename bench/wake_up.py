"""What waking an evicted case costs: the replay of its history.

    .venv/bin/python bench/wake_up.py [REPEATS] [VERSION]      (default 20, v7)

A case that is not in the worker's cache (evicted to keep the worker inside
COLLECTIONS_WORKER_MEMORY_MB, or after a worker restart) is rebuilt on its
next event by replaying its whole history.  This replays the recorded
histories of tests/histories (VERSION's: real cases from their default event
to weeks later) with the worker's own workflow runner,
REPEATS times each, and prints per replay the wall time and the CPU time, by
history length.  No server is needed; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from worker import WORKFLOW_RUNNER  # noqa: E402
from workflows.case import DelinquentAccountWorkflow  # noqa: E402


def span_days(raw: dict) -> float:
    first, last = (datetime.fromisoformat(raw["events"][i]["eventTime"].replace("Z", "+00:00")) for i in (0, -1))
    return (last - first).total_seconds() / 86400


async def main(repeats: int, version: str) -> None:
    replayer = Replayer(workflows=[DelinquentAccountWorkflow], workflow_runner=WORKFLOW_RUNNER)
    print(f"replays of the {version} recorded histories, {repeats} each, with the worker's workflow runner")
    print(f"{'history':36}{'events':>8}{'days':>7}{'KiB':>7}{'wall ms':>9}{'CPU ms':>8}")
    rows = []
    for path in sorted((ROOT / "tests" / "histories").glob(f"{version}-*.json")):
        raw = json.loads(path.read_text())
        history = WorkflowHistory.from_json(path.stem, raw)
        await replayer.replay_workflow(history)  # warm: imports, first compile
        wall, cpu = time.perf_counter(), time.process_time()
        async def again():
            for _ in range(repeats):
                yield history
        await replayer.replay_workflows(again())  # one replay worker, as a worker replays
        wall = (time.perf_counter() - wall) / repeats * 1000
        cpu = (time.process_time() - cpu) / repeats * 1000
        rows.append((len(raw["events"]), wall, cpu))
        print(f"{path.stem:36}{len(raw['events']):>8}{span_days(raw):>7.1f}{path.stat().st_size / 1024:>7.0f}"
              f"{wall:>9.1f}{cpu:>8.1f}")
    events = sum(r[0] for r in rows)
    print(f"per 100 history events: {sum(r[1] for r in rows) / events * 100:.1f} ms wall, "
          f"{sum(r[2] for r in rows) / events * 100:.1f} ms CPU")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, sys.argv[2] if len(sys.argv) > 2 else "v7"))
