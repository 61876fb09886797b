"""Timeouts and retries of the case's activities, in one place.

Passed as keyword arguments to ``workflow.execute_activity_method``.  They
travel with each activity's schedule command; a change applies to the
activities scheduled from then on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

# A database write or read: quick, retried for as long as the database is away.
DB_ACTIVITY: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
)
# The same, run as a local activity (``workflow.execute_local_activity_method``):
# the case's most frequent writes, its opening and its records, run in the
# worker that runs the case's workflow task, with no round trip through the
# server's task queue (patch local-db-steps-v1).  Retried in the worker for a
# minute, then after a timer, for as long as the database is away.
DB_LOCAL_ACTIVITY: dict[str, Any] = dict(DB_ACTIVITY, local_retry_threshold=timedelta(minutes=1))

# A call to an outside system that may take minutes: it heartbeats, so a
# worker that dies mid-call is noticed, and the retry (same idempotency key)
# finds the row the first attempt reserved.
_OUTSIDE_CALL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
)

CONTACT_ACTIVITY: dict[str, Any] = dict(_OUTSIDE_CALL)  # a letter by post; a contact before issue 11
FILING_ACTIVITY: dict[str, Any] = dict(_OUTSIDE_CALL)  # a filing with the court, or the bond behind it

# A contact not started by a worker within this long after the case asked for
# it is not placed: Temporal times it out (ScheduleToStart, never retried) and
# the case plans it again, ``CONTACT_REPLAN_AFTER`` later (the contact window
# and caps are judged afresh then).  A backlog of calls re-plans instead of
# dialling late.  Tests shorten both (they are read when the case schedules).
CONTACT_START_LIMIT = timedelta(minutes=5)
CONTACT_REPLAN_AFTER = timedelta(minutes=5)


def contact_activity() -> dict[str, Any]:
    """The options of a contact (patch ``contact-start-limit-v1``): those of
    an outside call, with the schedule-to-start limit."""
    return dict(_OUTSIDE_CALL, schedule_to_start_timeout=CONTACT_START_LIMIT)


def replan_delay() -> timedelta:
    """How long after a contact that was not started the case tries again."""
    return CONTACT_REPLAN_AFTER


def not_started(err: BaseException) -> bool:
    """Whether an activity's failure is its schedule-to-start timeout: it never started, nothing was done."""
    cause = getattr(err, "cause", None)
    return isinstance(err, ActivityError) and isinstance(cause, ActivityTimeout) and (
        cause.type == TimeoutType.SCHEDULE_TO_START)
