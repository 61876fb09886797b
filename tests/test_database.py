"""The database engine under faults a worker meets in production."""

from __future__ import annotations

import asyncio
import contextvars
import os
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from db.migrate import upgrade
from db.models import Lock
from db.session import Database, NestedWrite


async def keys(db: Database) -> list[str]:
    async with db.sessions() as s:
        return list((await s.scalars(select(Lock.key).order_by(Lock.key))).all())


async def migrated_with(path: Path, key: str) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    async with Database(url) as db, db.transaction() as s:
        s.add(Lock(key=key))


async def bump(db: Database, served: list[int], i: int) -> None:
    """Count one up in an async write transaction, holding the lock a while."""
    async with db.transaction() as s:
        row = await s.scalar(select(Lock).where(Lock.key.like("n=%")))  # holding the lock from here
        served.append(i)
        n = int(row.key.removeprefix("n="))
        await asyncio.sleep(0.005)  # others ask for the lock meanwhile
        row.key = f"n={n + 1}"


def key_list(s) -> list[str]:
    """The lock keys, read in a plain (synchronous) session: :meth:`Database.run`'s kind of work."""
    return list(s.scalars(select(Lock.key).order_by(Lock.key)).all())


def remove_database(path: Path) -> None:
    for f in path.parent.glob(path.name + "*"):  # the file and its -wal / -shm
        f.unlink()


async def test_a_replaced_sqlite_file_is_reconnected_without_a_restart(tmp_path):
    live, backup = tmp_path / "live.db", tmp_path / "backup.db"
    await migrated_with(live, "before")
    await migrated_with(backup, "restored")
    async with Database(f"sqlite+aiosqlite:///{live}") as db:
        assert await keys(db) == ["before"]  # a pooled connection now holds the old file
        tmp = tmp_path / "incoming.db"
        shutil.copy(backup, tmp)
        remove_database(live)
        os.replace(tmp, live)  # an operator restores a backup over it
        assert await keys(db) == ["restored"]
        async with db.transaction() as s:
            s.add(Lock(key="after"))
        assert await keys(db) == ["after", "restored"]
        assert await db.run(key_list, write=False) == ["after", "restored"]  # the plain-sqlite3 threads too
        remove_database(live)
        shutil.copy(backup, tmp)
        os.replace(tmp, live)  # and again, with the threads' connections pooled
        assert await db.run(key_list, write=False) == ["restored"]


async def test_a_vanished_sqlite_file_is_an_error_not_a_new_empty_database(tmp_path):
    live = tmp_path / "live.db"
    await migrated_with(live, "kept")
    saved = tmp_path / "saved.db"
    async with Database(f"sqlite+aiosqlite:///{live}") as db:
        assert await keys(db) == ["kept"]
        await db.engine.dispose()  # checkpoint the WAL into the file before taking it away
        shutil.copy(live, saved)
        remove_database(live)
        with pytest.raises(OperationalError, match="unable to open database file"):
            await keys(db)
        with pytest.raises(OperationalError, match="unable to open database file"):
            await db.run(key_list)
        assert not live.exists()  # no empty database created in its place
        shutil.copy(saved, live)
        assert await keys(db) == ["kept"]  # back without a restart


async def test_a_hundred_writers_in_one_process_take_the_sqlite_lock_in_turn(tmp_path):
    """Writers of one process are served in the order they asked (none left
    polling SQLite's busy handler while the lock stands idle), and each has the
    file to itself: every read-then-write counts."""
    await migrated_with(tmp_path / "w.db", "n=0")
    served: list[int] = []
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}") as db:

        await asyncio.wait_for(asyncio.gather(*(bump(db, served, i) for i in range(100))), timeout=60)
        assert await keys(db) == ["n=100"]
    assert served == list(range(100))


async def test_a_write_inside_another_on_the_same_file_fails_at_once_instead_of_waiting_for_itself(tmp_path):
    await migrated_with(tmp_path / "n.db", "outer")
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}") as db:
        with pytest.raises(NestedWrite, match="would wait for itself"):
            async with db.transaction() as s:
                s.add(Lock(key="first"))
                await asyncio.wait_for(db.transaction().__aenter__(), timeout=5)
        assert await keys(db) == ["outer"]  # the outer transaction rolled back
        async with db.transaction() as s:  # and the file is free again
            s.add(Lock(key="after"))
        assert await keys(db) == ["after", "outer"]


async def test_writers_in_threads_and_async_writers_take_the_sqlite_lock_in_turn(tmp_path):
    """Database.run's writers (plain sqlite3 in the database's threads) queue
    with the async ones for the same file: served in the order they asked,
    each read-then-write counted, none waiting in SQLite's busy handler."""
    await migrated_with(tmp_path / "w.db", "n=0")
    served: list[int] = []
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}") as db:

        def bump_in(s, i: int) -> None:
            row = s.scalar(select(Lock).where(Lock.key.like("n=%")))
            served.append(i)
            n = int(row.key.removeprefix("n="))
            time.sleep(0.005)  # others ask for the lock meanwhile
            row.key = f"n={n + 1}"

        async def either(i: int) -> None:
            if i % 2:
                await db.run(lambda s: bump_in(s, i))
            else:
                await bump(db, served, i)

        await asyncio.wait_for(asyncio.gather(*(either(i) for i in range(100))), timeout=60)
        assert await keys(db) == ["n=100"]
    assert served == list(range(100))  # none overtaken: none sat polling in SQLite's busy handler


async def test_a_write_in_a_thread_inside_a_write_fails_at_once_and_the_work_sees_its_task_context(tmp_path):
    await migrated_with(tmp_path / "n.db", "outer")
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}") as db:
        with pytest.raises(NestedWrite, match="would wait for itself"):
            async with db.transaction() as s:
                s.add(Lock(key="first"))
                await asyncio.wait_for(db.run(lambda s: s.add(Lock(key="inner"))), timeout=5)
        assert await db.run(key_list, write=False) == ["outer"]
        marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")
        marker.set("this task's")  # an activity's clock of record, its log context
        assert await db.run(lambda s: marker.get()) == "this task's"


async def test_a_write_cancelled_in_its_thread_keeps_its_turn_until_its_transaction_has_ended(tmp_path):
    """Cancelled while the database's thread runs it, a write returns only
    once its transaction ended: no writer of this process takes the lock
    meanwhile, and the caller's cancellation comes with the write's outcome known."""
    await migrated_with(tmp_path / "c.db", "outer")
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}") as db:
        finished: list[bool] = []

        def slow(s) -> None:
            s.add(Lock(key="slow"))
            s.flush()
            time.sleep(0.3)
            finished.append(True)

        task = asyncio.create_task(db.run(slow))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == [True]
        assert await keys(db) == ["outer", "slow"]  # it had begun: the cancellation came too late to stop it


async def test_an_in_memory_database_runs_work_on_its_one_connection():
    async with Database("sqlite+aiosqlite://") as db:
        assert await db.run(lambda s: s.scalar(select(1))) == 1
        assert await db.run(lambda s: s.scalar(select(2)), write=False) == 2
