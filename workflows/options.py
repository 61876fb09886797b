"""Timeouts and retries of the case's activities, in one place.

Passed as keyword arguments to ``workflow.execute_activity_method``.  They
travel with each activity's schedule command; a change applies to the
activities scheduled from then on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# A database write or read: quick, retried for as long as the database is away.
DB_ACTIVITY: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
)

# A call to an outside system that may take minutes: it heartbeats, so a
# worker that dies mid-call is noticed, and the retry (same idempotency key)
# finds the row the first attempt reserved.
_OUTSIDE_CALL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
)

CONTACT_ACTIVITY: dict[str, Any] = dict(_OUTSIDE_CALL)  # a call or a letter to the debtor
FILING_ACTIVITY: dict[str, Any] = dict(_OUTSIDE_CALL)  # a filing with the court, or the bond behind it
