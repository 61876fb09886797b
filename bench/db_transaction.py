"""What one write transaction costs the process, by the way it reaches SQLite.

    .venv/bin/python bench/db_transaction.py [N]      (default 2000 transactions a way)

Each transaction writes a case's record as ``record_case`` does (a
``case_history`` row and the ``cases`` row moved forward: two statements,
``BEGIN IMMEDIATE`` and a commit), N times, through:

- the ORM on aiosqlite (``Database.transaction``, ``.values(...)`` statements:
  the activities before issue 12's fourth round);
- Core on aiosqlite, statements built once, values bound at execution;
- ``Database.run``: the same statements, one synchronous transaction in the
  database's thread on the ``sqlite3`` driver (what the activities do now).

Prints the CPU of this process (all its threads) and the wall time per
transaction, each way twice; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, update  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Case, CaseHistory  # noqa: E402
from db.session import IMMEDIATE, Database  # noqa: E402

MOVE = update(Case.__table__).where(Case.account_id == bindparam("a"), Case.revision <= bindparam("r")).values(
    stage=bindparam("v_stage"), grade=bindparam("v_grade"), outstanding=bindparam("v_outstanding"),
    limitation_expires_on=bindparam("v_limitation"), closed_reason=bindparam("v_closed"), revision=bindparam("r"),
    updated_at=bindparam("v_now"))


def history(account: str, now: datetime) -> dict:
    return dict(account_id=account, revision=1, stage="wake_up_ladder", grade="II", outstanding=Decimal("1000.00"),
                paused_by=[], next_action="day_3", next_action_at=now, note="day 0 call", actor=None, recorded_at=now)


def moved(account: str, now: datetime) -> dict:
    return dict(a=account, r=1, v_stage="wake_up_ladder", v_grade="II", v_outstanding=Decimal("1000.00"),
                v_limitation=date(2031, 1, 1), v_closed=None, v_now=now)


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade(url)
        async with Database(url) as db:
            now = datetime.now(timezone.utc)
            insert = db.insert_ignoring(CaseHistory.__table__)
            writer = db.engine.execution_options(**{IMMEDIATE: True})

            async def orm(account: str) -> None:
                async with db.transaction() as s:
                    await s.execute(db.insert(CaseHistory).values(**history(account, now)).on_conflict_do_nothing())
                    await s.execute(update(Case).where(Case.account_id == account, Case.revision <= 1).values(
                        stage="wake_up_ladder", grade="II", outstanding=Decimal("1000.00"),
                        limitation_expires_on=date(2031, 1, 1), closed_reason=None, revision=1, updated_at=now))

            async def core(account: str) -> None:
                async with writer.begin() as conn:
                    await conn.execute(insert, history(account, now))
                    await conn.execute(MOVE, moved(account, now))

            def plain(s, account: str) -> None:
                s.execute(insert, history(account, now))
                s.execute(MOVE, moved(account, now))

            async def run(account: str) -> None:
                await db.run(lambda s: plain(s, account))

            ways = {"ORM on aiosqlite": orm, "Core on aiosqlite, built once": core, "Database.run (sqlite3)": run}
            print(f"{n} write transactions of two statements a way (SQLite, WAL)")
            print(f"{'':34}{'CPU ms':>8}{'wall ms':>9}")
            for rnd in range(2):
                for name, way in ways.items():
                    for i in range(50):  # warm: pools, compiled statements
                        await way(f"warm-{rnd}-{name}-{i}")
                    c0, t0 = time.process_time(), time.perf_counter()
                    for i in range(n):
                        await way(f"{rnd}-{name}-{i}")
                    print(f"{name:34}{1e3 * (time.process_time() - c0) / n:>8.2f}"
                          f"{1e3 * (time.perf_counter() - t0) / n:>9.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
