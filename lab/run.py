"""A lab run (SPEC §9, issue 14): a population through the real workflows.

``collections lab run`` lands here.  :func:`run` generates (or reads) the
population, starts a time-skipping Temporal test server, migrates a fresh
SQLite database ``DIR/lab.db`` with Alembic, runs an in-process worker
(:func:`worker.build_worker`) with the simulated adapters, ingests the
population through the real intake (:class:`intake.ingest.Ingestor`), then
moves simulated time a day at a time to day ``D``.  Each day the lab's
upstream systems act as the population's ``lab`` profiles say
(:func:`upstream_events`): a plan accepted, installments and kept promises
paid, disputes opened and resolved, the disaster declared; they read what
happened from the database, like a real servicing system would.  Finally
:mod:`lab.report` reads the outcomes from the database and :mod:`lab.plots`
draws them.

Champion/challenger: with ``challenger`` and ``split``, each debtor (all of
their accounts) goes to the challenger when a hash of the seed and the
debtor id falls below ``split``: deterministic for the seed, and each cohort
is ingested under its own strategy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.testing import WorkflowEnvironment

from activities.adapters import simulated_adapters
from db.migrate import upgrade
from db.models import Case, ContactAttempt, InstallmentPlan
from db.session import Database
from intake.ingest import Ingestor
from lab import population as pop
from lab import report as lab_report
from support.logs import temporal_runtime
from support.payloads import DATA_CONVERTER
from support.settings import Settings, SettingsError, load_settings
from support.temporal import register_search_attributes
from worker import WORKFLOW_RUNNER, build_worker
from workflows import rules

TASK_QUEUE = "lab"
DISASTER_DAY = 10  # the day the lab declares its disaster
DISASTER_DAYS = 30
DISPUTE_RESOLVED_AFTER = 14  # days
CHAMPION, CHALLENGER = "champion", "challenger"
# SQLite takes one writer at a time: more lines or activities in flight only lengthen
# the queue for its lock (at 32 + 64 a loaded machine starved a writer past its 60 s).
# Re-measured since db/session.py queues the process's writers in turn: 16 lines with
# 32 activities and 32 workflow tasks, or 8 activities and 8 workflow tasks, were no
# faster (docs/lab.md, Speed).
INGEST_CONCURRENCY = 8


class LabError(ValueError):
    """Bad input to a lab command: one line, exit 2, nothing written."""


@dataclass
class LabRequest:
    debtors: int
    days: int
    seed: int
    out: Path
    strategy: Path | None = None
    challenger: Path | None = None
    split: float = 0.5
    population: Path | None = None  # a population file instead of generating one
    patterns: str | None = None


@dataclass
class Cohort:
    name: str
    strategy: Path | None
    settings: Settings
    accounts: list[str] = field(default_factory=list)


# ---- checking the request (before anything is written) ----------------------------------------


def check_strategy(path: Path) -> None:
    """A strategy file that cannot be used is a :class:`LabError` naming it.

    The strategy engineer's loader (support/strategy.py) validates the
    content when present; until then the file must at least be TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LabError(f"cannot read strategy file {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"strategy file {path} is not valid TOML: {e}") from None
    loader = _strategy_loader()
    if loader is not None:
        try:
            loader(path)
        except (ValueError, OSError) as e:  # the loader's one-line refusal
            raise LabError(f"strategy file {path}: {e}") from None


def _strategy_loader() -> Callable[[Path], Any] | None:
    try:
        from support import strategy  # the strategy engineer's loader (issue 14, strategies as TOML)
    except ImportError:
        return None
    return getattr(strategy, "load_strategy", None)


def check(req: LabRequest) -> None:
    if req.debtors < 1:
        raise LabError(f"--debtors must be at least 1, got {req.debtors}")
    if req.days < 1:
        raise LabError(f"--days must be at least 1, got {req.days}")
    if req.challenger is not None and not 0 < req.split < 1:
        raise LabError(f"--split must be between 0 and 1 (exclusive), got {req.split:g}")
    if req.challenger is None and req.split != 0.5:
        raise LabError("--split needs --challenger")
    for path in (req.strategy, req.challenger):
        if path is not None:
            check_strategy(path)
    if req.out.exists() and (not req.out.is_dir() or any(req.out.iterdir())):
        raise LabError(f"--out {req.out} exists and is not an empty directory: a run writes a fresh one")
    if req.population is None:
        pop.choose(req.patterns)  # an unknown pattern name, before anything is written


def population_lines(req: LabRequest) -> list[str]:
    if req.population is not None:
        return [json.dumps(e.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
                for e in pop.read(req.population)]
    return pop.dumps(pop.generate(req.debtors, req.seed, req.patterns)).splitlines()


# ---- cohorts ----------------------------------------------------------------------------------


def in_challenger(seed: int, debtor_id: str, split: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{debtor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < split


def _settings(url: str, strategy: Path | None) -> Settings:
    overrides: dict[str, Any] = dict(database_url=url, task_queue=TASK_QUEUE, adapters="simulated")
    if strategy is not None and "strategy" in Settings.model_fields:
        overrides["strategy"] = str(strategy)  # the strategy engineer's COLLECTIONS_STRATEGY
    try:
        return load_settings(**overrides)
    except SettingsError as e:
        raise LabError(str(e)) from None


# ---- moving the population's dates to the server's clock -----------------------------------------


def rebase(line: str, now: datetime) -> str:
    """The event as of the server's ``now``: the same age of debt, today's default."""
    event = json.loads(line)
    opened = datetime.fromisoformat(event["occurred_at"])
    shift = now.date() - opened.date()
    event["occurred_at"] = now.isoformat()
    due = datetime.fromisoformat(event["due_date"]).date()
    event["due_date"] = (due + shift).isoformat()
    return json.dumps(event, ensure_ascii=False)


# ---- the lab's upstream systems ---------------------------------------------------------------


def _event(kind: str, event_id: str, now: datetime, **fields: Any) -> str:
    return json.dumps({"event_id": event_id, "type": kind, "occurred_at": now.isoformat(), **fields,
                       "actor": "lab"})


@dataclass
class Upstream:
    """What the lab's servicing systems do, day by day, from each account's ``lab`` profile."""

    profiles: dict[str, dict[str, Any]]  # account -> its debtor's simulation profile
    regions: dict[str, str]  # account -> region
    timezones: dict[str, str]
    sent: set[str] = field(default_factory=set)

    def _lab(self, account: str) -> dict[str, Any]:
        return self.profiles[account].get("lab") or {}

    def scheduled(self, day: int, now: datetime) -> list[str]:
        """Events due on ``day`` by the calendar: plans, disputes, the disaster."""
        lines = []
        for account in self.profiles:
            lab = self._lab(account)
            if lab.get("plan_day") == day:
                lines.append(_event("plan.accepted", f"lab-plan-{account}", now, account_id=account,
                                    periods=int(lab.get("plan_periods", 6))))
            if lab.get("dispute_day") == day:
                lines.append(_event("dispute.opened", f"lab-dispute-{account}", now, account_id=account,
                                    reason="the debtor says the amount is wrong"))
            if lab.get("dispute_day") is not None and lab["dispute_day"] + DISPUTE_RESOLVED_AFTER == day:
                lines.append(_event("dispute.resolved", f"lab-resolved-{account}", now, account_id=account,
                                    upheld=bool(lab.get("dispute_upheld"))))
        if day == DISASTER_DAY:
            hit = sorted({self.regions[a] for a in self.profiles if self._lab(a).get("disaster")})
            lines += [_event("disaster.declared", f"lab-disaster-{r}", now, region=r, days=DISASTER_DAYS)
                      for r in hit]
        return lines

    async def payments(self, db: Database, now: datetime) -> list[str]:
        """Payments the debtors make, by what the database says happened to them."""
        want = {a for a in self.profiles if any(k in self._lab(a) for k in
                                               ("keeps_promise", "pays_after_notice_days", "plan_day"))}
        if not want:
            return []
        async with db.sessions() as s:
            open_cases = {c.account_id: c.outstanding for c in (await s.scalars(
                select(Case).where(Case.account_id.in_(want), Case.closed_reason.is_(None)))).all()}
            contacts = (await s.scalars(select(ContactAttempt).where(
                ContactAttempt.account_id.in_(list(open_cases)),
                (ContactAttempt.promised_date.is_not(None)) | (ContactAttempt.outcome == "delivered")))).all()
            plans = (await s.scalars(select(InstallmentPlan).where(
                InstallmentPlan.account_id.in_(list(open_cases)), InstallmentPlan.status == "active"))).all()
        lines: list[str] = []
        for c in contacts:
            lab, outstanding = self._lab(c.account_id), open_cases.get(c.account_id)
            today = rules.local_date(now, self.timezones[c.account_id])
            if c.promised_date is not None and lab.get("keeps_promise") and today >= c.promised_date:
                self._pay(lines, f"promise-{c.account_id}-{c.promised_date}", c.account_id, outstanding, now)
            notice_days = lab.get("pays_after_notice_days")
            if c.outcome == "delivered" and notice_days is not None and \
                    now >= c.attempted_at + timedelta(days=int(notice_days)):
                self._pay(lines, f"notice-{c.account_id}", c.account_id, outstanding, now)
        for plan in plans:
            lab = self._lab(plan.account_id)
            today = rules.local_date(now, self.timezones[plan.account_id])
            pays = int(lab.get("plan_pays", len(plan.schedule)))
            for i, item in enumerate(plan.schedule[:pays]):
                if today >= datetime.fromisoformat(item["due_on"]).date():
                    self._pay(lines, f"plan-{plan.account_id}-{i}", plan.account_id, Decimal(item["amount"]), now)
        return lines

    def _pay(self, lines: list[str], ref: str, account: str, amount: Decimal | None, now: datetime) -> None:
        if ref in self.sent or amount is None or amount <= 0:
            return
        self.sent.add(ref)
        lines.append(_event("payment.received", f"lab-pay-{ref}", now, account_id=account, payment_id=ref,
                            amount=str(amount)))


# ---- the run ------------------------------------------------------------------------------------


def test_server() -> str:
    candidate = Path(sys.prefix) / "bin" / "temporal-test-server"
    found = str(candidate) if candidate.exists() else shutil.which("temporal-test-server")
    if not found:
        raise LabError("temporal-test-server not found: install the project's test dependencies")
    return found


Progress = Callable[[str, int, int], None]  # (phase, done, total)


async def run(req: LabRequest, progress: Progress | None = None) -> dict[str, Any]:
    """The whole run; returns the report (also written to ``DIR/report.json``)."""
    check(req)
    lines = population_lines(req)
    req.out.mkdir(parents=True, exist_ok=True)
    (req.out / "population.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    url = f"sqlite+aiosqlite:///{(req.out / 'lab.db').resolve()}"
    await upgrade(url)
    note = progress or (lambda *_: None)
    # Core's log lines through the project's logs (the CLI keeps errors only), not on the console
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server(),
                                                             runtime=temporal_runtime(),
                                                             data_converter=DATA_CONVERTER) as env:
        await register_search_attributes(env.client)
        async with Database(url) as db:
            started, cohorts, wall = await _simulate(env, db, url, req, lines, note)
            result = await lab_report.build(db, url, req, cohorts, started, wall)
    lab_report.write(req.out, result)
    return result


async def _simulate(env: WorkflowEnvironment, db: Database, url: str, req: LabRequest, lines: list[str],
                    note: Progress) -> tuple[datetime, list[Cohort], float]:
    cohorts = [Cohort(CHAMPION, req.strategy, _settings(url, req.strategy))]
    if req.challenger is not None:
        cohorts.append(Cohort(CHALLENGER, req.challenger, _settings(url, req.challenger)))
    by_cohort: dict[str, list[str]] = {c.name: [] for c in cohorts}
    upstream = Upstream({}, {}, {})
    now = opened = await env.get_current_time()
    for line in lines:
        event = json.loads(rebase(line, now))
        debtor = event["debtor"]
        name = CHALLENGER if req.challenger and in_challenger(req.seed, debtor["debtor_id"], req.split) else CHAMPION
        by_cohort[name].append(json.dumps(event, ensure_ascii=False))
        account = event["account_id"]
        upstream.profiles[account] = debtor.get("simulation", {})
        upstream.regions[account], upstream.timezones[account] = debtor["region"], debtor["timezone"]
        next(c for c in cohorts if c.name == name).accounts.append(account)
    wall = time.monotonic()
    async with build_worker(env.client, task_queue=TASK_QUEUE, database_url=url, settings=cohorts[0].settings,
                            adapters=simulated_adapters(), **worker_tuning()):
        total = len(lines)
        for cohort in cohorts:
            done = sum(len(c.accounts) for c in cohorts[:cohorts.index(cohort)])
            report = await Ingestor(env.client, db, cohort.settings).ingest_lines(
                by_cohort[cohort.name], source=f"lab-{cohort.name}", concurrency=INGEST_CONCURRENCY,
                progress=lambda r, d=done: note("ingest", d + r.processed, total))
            if report.rejected:
                raise LabError(f"the intake rejected {report.rejected} population lines: "
                               f"line {report.rejects[0][0]}: {report.rejects[0][1]}")
        day_ingest = Ingestor(env.client, db, cohorts[0].settings)
        for day in range(1, req.days + 1):
            await skip(env, timedelta(days=1))
            now = await env.get_current_time()
            events = upstream.scheduled(day, now) + await upstream.payments(db, now)
            if events:
                await day_ingest.ingest_lines(events, source="lab-upstream", concurrency=INGEST_CONCURRENCY)
            note("day", day, req.days)
    return opened, cohorts, time.monotonic() - wall


SKIP_HOPS = 4  # a day in hops of 6 hours: each skip has less to fire before it answers
SKIP_TIMEOUT = timedelta(minutes=15)  # a skip answers once every timer and task due in it is done


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Move the test server's clock on (``env.sleep``), in hops, each with a deadline long
    enough for a large population (the default deadline expired on 1,000 debtors)."""
    for _ in range(SKIP_HOPS):
        request = SleepRequest()
        request.duration.FromTimedelta(duration / SKIP_HOPS)
        await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=SKIP_TIMEOUT)


def worker_tuning() -> dict[str, Any]:
    """Worker options for a lab run (figures in docs/lab.md); the workflow
    runner is the worker's (worker.py: no sandbox, the case's module loaded
    once)."""
    return {"max_concurrent_activities": int(os.environ.get("LAB_MAX_ACTIVITIES", "16")),
            "max_concurrent_workflow_tasks": int(os.environ.get("LAB_MAX_WORKFLOW_TASKS", "16")),
            "workflow_runner": WORKFLOW_RUNNER}
