"""The worker's metrics and health, served on ``COLLECTIONS_METRICS_BIND``.

``/metrics`` is one Prometheus page of three parts:

- the Temporal SDK's own metrics (task latencies, polls, slots, cache, ...),
  which Core serves on a loopback port of the worker's runtime
  (:func:`sdk_bind` picks it) and which are passed on as they are;
- the product's counters, counted by the activities at the point each
  outcome is decided (the calls below; a retry that finds its row does not
  count again): contacts by channel and outcome, contacts refused by reason,
  escalations, cases opened and closed by reason, and the process's own
  memory and CPU;
- gauges read from the database at scrape time (two grouped counts on
  indexed columns): open cases by stage, open work items by kind and status.

Counters are per worker process (Prometheus sums them across workers); the
database gauges are the same on every worker (take ``max`` across them).

``/healthz`` answers 200 while the process runs. ``/readyz`` answers 200 only
when Temporal answers a call and the database answers a query on its schema
(a fresh connection each time), else 503 with the reasons, one a line.
"""

from __future__ import annotations

import socket

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, disable_created_metrics

disable_created_metrics()  # no *_created series beside each counter
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # resident memory, CPU, open files of the worker process

CONTACTS = Counter("collections_contacts", "Contact attempts completed, by channel and outcome "
                   "(the rows of contact_attempts this worker finished)", ["channel", "outcome"], registry=REGISTRY)
REFUSED = Counter("collections_contacts_refused", "Contacts refused before any call, by reason "
                  "(cap, quiet_hours, screen)", ["reason"], registry=REGISTRY)
ESCALATIONS = Counter("collections_escalations", "Legal escalations raised, by step", ["step"], registry=REGISTRY)
OPENED = Counter("collections_cases_opened", "Cases opened", registry=REGISTRY)
CLOSED = Counter("collections_cases_closed", "Cases closed, by reason", ["reason"], registry=REGISTRY)


# ---------------------------------------------------------------- counting (the activities call these)

def contact(channel: str, outcome: str) -> None:
    """A contact attempt reached its outcome (answered, no_answer, delivered, blocked_compliance, ...)."""
    CONTACTS.labels(channel, outcome).inc()


def refused(reason: str) -> None:
    """A contact was turned away before any call: ``cap``, ``quiet_hours`` or ``screen``."""
    REFUSED.labels(reason).inc()


def escalation(step: str) -> None:
    ESCALATIONS.labels(step).inc()


def case_opened() -> None:
    OPENED.inc()


def case_closed(reason: str) -> None:
    CLOSED.labels(reason).inc()


# ---------------------------------------------------------------- the address

def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) -> (host, port); ValueError saying what is accepted."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT with a port 1-65535, like 127.0.0.1:9464")
    return host, int(port)


def sdk_bind() -> str:
    """A free loopback address for the SDK's own Prometheus endpoint (read by ``/metrics``, not exposed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"
