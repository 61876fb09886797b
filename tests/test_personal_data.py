"""No personal data rests in Temporal, even without payload encryption
(SPEC §8): cases started by the intake carry the pseudonymous debtor id, and
activities read the phone, address, income and simulation profile from the
database.  Every path a case takes is run in clear and its whole history,
description (search attributes, summary, current details) searched."""

from __future__ import annotations

import base64
import json
import re
from datetime import time, timedelta

from google.protobuf import json_format
from sqlalchemy import select

from db import evidence
from db.models import Debtor as DebtorRow, EvidenceEntry
from intake.events import canonical
from tests.helpers import advance_to_local, default_event, ingestor, signal, uid
from worker import build_worker
from workflows.model import PlanRequest, case_workflow_id

TZ = "Asia/Shanghai"


def secrets_of(n: int) -> dict:
    """A debtor's contact details, distinct for each case."""
    return {"phone": f"+86 (137) {n}482-96{n}1", "address": f"Flat {n}B, {n}7 Hidden Orchard Road, Kunming",
            "monthly_disposable_income": f"{n}913.47"}


def digit_runs(text: str) -> set[str]:
    """Every run of digits with separators a phone number is written with, as digits only."""
    return {re.sub(r"\D", "", m) for m in re.findall(r"\d[\d ()+\-.]*\d", text)}


def stored_text(*blobs: str) -> str:
    """The JSON and every base64 string in it, decoded (payload data and metadata)."""
    text = "".join(blobs)
    return text + "".join(base64.b64decode(b).decode("latin-1")
                          for b in re.findall(r'"([A-Za-z0-9+/]{4,}={0,2})"', text) if len(b) % 4 == 0)


def leaks(stored: str, secret: dict) -> list[str]:
    runs = digit_runs(stored)
    phone = re.sub(r"\D", "", secret["phone"])
    found = [what for what in ("phone", "address", "monthly_disposable_income") if secret[what] in stored]
    found += ["phone digits" for r in runs if phone[2:] in r]  # with or without the country code
    found += ["address part" for part in secret["address"].split(", ") if part in stored]
    income = secret["monthly_disposable_income"]
    found += ["income digits" for r in runs if r == re.sub(r"\D", "", income)]
    return found


async def test_no_phone_address_or_income_in_any_history_description_or_search_attribute(env, db, task_queue):
    start = await advance_to_local(env, TZ, time(10, 0))
    run = uid()
    answers_promise = {"answers": True, "promises_in_days": 2}
    cases = {
        # the ladder: an answered call with a promise, then a payment
        "promise": dict(simulation=answers_promise),
        # grade III: the skip trace finds a number, which the ladder then dials
        "skip trace": dict(grade="III", simulation={"skip_trace_phone": "+86 136 5550 4417"}),
        # grade I with income: a plan offered (30 % of income), accepted, an installment paid
        "plan": dict(grade="I", amount="5000.00"),
        # answers, never pays: the legal notice, then a payment order (needs a known address)
        "legal": dict(simulation={"answers": True}),
        # the notice not delivered electronically: sent by post (to the address on file)
        "post": dict(simulation={"answers": True, "letter_undelivered": True}),
    }
    events, secret = {}, {}
    for n, (name, extra) in enumerate(cases.items(), start=1):
        account = f"PD-{run}-{n}"
        secret[name] = secrets_of(n)
        events[name] = default_event(account, occurred_at=start, debtor=dict(secret[name]), **extra)
    # A skip-traced number is personal data too.
    secret["skip trace"]["traced"] = "+86 136 5550 4417"
    intake = ingestor(env, db, task_queue)
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        report = await intake.ingest_lines([json.dumps(e) for e in events.values()], source="t")
        handles = {name: env.client.get_workflow_handle(case_workflow_id(e["account_id"]))
                   for name, e in events.items()}
        await env.sleep(timedelta(hours=1))
        offered = await handles["plan"].query("status")
        plan = await handles["plan"].execute_update("accept_plan", PlanRequest(6), result_type=dict)
        await env.sleep(timedelta(days=1))
        await signal(handles["promise"], env, "payment.received", account_id=events["promise"]["account_id"],
                     payment_id="P-1", amount=events["promise"]["amount_due"])
        await env.sleep(timedelta(days=24))
        await signal(handles["plan"], env, "payment.received", account_id=events["plan"]["account_id"],
                     payment_id="P-2", amount=plan["schedule"][0]["amount"])
        await env.sleep(timedelta(days=1))
        status = {name: await h.query("status") for name, h in handles.items()}
        metadata = {name: await h.query("__temporal_workflow_metadata") for name, h in handles.items()}
        described = {name: json_format.MessageToJson((await h.describe()).raw_description)
                     for name, h in handles.items()}
        histories = {name: (await h.fetch_history()).to_json() for name, h in handles.items()}

    assert report.accepted == len(cases)
    # each case ran its path
    assert status["promise"]["closed_reason"] == "paid"
    assert [r["step"] for r in status["skip trace"]["ladder"]][:1] == ["voice_robot"]
    assert offered["plan_offer"] == {"installment": "1174.04", "periods": 5}  # 30 % of 3913.47
    assert status["plan"]["plan"]["status"] == "active"
    assert status["legal"]["legal"]["track"] == "payment_order"
    assert "known address" in status["legal"]["legal"]["reason"]
    assert any(r["step"] == "legal_notice_post" and r["outcome"] == "posted" for r in status["post"]["ladder"])
    async with db.sessions() as s:
        traced = await s.get(DebtorRow, events["skip trace"]["debtor"]["debtor_id"])
        fingerprinted = (await s.scalars(select(EvidenceEntry.fingerprint).where(
            EvidenceEntry.account_id == events["legal"]["account_id"], EvidenceEntry.kind == "default_event"))).all()
    assert traced.phone == "+86 136 5550 4417"  # the traced number went to the database
    # the evidence is the event as received (read from ingested_events, not from the case's input)
    line = canonical(json.dumps(events["legal"]))
    assert fingerprinted == [evidence.fingerprint(evidence.canonical_json(
        {"event": line, "contract_id": events["legal"]["contract_id"]}))]

    for name in cases:
        stored = stored_text(histories[name], described[name], json.dumps(metadata[name], default=str))
        assert events[name]["debtor"]["debtor_id"] in stored  # the pseudonymous id does travel
        found = leaks(stored, secret[name])
        if name == "skip trace":
            traced_digits = re.sub(r"\D", "", secret[name]["traced"])
            found += ["traced phone" for r in digit_runs(stored) if traced_digits[2:] in r]
        assert found == [], f"{name}: {found}"
