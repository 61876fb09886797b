"""Upgrading a running case: a case started by an older release keeps running
under this code, and a case that release left waiting for the legal branch
takes it (workflow.patched; see also the replay test in test_durability.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tarfile
from datetime import time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import LegalStepRow
from tests.helpers import advance_to_local, default_event, signal, start_case
from worker import build_worker

ROOT = Path(__file__).resolve().parent.parent
BEFORE_LEGAL_BRANCH = "e0a2193"  # the release whose cases waited in legal_pending


def old_release(dest: Path) -> Path:
    """That release's code, from this repository's history."""
    archive = dest / "old.tar"
    try:
        with archive.open("wb") as out:
            subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_LEGAL_BRANCH],
                           stdout=out, stderr=subprocess.PIPE, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"release {BEFORE_LEGAL_BRANCH} not in this checkout's history (a shallow clone?): {e}")
    code = dest / "old"
    with tarfile.open(archive) as tar:
        tar.extractall(code, filter="data")
    return code


async def test_a_case_left_waiting_by_the_release_before_the_legal_branch_takes_it(
        env, sqlite_url, task_queue, tmp_path):
    code = old_release(tmp_path)
    old = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "legacy_worker.py"), str(code),
         env.client.service_client.config.target_host, task_queue, sqlite_url],
        stdout=subprocess.PIPE, text=True)
    try:
        assert (await asyncio.to_thread(old.stdout.readline)).strip() == "ready"
        start = await advance_to_local(env, "Asia/Shanghai", time(10, 0))
        event = default_event("U-OLD", occurred_at=start, simulation={"answers": True},
                              debtor={"address": "1 Bund Rd, Shanghai"})
        handle = await start_case(env, task_queue, event)
        await env.sleep(timedelta(days=25))
        before = await handle.query("status")
    finally:
        old.terminate()
        old.wait(timeout=30)
    async with build_worker(env.client, task_queue=task_queue, database_url=sqlite_url):
        replayed = await handle.query("status")  # this code replays the old release's history
        await signal(handle, env, "payment.received", account_id="U-OLD", payment_id="P-U1", amount="0.50")
        await env.sleep(timedelta(days=40))
        after = await handle.query("status")
    assert before["stage"] == "legal_pending" and "legal" not in before
    assert replayed["stage"] == "legal_pending"
    assert after["closed_reason"] == "enforcement_requested" and after["legal"]["track"] == "payment_order"
    assert after["outstanding"] == "1200.00"  # the payment that woke it was applied
    from db.session import Database

    async with Database(sqlite_url) as db, db.sessions() as s:
        steps = (await s.scalars(select(LegalStepRow.step).where(LegalStepRow.account_id == "U-OLD"))).all()
    assert "enforcement" in steps


def test_every_patch_id_comes_from_the_ledger_and_every_ledger_id_is_used():
    """workflow.patched takes only ids named in workflows/patches.py, and the
    ledger lists each of them with its release and when it may go."""
    import ast

    from workflows import patches

    calls, direct = [], []
    for path in sorted((ROOT / "workflows").glob("*.py")):
        if path.name == "patches.py":  # the epochs' own calls (Patches)
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("patched", "deprecate_patch"):
                calls.append((path.name, ast.unparse(node.args[0])))
                if ast.unparse(node.func).startswith("workflow."):
                    direct.append((path.name, ast.unparse(node)))
    assert calls, "no patched call found"
    assert not direct, f"a case asks for its patches through its epoch (case.patched), not workflow.patched: {direct}"
    stray = [c for c in calls if not c[1].startswith("patches.")]
    assert not stray, f"patch ids must be named in workflows/patches.py: {stray}"
    used = {arg.split("(")[0].removeprefix("patches.") for _, arg in calls}
    assert used == {"LEGAL_BRANCH", "INSTALLMENT_PLANS", "EVENTS_BEAT_TIMERS", "EARLY_REPLAN", "legacy_legal_wait",
                    "EVENT_EFFECTS", "LETTER_DELIVERY", "ADDRESS_ON_FILE", "STRATEGY", "DESK", "CONTACT_START_LIMIT",
                    "RECOVERY_SCORE", "OPEN_IN_ONE", "LOCAL_DB_STEPS"}
    ids = [getattr(patches, name) for name in sorted(used - {"legacy_legal_wait"})]
    listed = " ".join(p.id for p in patches.LEDGER)
    assert all(i in listed for i in ids) and patches.legacy_legal_wait(1) in listed
    assert all(p.release and p.guards and p.deprecate_when for p in patches.LEDGER)
    # the ids themselves never change: running histories hold their markers
    assert ids == ["address-on-file-v1", "contact-start-limit-v1", "work-desk-v1", "update-replans-before-awaiting-v1",
                   "events-beat-timers-v1", "event-effects-v1", "installment-plans-v1", "legal-branch-v1",
                   "letter-delivery-v1", "local-db-steps-v1", "open-in-one-v1", "recovery-score-v1", "strategy-v1"]
    assert patches.legacy_legal_wait(2) == "legacy-legal-wait-v1-2"
    assert [epoch for epoch, _ in patches.EPOCHS] == ["born-v7", "born-v6"]  # nor do the epochs'
    assert all(covered <= set(ids) for _, covered in patches.EPOCHS)
