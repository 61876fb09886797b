"""Apply Alembic migrations from code (tests, the demo, ``starter.py migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from db.session import create_engine, default_database_url

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or default_database_url())
    return cfg


async def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or default_database_url()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def _run(sync_conn) -> None:
                cfg = alembic_config(url)
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, revision)

            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()
