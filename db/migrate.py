"""Apply Alembic migrations from code (tests, the demo, ``starter.py migrate``),
and compare the models with a database the way autogenerate does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from db.models import Base
from db.session import create_engine

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


# The one set of comparison options, for ``env.py`` (autogenerate) and
# ``schema_differences``.  ``compare_type``: Alembic compares the DDL each side
# compiles to on the connection's dialect, so the ``UtcDateTime`` decorator
# compares as its impl (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, ``DATETIME``
# on SQLite) and the key variant as ``BIGINT``/``INTEGER``: no noise, and a
# real change (length, precision, timezone on PostgreSQL) is still reported.
# SQLite's DDL cannot tell ``DateTime(timezone=True)`` from ``DateTime()``;
# PostgreSQL catches that one.
COMPARE_OPTIONS: dict[str, Any] = {"compare_type": True, "compare_server_default": True}


async def _with_connection(url: str, fn: Callable[[Connection], T]) -> T:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.run_sync(fn)
            await conn.commit()
            return result
    finally:
        await engine.dispose()


async def _run_command(url: str, fn: Callable[[Config], None]) -> None:
    def _run(sync_conn: Connection) -> None:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = sync_conn
        fn(cfg)

    await _with_connection(url, _run)


async def upgrade(url: str, revision: str = "head") -> None:
    await _run_command(url, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(url: str, revision: str = "-1") -> None:
    await _run_command(url, lambda cfg: command.downgrade(cfg, revision))


async def current_revision(url: str) -> str | None:
    """The revision the database is at (``None``: not migrated at all)."""
    return await _with_connection(url, lambda conn: MigrationContext.configure(conn).get_current_revision())


async def schema_differences(url: str) -> list[Any]:
    """What autogenerate would write to bring the database to the models (``[]``: they agree)."""

    def _compare(conn: Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(conn, opts=COMPARE_OPTIONS), Base.metadata)

    return await _with_connection(url, _compare)
