"""Run a worker of an older release of the product (for tests/test_upgrade.py).

    python tests/legacy_worker.py OLD_CHECKOUT TEMPORAL_ADDRESS TASK_QUEUE DATABASE_URL

The older code is imported from OLD_CHECKOUT; no workflow cache, so that its
cases' next tasks go to whichever worker polls next (the test server does
not move tasks off a stopped worker's sticky queue)."""

import asyncio
import signal
import sys


async def main(old: str, address: str, task_queue: str, url: str) -> None:
    sys.path.insert(0, old)
    from temporalio.client import Client
    from worker import build_worker

    client = await Client.connect(address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with build_worker(client, task_queue=task_queue, database_url=url, max_cached_workflows=0):
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
