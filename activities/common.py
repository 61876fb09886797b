"""What the activities share: the attempt's clock, heartbeats, keys.

Clock: an activity judges and records time with the attempt's
server-scheduled time (``activity.info().current_attempt_scheduled_time``),
which agrees with ``workflow.now()`` on a real server and under time
skipping, and moves forward on a retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime, timezone

from temporalio import activity

from workflows.model import case_workflow_id

HEARTBEAT_EVERY_SECONDS = 5.0


async def with_heartbeat(coro):
    """Await ``coro``, heartbeating meanwhile: a worker that dies mid-call is
    noticed within the heartbeat timeout and the attempt is retried elsewhere
    (and finds its row, so nothing is doubled)."""
    task = asyncio.ensure_future(coro)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # the activity was cancelled or timed out: stop the work too


def phone_hash(phone: str) -> str:
    return hashlib.sha256(re.sub(r"\D", "", phone).encode()).hexdigest()


def attempt_key(account_id: str, step: str, attempt_no: int) -> str:
    return f"{case_workflow_id(account_id)}:{step}:{attempt_no}"


def activity_now() -> datetime:
    """The attempt's server-scheduled time (see module docstring)."""
    try:
        at = activity.info().current_attempt_scheduled_time
    except RuntimeError:  # called outside an activity (unit tests of helpers)
        return datetime.now(timezone.utc)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
