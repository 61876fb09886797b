"""Record workflow histories for the replay test: ``python -m tests.record_histories [VERSION]``.

Run it when a workflow change is released, after raising VERSION; it never
overwrites a file: the old ones stay, so that every shipped version of the
workflow stays replayable (tests/test_durability.py).  A scenario added later
can be recorded under an earlier release's VERSION by running that release's
workflow code: only the files missing are written.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from datetime import time, timedelta
from pathlib import Path

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from support.temporal import register_search_attributes
from tests.conftest import binary
from tests.helpers import advance_to_local, default_event, signal, start_case, uid
from worker import build_worker
from workflows.case import DelinquentAccountWorkflow
from workflows.model import CaseEvent, PlanRequest, SuspensionRequest
from support.strategy import parse_strategy

OUT = Path(__file__).parent / "histories"
# v1: e0a2193 and before; v2: installment plans and the legal branch (recorded
# at 7987ddb; its events-* histories at f301b44, the same workflow code);
# v3: events change a case only when they apply, the apply_event Update, letters
# served again then by post (issue 10); v4: strategies, the work desk, the
# contact start limit and the recovery score (issues 11, 13, 14; recorded at
# ea2a803); v5: a usual case recorded as opened by open_case (issue 12); v6: a
# new run records one patch marker, its epoch's (workflows/patches.py EPOCHS).
# v7: the case's opening and records as local activities (local-db-steps-v1,
# epoch born-v7). The next release that changes the workflow's commands records v8.
VERSION = "v7"


async def ladder_and_legal(env: WorkflowEnvironment, tq: str, start) -> dict:
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
        "H-5", occurred_at=start, grade="I", amount="900.00", debtor={"monthly_disposable_income": "1000.00"}))
    cases["plan-broken"] = plan
    await env.sleep(timedelta(hours=12))
    await plan.execute_update(DelinquentAccountWorkflow.accept_plan, PlanRequest(3))
    await env.sleep(timedelta(days=60))
    return cases


async def events(env: WorkflowEnvironment, tq: str, start) -> dict:
    """Cases driven by events, each also sent when it does not apply (a
    dispute resolved twice, a suspension revoked twice, a payment id twice)."""
    protected = await start_case(env, tq, default_event("H-6", occurred_at=start))
    upheld = await start_case(env, tq, default_event("H-7", occurred_at=start))
    paid = await start_case(env, tq, default_event("H-8", occurred_at=start, amount="300.00"))
    await env.sleep(timedelta(hours=12))
    await signal(protected, env, "dispute.opened", account_id="H-6", reason="not my loan")
    await signal(upheld, env, "dispute.resolved", account_id="H-7", upheld=True)  # no dispute is open
    await signal(paid, env, "payment.received", account_id="H-8", payment_id="P-H8", amount="100.00")
    await signal(paid, env, "payment.received", account_id="H-8", payment_id="P-H8", amount="100.00")
    await env.sleep(timedelta(days=1))
    for _ in range(2):
        await signal(protected, env, "dispute.resolved", account_id="H-6", upheld=False)
        await env.sleep(timedelta(hours=2))
    await protected.execute_update(DelinquentAccountWorkflow.grant_suspension, SuspensionRequest(2, "illness"))
    await env.sleep(timedelta(days=3))
    for _ in range(2):
        await signal(protected, env, "suspension.revoked", account_id="H-6")
        await env.sleep(timedelta(hours=2))
    await signal(paid, env, "payment.received", account_id="H-8", payment_id="P-H8b", amount="200.00")
    await env.sleep(timedelta(days=2))
    await signal(protected, env, "case.recalled", account_id="H-6")
    await env.sleep(timedelta(days=1))
    return {"events-protections-twice": protected, "events-upheld-without-dispute": upheld,
            "events-payment-id-twice": paid}


async def operator_and_letters(env: WorkflowEnvironment, tq: str, start) -> dict:
    """v3: events through the apply_event Update (those that do not apply are
    refused by its validator), and legal notices served again, then by post."""
    by_update = await start_case(env, tq, default_event("H-9", occurred_at=start, amount="600.00"))
    posted = await start_case(env, tq, default_event("H-10", occurred_at=start, debtor={"address": "1 Bund Rd"},
                                                     simulation={"letter_undelivered": True}))
    unserved = await start_case(env, tq, default_event("H-11", occurred_at=start,
                                                       simulation={"letter_undelivered": True}))
    await env.sleep(timedelta(hours=12))
    for kind, data in (("dispute.resolved", {"upheld": True}), ("payment.received", {"payment_id": "P-H9",
                       "amount": "100.00"}), ("payment.received", {"payment_id": "P-H9", "amount": "100.00"}),
                       ("suspension.granted", {"months": 2, "reason": "illness"}), ("suspension.revoked", {}),
                       ("suspension.revoked", {})):
        try:
            await by_update.execute_update(DelinquentAccountWorkflow.apply_event, CaseEvent(
                f"ev-{uid()}", kind, await env.get_current_time(), {"account_id": "H-9", **data}, actor="ops"))
        except WorkflowUpdateFailedError:
            pass  # does not apply: refused by the validator, nothing in the history
        await env.sleep(timedelta(hours=1))
    await signal(by_update, env, "dispute.resolved", account_id="H-9", upheld=True)  # no effect, recorded
    await env.sleep(timedelta(days=40))
    return {"update-events": by_update, "letter-by-post": posted, "letter-unserved": unserved}


async def strategies(env: WorkflowEnvironment, tq: str, start) -> dict:
    """v4: cases that follow a strategy (issue 14): the letter first at a set
    time, then the calls; an amount band that starts at the letter, and a
    legal minimum that keeps the case out of court."""
    letter_first = parse_strategy((Path(__file__).parent.parent / "samples" / "strategies" / "letter-first.toml")
                                  .read_text())
    banded = parse_strategy('name = "banded"\nversion = "1"\n[legal]\nmin_amount = "100000.00"\n'
                            '[[legal.bands]]\nfrom_amount = "20000.00"\ngrade = "III"\nstart_with = "letter"\n')
    cases = {
        "strategy-letter-first": await start_case(env, tq, default_event("H-12", occurred_at=start),
                                                  strategy=letter_first.to_case(),
                                                  contact_rules=letter_first.contact_rules()),
        "strategy-band-below-legal-minimum": await start_case(
            env, tq, default_event("H-13", occurred_at=start, amount="25000.00"), strategy=banded.to_case()),
    }
    await env.sleep(timedelta(days=30))
    return cases


async def desk(env: WorkflowEnvironment, tq: str, url: str, start) -> dict:
    """v4: steps people do at the work desk (issue 13): a day-3 call task
    completed with a promise, one left to expire at 22:00 and offered again,
    an empty skip trace reviewed, and the court's answers entered by legal staff."""
    from db.session import Database
    from desk import operators
    from desk.store import DeskStore, Entry
    from support.settings import load_settings
    from workflows import rules

    async with Database(url) as db:
        for name, role, teams in (("rec-agent", "agent", ["general"]), ("rec-legal", "legal", []),
                                  ("rec-compliance", "compliance", [])):
            if await operators.get_operator(db, name) is None:
                await operators.add_operator(db, name, role, teams)
        store = DeskStore(db, load_settings(database_url=url, task_queue=tq), env.client, clock=env.get_current_time)

        async def task_of(account: str, kind: str) -> int:
            for _ in range(300):
                found = [t for t in await store.list_tasks("rec-" + {"human_call": "agent", "court_entry": "legal"}
                                                           .get(kind, "compliance"), kind=kind)
                         if t.account_id == account and t.status == "open"]
                if found:
                    return found[0].id
                await asyncio.sleep(0.1)
            raise RuntimeError(f"no {kind} task for {account}")

        async def work(account: str, kind: str, entry: Entry) -> None:
            who = "rec-" + {"human_call": "agent", "court_entry": "legal"}.get(kind, "compliance")
            task = await task_of(account, kind)
            await store.claim(who, task)
            await store.complete(who, task, entry)

        cases = {
            "desk-call-promise": await start_case(env, tq, default_event("H-14", occurred_at=start),
                                                  desk_steps=["human_call"]),
            "desk-call-expired": await start_case(env, tq, default_event("H-15", occurred_at=start),
                                                  desk_steps=["human_call"]),
            "desk-skip-trace-review": await start_case(env, tq, default_event("H-16", occurred_at=start, grade="III"),
                                                       desk_steps=["skip_trace_review"]),
            "desk-court-entry": await start_case(env, tq, default_event(
                "H-17", occurred_at=start, simulation={"answers": True},
                debtor={"address": "1 Nanjing Road, Shanghai"}), desk_steps=["court_entry"]),
        }
        await work("H-16", "skip_trace_review", Entry("found", phone="+86 139 0000 1616"))
        await env.sleep(timedelta(days=3, hours=1))  # day 3, 11:00: the call tasks are open
        today = rules.local_date(await env.get_current_time(), "Asia/Shanghai")
        await work("H-14", "human_call", Entry("answered", promise_date=today + timedelta(days=4)))
        await env.sleep(timedelta(days=1))  # H-15's task expired at 22:00 and came back at 08:00
        await cases["desk-call-expired"].terminate("recorded")  # enough: every day the same again
        await env.sleep(timedelta(days=19))  # H-17 applied for a payment order
        await work("H-17", "court_entry", Entry("accepted", reference="(2026) Hu 01 Min Du 1"))
        await work("H-17", "court_entry", Entry("order_served", reference="(2026) Hu 01 Min Du 1"))
        await env.sleep(timedelta(days=16))  # no objection: enforcement
    return cases


async def main(version: str) -> None:
    OUT.mkdir(exist_ok=True)
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
                cases = await ladder_and_legal(env, tq, start)
                cases |= await events(env, tq, await advance_to_local(env, "Asia/Shanghai", time(10, 0)))
                if version not in ("v1", "v2"):  # the apply_event Update and the post came with v3
                    start = await advance_to_local(env, "Asia/Shanghai", time(10, 0))
                    cases |= await operator_and_letters(env, tq, start)
                if version not in ("v1", "v2", "v3"):  # strategies came with v4 (issue 14)
                    cases |= await strategies(env, tq, await advance_to_local(env, "Asia/Shanghai", time(9, 30)))
                    cases |= await desk(env, tq, url, await advance_to_local(env, "Asia/Shanghai", time(10, 0)))
                written = []
                for name, handle in cases.items():
                    path = OUT / f"{version}-{name}.json"
                    if not path.exists():  # never overwrite a recorded history
                        path.write_text((await handle.fetch_history()).to_json())
                        written.append(path.name)
                    if (await handle.describe()).status.name == "RUNNING":
                        await handle.terminate("recorded")
    print("recorded", ", ".join(written) or "nothing new")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else VERSION))
