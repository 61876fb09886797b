"""Operator command line for the collections orchestrator.

    python starter.py migrate                 apply database migrations
    python starter.py ingest FILE|-           ingest JSON Lines events
    python starter.py emit TYPE field=value…  emit one event without writing JSON
    python starter.py status ACCOUNT_ID       the case's status query, as JSON
    python starter.py cases                   a table of cases from the database
    python starter.py verify-evidence         check the evidence log's hash chain
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client
from temporalio.service import RPCError

from activities.events import EVENT_TYPES
from activities.ingest import Ingestor
from activities.logs import configure_logging
from db import evidence
from db.migrate import upgrade
from db.models import Case
from db.session import Database
from workflows import rules
from workflows.model import case_workflow_id
from worker import connect, task_queue_from_env

INT_FIELDS = {"months", "periods", "days", "age"}
BOOL_FIELDS = {"upheld", "asset_flight_risk"}


def build_event(kind: str, pairs: list[str]) -> str:
    """An event line from ``field=value`` pairs (money stays a decimal string)."""
    if kind not in EVENT_TYPES:
        raise SystemExit(f"unknown event type {kind!r}; one of: {', '.join(sorted(EVENT_TYPES))}")
    event: dict = {
        "event_id": f"op-{uuid.uuid4()}", "type": kind,
        "occurred_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected field=value, got {pair!r}")
        key = key.replace("-", "_")
        if key in INT_FIELDS:
            try:
                event[key] = int(value)
            except ValueError:
                raise SystemExit(f"{key} must be a whole number, got {value!r}") from None
        elif key in BOOL_FIELDS:
            if value.lower() not in {"true", "false", "yes", "no"}:
                raise SystemExit(f"{key} must be true or false, got {value!r}")
            event[key] = value.lower() in {"true", "yes"}
        else:
            event[key] = value
    return json.dumps(event, ensure_ascii=False)


async def run_ingest(lines, source: str, rejects: Path | None, as_json: bool = False) -> int:
    client = await connect()
    async with Database() as db:
        report = await Ingestor(client, db, task_queue_from_env()).ingest_lines(lines, source=source, rejects_path=rejects)
    if as_json:
        print(json.dumps({**report.as_dict(), "rejects": [{"line": n, "reason": r} for n, r in report.rejects]}))
    else:
        print(f"accepted {report.accepted}, duplicate {report.duplicate}, rejected {report.rejected}")
        for line_no, reason in report.rejects:
            print(f"  line {line_no}: {reason}", file=sys.stderr)
        if report.rejects_file:
            print(f"rejected lines written to {report.rejects_file}", file=sys.stderr)
    return 1 if report.rejected else 0


async def cmd_status(client: Client, account_id: str) -> int:
    try:
        status = await client.get_workflow_handle(case_workflow_id(account_id)).query("status")
    except RPCError as e:
        print(f"no case for account {account_id}: {e.message}", file=sys.stderr)
        return 2
    print(json.dumps(status, indent=2, ensure_ascii=False))
    return 0


async def cmd_cases(limit: int) -> int:
    """Cases from the database, with live state from each case's status query."""
    async with Database() as db, db.sessions() as s:
        rows = (await s.scalars(select(Case).order_by(Case.opened_at, Case.account_id).limit(limit))).all()
    try:
        client = await connect()
    except Exception:  # Temporal down: the database alone still answers
        client = None
    gate = asyncio.Semaphore(20)

    async def live(case: Case) -> dict | None:
        if client is None:
            return None
        async with gate:
            try:
                return await client.get_workflow_handle(case.workflow_id).query("status")
            except Exception:
                return None

    states = await asyncio.gather(*(live(c) for c in rows))
    table = []
    for c, st in zip(rows, states):
        st = st or {"stage": c.stage, "grade": c.grade, "outstanding": str(c.outstanding), "paused_by": [],
                    "next_action": None, "next_action_at": None, "closed_reason": c.closed_reason}
        when = ""
        if st.get("next_action_at"):
            when = rules.local_datetime(datetime.fromisoformat(st["next_action_at"]), st.get("timezone") or "UTC") \
                .strftime("%m-%d %H:%M local")
        table.append([c.account_id, c.region, st["grade"], st["stage"], f"{st['outstanding']} {c.currency}",
                      ",".join(st["paused_by"]), st.get("next_action") or "", when, st.get("closed_reason") or ""])
    print_table(["account", "region", "grade", "stage", "outstanding", "paused", "next", "at", "closed"], table)
    return 0


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))


async def cmd_verify() -> int:
    async with Database() as db:
        report = await evidence.verify_chain(db)
    if report.ok:
        print(f"evidence chain intact: {report.entries} entries")
        return 0
    print(f"evidence chain BROKEN at seq {report.broken_at_seq}: {report.reason}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description="Operate collections cases.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="apply Alembic migrations to DATABASE_URL")
    pi = sub.add_parser("ingest", help="ingest events from a JSON Lines file, or - for stdin")
    pi.add_argument("file")
    pi.add_argument("--rejects", help="rejects file (default FILE.rejects.jsonl, or rejects.jsonl for stdin)")
    pi.add_argument("--json", action="store_true", help="print the counts as JSON")
    pe = sub.add_parser("emit", help="emit one event: emit payment.received account_id=A1 payment_id=P1 amount=100.00")
    pe.add_argument("type", help=", ".join(sorted(EVENT_TYPES)))
    pe.add_argument("fields", nargs="*", metavar="field=value")
    pe.add_argument("--json", action="store_true")
    ps = sub.add_parser("status", help="print a case's status query as JSON")
    ps.add_argument("account_id")
    pc = sub.add_parser("cases", help="a table of cases from the database")
    pc.add_argument("--limit", type=int, default=200)
    sub.add_parser("verify-evidence", help="verify the evidence log's hash chain")
    return p


async def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("WARNING")
    if args.cmd == "migrate":
        await upgrade()
        print("database migrated")
        return 0
    if args.cmd == "ingest":
        if args.file == "-":
            return await run_ingest(sys.stdin, "stdin", Path(args.rejects or "rejects.jsonl"), args.json)
        path = Path(args.file)
        if not path.is_file():
            print(f"no such file: {path}", file=sys.stderr)
            return 2
        with path.open(encoding="utf-8") as f:
            rejects = Path(args.rejects) if args.rejects else path.with_suffix(".rejects.jsonl")
            return await run_ingest(f, str(path), rejects, args.json)
    if args.cmd == "emit":
        line = build_event(args.type, args.fields)
        return await run_ingest([line], "cli", None, args.json)
    if args.cmd == "status":
        return await cmd_status(await connect(), args.account_id)
    if args.cmd == "cases":
        return await cmd_cases(args.limit)
    if args.cmd == "verify-evidence":
        return await cmd_verify()
    return 2


def run() -> int:
    try:
        return asyncio.run(main())
    except DBAPIError as e:
        if "no such table" in str(e) or "does not exist" in str(e):
            print("the database has no schema yet: run `python starter.py migrate` first", file=sys.stderr)
            return 2
        raise
    except OSError as e:
        print(f"cannot reach a service: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
