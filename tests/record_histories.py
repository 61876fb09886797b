"""Record workflow histories for the replay test: ``python -m tests.record_histories``.

Run it when a workflow change is released, after raising VERSION; it never
overwrites a file: the old ones stay, so that every shipped version of the
workflow stays replayable (tests/test_durability.py).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import time, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from support.temporal import register_search_attributes
from tests.conftest import binary
from tests.helpers import advance_to_local, default_event, start_case
from worker import build_worker
from workflows.case import DelinquentAccountWorkflow
from workflows.model import PlanRequest

OUT = Path(__file__).parent / "histories"
# v1: e0a2193 and before; v2: installment plans and the legal branch (recorded
# at 7987ddb). The next release that changes the workflow's commands records v3.
VERSION = "v3"


async def main() -> None:
    if any(OUT.glob(f"{VERSION}-*.json")):
        raise SystemExit(f"histories of {VERSION} are already recorded: raise VERSION for a new release")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/h.db"
        await upgrade(url)
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binary("temporal-test-server")
        ) as env:
            await register_search_attributes(env.client)
            tq = f"rec-{uuid.uuid4().hex[:6]}"
            start = await advance_to_local(env, "Asia/Shanghai", time(21, 30))
            async with build_worker(env.client, task_queue=tq, database_url=url):
                cases = {
                    "unresponsive": await start_case(env, tq, default_event("H-1", occurred_at=start)),
                    "promise-then-pays": await start_case(env, tq, default_event(
                        "H-2", occurred_at=start, simulation={"answers": True, "promises_in_days": 2,
                                                              "pays_after": "human_call"})),
                    "payment-order-enforced": await start_case(env, tq, default_event(
                        "H-3", occurred_at=start, simulation={"answers": True},
                        debtor={"address": "1 Nanjing Road, Shanghai"})),
                    "preservation-suit": await start_case(env, tq, default_event("H-4", occurred_at=start)),
                }
                plan = await start_case(env, tq, default_event(
                    "H-5", occurred_at=start, grade="I", amount="900.00",
                    debtor={"monthly_disposable_income": "1000.00"}))
                cases["plan-broken"] = plan
                await env.sleep(timedelta(hours=12))
                await plan.execute_update(DelinquentAccountWorkflow.accept_plan, PlanRequest(3))
                await env.sleep(timedelta(days=60))
                for name, handle in cases.items():
                    history = await handle.fetch_history()
                    (OUT / f"{VERSION}-{name}.json").write_text(history.to_json())
                    if (await handle.describe()).status.name == "RUNNING":
                        await handle.terminate("recorded")
    print("recorded", ", ".join(sorted(p.name for p in OUT.glob("*.json"))))


if __name__ == "__main__":
    asyncio.run(main())
