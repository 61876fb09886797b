"""The database engine under faults a worker meets in production."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from db.migrate import upgrade
from db.models import Lock
from db.session import Database


async def keys(db: Database) -> list[str]:
    async with db.sessions() as s:
        return list((await s.scalars(select(Lock.key).order_by(Lock.key))).all())


async def migrated_with(path: Path, key: str) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    async with Database(url) as db, db.transaction() as s:
        s.add(Lock(key=key))


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
        assert not live.exists()  # no empty database created in its place
        shutil.copy(saved, live)
        assert await keys(db) == ["kept"]  # back without a restart
