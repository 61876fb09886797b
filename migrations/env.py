"""Alembic environment: async engines, SQLite batch mode, DATABASE_URL.

``target_metadata`` carries the models' naming convention, so Alembic also
names any constraint a hand-written operation leaves unnamed.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from db.migrate import COMPARE_OPTIONS
from db.models import Base
from db.session import create_engine
from support.settings import load_settings

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        **COMPARE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_configure)
        await conn.commit()
    await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or load_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:  # called from db.migrate.upgrade inside a running loop
        _configure(connection)
    else:
        asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or load_settings().database_url))
