"""What the activities share: the attempt's clock, heartbeats, keys.

The clock of record (:func:`activity_now`) is the moment *now*, on the
server's clock: the time the server handed this attempt to the worker
(``activity.info().started_time``) plus the time this worker has spent on
the attempt since (a monotonic clock, started by :func:`start_clock`).

Why not the others:

- the *scheduled* time (``current_attempt_scheduled_time``) is when the case
  asked for the activity.  An attempt may wait in the task queue (no worker,
  a backlog) for minutes: judged by it, a call planned at 21:58 and placed at
  22:00:39 passed as daytime and was recorded as 21:58 (issue 11).
- the worker's wall clock (``datetime.now()``) is right on a real server but
  not under time skipping, where the server's clock (``workflow.now()``,
  timers, ``started_time``) runs days ahead of it.  ``started_time`` is the
  server's in both: on a real server it is the wall time of the start (a
  task held back 5 s starts 5 s after it was scheduled), under time skipping
  the skipped time.  The time skipping server does not skip while an
  activity is outstanding, so the elapsed part is real time in both.

``started_time`` is never earlier than the attempt's scheduled time; the
later of the two is taken (``ActivityEnvironment`` in unit tests sets only
the scheduled time, so that one drives those tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

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


# (the attempt's start on the server's clock, the monotonic clock then), per
# activity attempt: each attempt runs in a task of its own, with its own context.
_STARTED: ContextVar[tuple[datetime, float] | None] = ContextVar("activity_clock_started", default=None)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def start_clock() -> datetime:
    """Start the attempt's clock of record; call it first thing in an
    activity whose time matters to a rule (a contact).  Returns now."""
    info = activity.info()
    server = max(_aware(info.started_time), _aware(info.current_attempt_scheduled_time))
    _STARTED.set((server, time.monotonic()))
    return server


def activity_now() -> datetime:
    """Now, on the server's clock (see module docstring).  In an activity
    that did not call :func:`start_clock`, the clock starts at the first call."""
    try:
        activity.info()
    except RuntimeError:  # called outside an activity (unit tests of helpers)
        return datetime.now(timezone.utc)
    started = _STARTED.get()
    if started is None:
        return start_clock()
    server, mono = started
    return server + timedelta(seconds=time.monotonic() - mono)
