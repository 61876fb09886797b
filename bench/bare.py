"""The bare Temporal baseline of bench/vs_bare.py: a sandboxed workflow of four
no-op activities that then parks on a 30-day timer, the shape of a case's
first steps without any of the product around it.

    BARE_MARK_FILE=F python bench/bare.py ADDRESS NAMESPACE TASK_QUEUE   (a worker; bench/vs_bare.py starts it)

Each activity appends its index (0 to 3) as a line to BARE_MARK_FILE, so the
benchmark can count the workflows that reached their first step, and those
that ran as many activities as a case runs to its day-0 call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

MARK_FILE = os.environ.get("BARE_MARK_FILE", "")


@activity.defn
async def step(n: int) -> int:
    if MARK_FILE:
        with open(MARK_FILE, "a") as f:
            f.write(f"{n}\n")
    return n


@workflow.defn(name="BareCase")
class BareCase:
    @workflow.run
    async def run(self, account_id: str) -> str:
        for n in range(4):
            await workflow.execute_activity(step, n, start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(days=30))  # parked, like a case between steps
        return account_id


async def main(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareCase], activities=[step],
                      max_cached_workflows=100_000):
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import bare  # the sandbox re-imports workflows by module name: not __main__

    asyncio.run(bare.main(*sys.argv[1:4]))
