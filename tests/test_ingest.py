"""Ingest: the input contract of SPEC §5, rejects, idempotency, dispatch."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError

import starter
from db.models import IngestedEvent, Payment, RejectedEvent
from tests.helpers import uid, STARTED, TrackingIngestor as Ingestor, default_event, point_cli_at, settings_for
from worker import build_worker
from workflows.model import case_workflow_id


def account_event(kind: str, account_id: str, **fields) -> dict:
    return {"event_id": f"ev-{uid()}", "type": kind, "occurred_at": "2026-11-24T10:00:00+08:00",
            "account_id": account_id, **fields}


def malformed_lines(known: str) -> list[tuple[str, str]]:
    """(line, the reason it must be rejected with) for every kind of bad input of SPEC §5."""
    good = default_event(f"ACC-{uid()}", occurred_at=__import__("datetime").datetime.fromisoformat(
        "2026-11-24T10:00:00+08:00"))

    def variant(**changes) -> str:
        ev = json.loads(json.dumps(good))
        ev["event_id"] = f"ev-{uid()}"
        ev["account_id"] = f"ACC-{uid()}"
        for k, v in changes.items():
            if v is None:
                ev.pop(k, None)
            else:
                ev[k] = v
        return json.dumps(ev)

    no_phone = json.loads(variant())
    del no_phone["debtor"]["phone"]
    bad_age = json.loads(variant())
    bad_age["debtor"]["age"] = "41"
    unknown_debtor_field = json.loads(variant())
    unknown_debtor_field["debtor"]["name"] = "Wang Fang"
    bad_tz = json.loads(variant())
    bad_tz["debtor"]["timezone"] = "Asia/Atlantis"
    return [
        ('{"event_id": "x", "type": ', "not valid JSON"),
        ("[1, 2, 3]", "must be a JSON object"),
        ('"just a string"', "must be a JSON object"),
        (variant(type="account.exploded"), "unknown event type 'account.exploded'"),
        (variant(type=None), "missing field type"),
        (variant(contract_id=None), "missing field contract_id"),
        (variant(event_id=None), "missing field event_id"),
        (json.dumps(no_phone), "missing field debtor.phone"),
        (variant(amount_due=1200.5), "wrong type for amount_due"),
        (variant(amount_due="-10.00"), "must not be negative"),
        (variant(amount_due="12,00"), "must be a decimal string"),
        (variant(amount_due="1e3"), "must be a decimal string"),
        (variant(amount_due="10.005"), "fractions of a cent"),
        (variant(amount_due="1" * 30), "too large"),
        (variant(due_date="30/09/2026"), "due_date"),
        (variant(occurred_at="2026-11-24T10:00:00"), "UTC offset"),
        (variant(grade="IV"), "grade"),
        (variant(asset_flight_risk="yes"), "wrong type for asset_flight_risk"),
        (json.dumps(bad_age), "wrong type for debtor.age"),
        (json.dumps(bad_tz), "unknown IANA time zone"),
        (json.dumps(account_event("payment.received", known, payment_id="P1", amount="-5.00")), "must not be negative"),
        (json.dumps(account_event("payment.received", known, payment_id="P1", amount=5)), "wrong type for amount"),
        (json.dumps(account_event("payment.received", known, payment_id="P1", amount="0.00")), "greater than zero"),
        (json.dumps(account_event("payment.received", known, amount="5.00")), "missing field payment_id"),
        (json.dumps(account_event("payment.received", f"ACC-NOPE-{uid()}", payment_id="P9", amount="5.00")),
         "unknown account"),
        (json.dumps(account_event("dispute.resolved", known, upheld="true")), "wrong type for upheld"),
        (json.dumps(account_event("suspension.granted", known, months=25, reason="illness")), "months"),
        (json.dumps(account_event("suspension.granted", known, months=0, reason="illness")), "months"),
        (json.dumps(account_event("plan.accepted", known, periods=13)), "periods"),
        (json.dumps({"event_id": f"ev-{uid()}", "type": "disaster.declared",
                     "occurred_at": "2026-11-24T10:00:00+08:00"}), "missing field region"),
        (json.dumps(account_event("case.recalled", f"ACC-NOPE-{uid()}")), "unknown account"),
        (variant(amount_due_cents=120050), "unknown field amount_due_cents"),
        # hostile or absurd input: rejected per line, with its reason, on every backend
        (variant(contract_id="x" * 70_000), "longer than 64 KiB"),
        (variant(contract_id="@BAD@").replace("@BAD@", "\udcff\udcfe"), "not valid UTF-8"),  # undecodable bytes
        ('{"a": ' + "[" * 30_000 + "]" * 30_000 + "}", "nested"),
        (variant(debtor={"simulation": {"a": [[[[[[1]]]]]]}}), "nested more than 6 levels"),
        (variant(occurred_at="0001-01-01T00:00:00+00:00"), "between 1970 and 2999"),
        (variant(occurred_at="9999-12-31T23:59:59+00:00"), "between 1970 and 2999"),
        (variant(due_date="0001-01-01"), "between 1970-01-01 and 2999-12-31"),
        (variant(debtor=dict(good["debtor"], region="R" * 3000)), "debtor.region"),
        (variant(contract_id="K" * 65), "contract_id"),
        (variant(event_id="e" * 129), "event_id"),
        (variant(account_id="ACC-\u0000-1"), "NUL"),
        (variant(debtor=dict(good["debtor"], simulation={"pays_after": "voice", "pays_amount": "NaN"})),
         "decimal string"),
        (variant(debtor=dict(good["debtor"], simulation={"pays_after": "voice", "pays_amount": "-1000"})),
         "must not be negative"),
        (variant(debtor=dict(good["debtor"], simulation={"answers": True, "promises_in_days": 1e9})),
         "promises_in_days must be a number from 1 to 365"),
        (variant(debtor=dict(good["debtor"], simulation={"blob": "x" * 5000})), "larger than 4096"),
        (json.dumps(account_event("payment.received", known, payment_id="P" * 129, amount="5.00")), "payment_id"),
        (json.dumps(account_event("dispute.opened", known, reason="r" * 2001)), "reason"),
        (json.dumps(unknown_debtor_field), "unknown field debtor.name"),
        (json.dumps(account_event("payment.received", known, payment_id="P1", amount="5.00", actor="")),
         "invalid actor"),
    ]


@pytest.fixture
async def ingestor(running, db, task_queue):
    yield Ingestor(running.env.client, db, settings_for(db, task_queue))


async def test_every_malformed_line_is_rejected_with_its_reason_and_changes_nothing(ingestor, db, env, tmp_path):
    known = f"ACC-{uid()}"
    now = await env.get_current_time()
    opening = json.dumps(default_event(known, occurred_at=now))
    cases = malformed_lines(known)
    lines = [opening] + [line for line, _ in cases]
    rejects = tmp_path / "rejects.jsonl"
    report = await ingestor.ingest_lines(lines, source="bad.jsonl", rejects_path=rejects)

    assert report.accepted == 1 and report.rejected == len(cases)
    for (line_no, reason), (_, expected) in zip(report.rejects, cases):
        assert expected in reason, f"line {line_no}: {reason!r} should mention {expected!r}"
    assert [n for n, _ in report.rejects] == list(range(2, len(cases) + 2))
    stored = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in stored] == report.rejects
    async with db.sessions() as s:
        rows = (await s.scalars(select(RejectedEvent).order_by(RejectedEvent.line_no))).all()
        accepted = (await s.scalars(select(IngestedEvent.event_id))).all()
    assert [(r.line_no, r.reason) for r in rows] == report.rejects
    assert len(accepted) == 1  # only the opening event reached the case store
    # No rejected default started a case.
    for line, _ in cases:
        try:
            account = json.loads(line).get("account_id")
        except (ValueError, AttributeError, RecursionError):
            continue
        if account and account != known:
            with pytest.raises(RPCError):
                await env.client.get_workflow_handle(case_workflow_id(account)).describe()


async def test_an_event_may_name_its_actor_and_it_is_kept_with_the_event(ingestor, db, env):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    opening = default_event(acct, occurred_at=now, actor="loan-servicing")
    payment = account_event("payment.received", acct, payment_id=f"P-{uid()}", amount="5.00", actor="op.li")
    report = await ingestor.ingest_lines([json.dumps(opening), json.dumps(payment)], source="t")
    assert (report.accepted, report.rejected) == (2, 0), report.rejects
    async with db.sessions() as s:
        kept = {e.type: json.loads(e.payload)["actor"] for e in (await s.scalars(
            select(IngestedEvent).where(IngestedEvent.account_id == acct))).all()}
    assert kept == {"account.defaulted": "loan-servicing", "payment.received": "op.li"}


async def test_reingesting_a_file_changes_nothing(ingestor, db, env):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    lines = [json.dumps(default_event(acct, occurred_at=now, amount="500.00")),
             json.dumps(account_event("payment.received", acct, payment_id=f"P-{uid()}", amount="100.00"))]
    first = await ingestor.ingest_lines(lines, source="f")
    await env.sleep(timedelta(seconds=5))
    status_before = await env.client.get_workflow_handle(case_workflow_id(acct)).query("status")
    second = await ingestor.ingest_lines(lines, source="f")
    await env.sleep(timedelta(seconds=5))
    status_after = await env.client.get_workflow_handle(case_workflow_id(acct)).query("status")
    assert (first.accepted, first.duplicate) == (2, 0)
    assert (second.accepted, second.duplicate, second.rejected) == (0, 2, 0)
    assert status_before["outstanding"] == status_after["outstanding"] == "400.00"
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Payment)) == 1


async def test_a_second_default_for_an_open_account_is_rejected(ingestor, env):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    report = await ingestor.ingest_lines(
        [json.dumps(default_event(acct, occurred_at=now)), json.dumps(default_event(acct, occurred_at=now))],
        source="twice")
    assert report.accepted == 1 and report.rejected == 1
    assert "already has a case" in report.rejects[0][1]


async def test_full_payment_closes_the_case_and_a_late_payment_is_still_recorded(ingestor, db, env):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    await ingestor.ingest_lines([
        json.dumps(default_event(acct, occurred_at=now, amount="250.00")),
        json.dumps(account_event("payment.received", acct, payment_id="P-FULL", amount="250.00")),
    ], source="pay")
    result = await env.client.get_workflow_handle(case_workflow_id(acct)).result()
    assert result["closed_reason"] == "paid"
    late = await ingestor.ingest_lines(
        [json.dumps(account_event("payment.received", acct, payment_id="P-LATE", amount="20.00")),
         json.dumps(account_event("case.recalled", acct))], source="late")
    assert (late.accepted, late.no_effect, late.rejected) == (2, 1, 0)  # the recall changes nothing, and says so
    async with db.sessions() as s:
        recall = (await s.scalars(select(IngestedEvent).where(
            IngestedEvent.account_id == acct, IngestedEvent.type == "case.recalled"))).one()
    assert (recall.status, recall.detail) == ("no_effect", "no effect: case is closed (paid)")
    async with db.sessions() as s:
        sources = dict((await s.execute(select(Payment.payment_id, Payment.source))).all())
    assert sources == {"P-FULL": "event", "P-LATE": "late"}


async def test_cli_ingest_prints_counts_and_exits_nonzero_on_rejects(env, db, task_queue, tmp_path, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(default_event(f"ACC-{uid()}", occurred_at=now)) + "\nnot json\n")
    async with build_worker(env.client, task_queue=task_queue, database_url=db.url):
        STARTED.append(env.client.get_workflow_handle(case_workflow_id(json.loads(path.read_text().splitlines()[0])["account_id"])))
        code = await starter.main(["ingest", str(path)])
        again = await starter.main(["ingest", str(path)])
    out = capsys.readouterr()
    assert code == 1 and again == 1
    assert "accepted 1, duplicate 0, rejected 1" in out.out
    assert "accepted 0, duplicate 1, rejected 1" in out.out
    assert "line 2: not valid JSON" in out.err
    assert Path(str(path).replace(".jsonl", ".rejects.jsonl")).exists()


async def test_parallel_ingest_keeps_each_accounts_events_in_order(ingestor, db, env):
    now = await env.get_current_time()
    accounts = [f"ACC-{uid()}" for _ in range(12)]
    defaults = [json.dumps(default_event(a, occurred_at=now, amount="90.00")) for a in accounts]
    payments = [json.dumps(account_event("payment.received", a, payment_id=f"P-{uid()}", amount="30.00"))
                for a in accounts]
    # each account's default is followed, a few lines later, by its payment
    lines = [x for pair in zip(defaults, payments) for x in pair]
    report = await ingestor.ingest_lines(lines, source="parallel", concurrency=8)
    assert (report.accepted, report.rejected) == (24, 0), report.rejects
    await env.sleep(timedelta(seconds=5))
    for a in accounts:
        status = await env.client.get_workflow_handle(case_workflow_id(a)).query("status")
        assert status["outstanding"] == "60.00"


async def test_a_payment_for_an_account_whose_case_never_opened_is_rejected(ingestor, db, env):
    """Its default was accepted but no case exists (e.g. the namespace was reset):
    the payment is refused with the reason, never stored as a 'late payment'."""
    acct = f"ACC-{uid()}"
    async with db.transaction() as s:
        s.add(IngestedEvent(event_id=f"ev-{uid()}", type="account.defaulted", account_id=acct, payload="{}",
                            status="dispatched", received_at=await env.get_current_time()))
    report = await ingestor.ingest_lines(
        [json.dumps(account_event("payment.received", acct, payment_id="P-ORPHAN", amount="20.00"))], source="t")
    assert (report.accepted, report.rejected) == (0, 1)
    assert report.rejects[0][1] == f"account {acct} has no case (its case never opened)"
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Payment).where(Payment.account_id == acct)) == 0


async def test_an_event_id_used_again_for_other_content_is_a_conflict_not_a_duplicate(ingestor, db, env):
    now = await env.get_current_time()
    acct = f"ACC-{uid()}"
    payment = account_event("payment.received", acct, payment_id=f"P-{uid()}", amount="100.00")
    resent = dict(payment, occurred_at="2026-11-25T09:00:00+08:00", actor="op.li")  # a retried command
    conflict = dict(payment, amount="900.00")  # the same id, another payment
    report = await ingestor.ingest_lines([json.dumps(default_event(acct, occurred_at=now, amount="500.00")),
                                          json.dumps(payment), json.dumps(resent), json.dumps(conflict)], source="t")
    assert (report.accepted, report.duplicate, report.rejected) == (2, 1, 1)
    assert report.rejects == [(4, f"event id {payment['event_id']} was already used for a different event "
                                  f"(payment.received for {acct})")]
    await env.sleep(timedelta(seconds=5))
    status = await env.client.get_workflow_handle(case_workflow_id(acct)).query("status")
    assert status["outstanding"] == "400.00"  # the first payment only


@pytest.mark.parametrize("overrides", [
    {}, {"strategy": str(Path(__file__).resolve().parent.parent / "samples" / "strategies" / "letter-first.toml"),
         "call_centre": "desk", "court": "desk", "desk_teams": "team-a", "installment_grace_days": 5},
])
async def test_a_new_cases_start_payload_is_its_case_inputs(db, task_queue, overrides):
    """The intake starts a case with its CaseInput's JSON built from parts made once
    per settings: the payload is byte for byte the CaseInput's, for any event."""
    from temporalio.converter import DataConverter

    from intake.events import parse_event
    from intake.ingest import Ingestor as Plain, to_default_event

    convert = DataConverter.default.payload_converter.to_payloads
    intake = Plain(None, db, settings_for(db, task_queue, **overrides))  # type: ignore[arg-type]
    at = datetime.fromisoformat("2026-11-24T10:00:00+08:00")
    events = [default_event(f"A-P-{uid()}", occurred_at=at, age=age, team_id=team, grade=grade,
                            debtor={"dialect": "Cantonese", "monthly_disposable_income": "3000.00"} if age > 60 else {})
              for age, team, grade in ((41, "team-a", None), (67, "team-b", "II"), (30, None, "I"))]
    for event in events:
        default = to_default_event(parse_event(json.dumps(event)))
        assert convert([intake._case_payload(default)]) == convert([intake.case_input(default)])
