"""Logs are safe to ship: JSON lines, the case bound, personal data masked
(phones, PRC ID numbers, names, addresses) in every kind of line, and the
Temporal SDK's own loggers kept quiet below WARNING."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from datetime import time

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from support.logs import configure_logging, get_logger, mask_text, temporal_runtime
from tests.helpers import STARTED, TrackingIngestor, advance_to_local, default_event, settings_for, uid
from worker import build_worker
from workflows import rules
from workflows.model import case_workflow_id

DAYTIME_ZONES = ("Asia/Shanghai", "Asia/Kolkata", "Europe/London", "America/New_York", "America/Los_Angeles",
                 "Pacific/Honolulu", "Pacific/Auckland")

PHONES = ["+86 138 0013 8000", "13912345678", "+86-139-1234-5678", "(021) 6234 5678"]
ID_18 = "110101199003074578"
ID_18X = "44030419851231002X"
ID_15 = "110101900307457"
NAMES = ["Wang Xiaoming", "王小明"]



def lines_of(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_no_personal_data(text: str) -> None:
    # every run of digits, however separated (spaces, dashes, brackets), read as one number
    numbers = ["".join(c for c in m.group() if c.isdigit()) for m in re.finditer(r"\d[\d\s\-()]*\d", text)]
    for phone in PHONES:
        assert phone not in text, phone
        national = "".join(c for c in phone if c.isdigit())[-8:]
        assert not any(national in n for n in numbers), phone
    for number in (ID_18, ID_18X, ID_15, ID_18X[:-1]):
        assert number not in text, number
    for name in NAMES:
        assert name not in text, name
    assert "Xiaoming" not in text and "小明" not in text


def test_structured_fields_and_free_text_are_masked(log_stream):
    get_logger(account_id="A-1", step="human_call", attempt=2).info(
        "debtor details",
        phone=PHONES[0], mobile=PHONES[1], phones=[PHONES[2], PHONES[3]],
        name=NAMES[0], debtor_name=NAMES[1], id_number=ID_18, id_card=ID_18X, national_id=ID_15,
        address="Room 5, 88 Nanjing Road, Shanghai",
        debtor={"name": NAMES[0], "phone": PHONES[1], "id_number": ID_18X, "address": "somewhere 12"},
        note=f"debtor {ID_18} / {ID_18X} / {ID_15} said call me on {PHONES[0]} or {PHONES[1]} or {PHONES[3]}",
    )
    text = log_stream.getvalue()
    assert_no_personal_data(text)
    (line,) = lines_of(log_stream)
    assert line["account_id"] == "A-1" and line["case_id"] == "case-A-1"
    assert line["step"] == "human_call" and line["attempt"] == 2 and line["level"] == "info"
    assert line["phone"] == "***8000" and line["name"] == "W**" and line["debtor_name"] == "王**"
    assert line["id_number"] == "110101********8" and line["id_card"] == "440304********X"
    assert line["address"] == "[address]" and line["debtor"]["address"] == "[address]"
    assert line["debtor"]["name"] == "W**" and line["debtor"]["phone"] == "***5678"


def test_exception_text_is_masked(log_stream):
    try:
        raise ValueError(f"lookup failed for {ID_18X} at {PHONES[1]}")
    except ValueError:
        get_logger(account_id="A-2").exception("skip trace failed")
    assert_no_personal_data(log_stream.getvalue())
    assert "440304********X" in log_stream.getvalue()


def test_standard_library_loggers_are_json_and_masked_and_the_sdk_stays_quiet(log_stream):
    logging.getLogger("temporalio.worker._workflow").info("polled a task for %s", PHONES[1])
    logging.getLogger("temporalio.activity").info("activity heartbeat")
    logging.getLogger("sqlalchemy.engine").info("SELECT 1")
    logging.getLogger("temporalio.worker._workflow").warning("task failed for debtor %s id %s", NAMES[0], ID_18)
    logging.getLogger("temporalio.workflow").info("event noted", extra={
        "temporal_workflow": {"workflow_id": "case-A-3", "workflow_type": "DelinquentAccountWorkflow"}})
    lines = lines_of(log_stream)
    assert [line["level"] for line in lines] == ["warning", "info"]
    assert lines[0]["logger"] == "temporalio.worker._workflow" and ID_18 not in lines[0]["event"]
    assert "110101********8" in lines[0]["event"]
    assert lines[1]["case_id"] == "case-A-3"
    assert not logging.getLogger("temporalio").isEnabledFor(logging.INFO)
    assert not logging.getLogger("temporalio.bridge.worker").isEnabledFor(logging.INFO)


async def test_inside_an_activity_the_case_and_retry_attempt_are_bound(log_stream):
    @activity.defn(name="probe")
    async def probe() -> None:
        get_logger(account_id="A-4", step="voice_robot", attempt=1).info("contact", phone=PHONES[0])

    env = ActivityEnvironment()
    env.info = __import__("dataclasses").replace(env.info, workflow_id="case-A-4", attempt=3)
    await env.run(probe)
    (line,) = lines_of(log_stream)
    assert line["case_id"] == "case-A-4" and line["activity_attempt"] == 3 and line["attempt"] == 1
    assert line["phone"] == "***8000"


def test_mask_text_leaves_amounts_dates_and_ids_of_ours_alone():
    text = "ACC-1001 paid 1200.50 CNY on 2026-09-30 at 2026-11-24T10:00:00+08:00, 3 calls"
    assert mask_text(text) == text
    text = "worker 127.0.0.1:7233 v1.35.0 paid 12000.50 on 2026.11.24 (ref 10.20.30)"
    assert mask_text(text) == text


def test_dotted_phone_numbers_and_email_addresses_are_masked(log_stream):
    note = "call +86.138.0013.8501 or 138.0013.8502, mail wang.fang+debt@example.com."
    get_logger().info("reachable", note=note, email="li.na@corp.example.cn")
    text = log_stream.getvalue()
    for secret in ("0013.8501", "0013.8502", "wang.fang", "example.com", "li.na", "corp.example"):
        assert secret not in text, secret
    (line,) = lines_of(log_stream)
    assert line["note"] == "call ***8501 or ***8502, mail [email]."


async def test_a_worker_logs_steps_not_polls(env, db, task_queue, log_stream):
    """An idle worker writes no info line; a case writes its steps, each with the
    case bound; Core's own warnings come through as JSON too (as in worker.py)."""
    client = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace,
                                  runtime=temporal_runtime())
    async with build_worker(client, task_queue=task_queue, database_url=db.url):
        await asyncio.sleep(1.5)  # several long polls' worth of idling
        idle = lines_of(log_stream)
        # a debtor where it is daytime now, so the day-0 call is placed at once (no
        # quiet hours, and no skipping of the test server's clock under a live worker)
        now = await env.get_current_time()
        tz = next((z for z in DAYTIME_ZONES if 9 <= rules.local_datetime(now, z).hour < 20), None)
        if tz is None:
            tz, now = "Asia/Shanghai", await advance_to_local(env, "Asia/Shanghai", time(10, 0))
        acct = f"ACC-{uid()}"
        ingestor = TrackingIngestor(env.client, db, settings_for(db, task_queue))
        ev = default_event(acct, occurred_at=now, tz=tz)
        await ingestor.ingest_lines([json.dumps(ev)], source="t")
        STARTED.append(env.client.get_workflow_handle(case_workflow_id(acct)))
        # up to 30 s: on a loaded machine (CI runs PostgreSQL and a dev server
        # beside it) the first workflow task can take seconds
        for _ in range(300):
            if any(line.get("step") == "voice_robot" for line in lines_of(log_stream)):
                break
            await asyncio.sleep(0.1)
    assert [line for line in idle if line["level"] not in ("warning", "error")] == []
    lines = lines_of(log_stream)
    steps = [line for line in lines if line.get("account_id") == acct]
    assert steps and all(line["case_id"] == case_workflow_id(acct) for line in steps)
    assert not any(line.get("logger", "").startswith("temporalio") and line["level"] in ("debug", "info")
                   and "case_id" not in line for line in lines)
    assert_no_personal_data(log_stream.getvalue())
