"""Engines and transactions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextvars
import os
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TypeVar

import sqlalchemy
from sqlalchemy import event, make_url, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from db.models import Lock


IMMEDIATE = "collections_sqlite_immediate"


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (Alembic's offline tools)."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _existing_file_url(url: str) -> str:
    """The same SQLite database, opened read-write only if the file exists:
    a vanished file is an error, never a new empty database."""
    path = make_url(url).database
    return f"{url.split(':///', 1)[0]}:///file:{path}?mode=rw&uri=true"


def _sqlite_hooks(engine: Engine, path: str, must_exist: bool) -> None:
    """What every connection to a SQLite file does, through aiosqlite or the
    plain sqlite3 driver alike (the engine's ``sync_engine`` for the former)."""
    if must_exist and path:
        @event.listens_for(engine, "checkout")
        def _on_checkout(_dbapi_conn, record, _proxy) -> None:  # pragma: no cover - pool hook
            if record.info.get("file") != _file_identity(path):
                raise DisconnectionError(f"SQLite file {path} was replaced or removed")  # the pool reconnects

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, record) -> None:  # pragma: no cover - driver hook
        record.info["file"] = _file_identity(path)
        # Let SQLAlchemy, not the driver, open transactions, so that a
        # writing transaction starts with BEGIN IMMEDIATE: writers take
        # the lock up front and rule checks (caps, evidence chain) are
        # serialised across worker processes instead of failing on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - driver hook
        # Writers (Database.transaction, Database.run) lock up front; readers
        # stay deferred, so under WAL they never wait for a writer.
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# Threads a Database runs plain-sqlite3 transactions in (Database.run): reads
# go on beside a write; writes queue for the write lock first (_write_gate).
SQLITE_THREADS = 4


def create_engine(url: str, *, must_exist: bool = False) -> AsyncEngine:
    """An engine for ``url``.  ``must_exist`` (SQLite): never create the file,
    and notice when it is replaced or vanishes (a pooled connection to the old
    file is dropped at checkout and the pool reconnects)."""
    # hide_parameters: a database error's message (which reaches logs and, as
    # an activity failure, Temporal's history) never carries phone numbers,
    # addresses or amounts bound into the statement.
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        # pool_reset_on_return=None: a session always ends its transaction
        # (commit, or rollback when it closes), so the pool's own rollback of
        # every connection handed back was a second, empty one: a round trip
        # to aiosqlite's thread per transaction.
        engine = create_async_engine(_existing_file_url(url) if must_exist and path else url,
                                     connect_args={"timeout": 60}, hide_parameters=True, pool_reset_on_return=None)
        _sqlite_hooks(engine.sync_engine, path, must_exist)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


def _plain_sqlite_engine(url: str) -> Engine:
    """The same SQLite file through the plain sqlite3 driver, for
    :meth:`Database.run`'s threads (never creating the file)."""
    path = make_url(url).database or ""
    plain = _existing_file_url(url).replace("+aiosqlite", "") if path else url.replace("+aiosqlite", "")
    engine = sqlalchemy.create_engine(
        plain, connect_args={"timeout": 60, "check_same_thread": False}, hide_parameters=True,
        pool_reset_on_return=None, pool_size=SQLITE_THREADS, max_overflow=0)
    _sqlite_hooks(engine, path, must_exist=bool(path))
    return engine


class _PlainSqlite:
    """Database.run's threads and sessions on a SQLite file."""

    def __init__(self, url: str) -> None:
        self.engine = _plain_sqlite_engine(url)
        self.threads = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="sqlite")
        self.readers = sessionmaker(self.engine, expire_on_commit=False)
        self.writers = sessionmaker(self.engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False)


T = TypeVar("T")


_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()
_WRITING: ContextVar[frozenset[str]] = ContextVar("collections_sqlite_writing", default=frozenset())


def _write_gate(path: str) -> asyncio.Lock:
    """One queue for this process's writers to a SQLite file (per event loop).

    SQLite has one writer at a time; a writer that finds the lock taken sleeps
    in its busy handler and polls again (1 ms, 2 ms, 5 ms … then every
    100 ms), so with dozens of writers waiting the lock stood idle between
    their polls: activities of a few milliseconds took a second.  Queued here
    in turn, each takes the lock the moment the one before lets it go; only
    the writers of other processes still poll."""
    return _GATES.setdefault(asyncio.get_running_loop(), {}).setdefault(path, asyncio.Lock())


class NestedWrite(RuntimeError):
    """A write transaction opened inside another on the same SQLite file: it
    would wait for the one that holds the lock, itself (a programming error)."""


class Database:
    def __init__(self, url: str) -> None:
        """``url``: the settings' ``database_url`` (support/settings.py), or a test's database."""
        self.url = url
        self._path = str(make_url(url).database or "") if url.startswith("sqlite") else ""
        self.engine = create_engine(self.url, must_exist=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)  # reads
        self._writers = async_sessionmaker(self.engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False)
        self._plain: _PlainSqlite | None = None  # Database.run on SQLite
        self._inserts: dict = {}  # insert_ignoring's statements

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def one_writer(self) -> bool:
        """A write transaction holds the whole database's write lock (SQLite):
        nothing another writer commits can fall between two of its statements."""
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A writing transaction (on SQLite it takes the write lock at BEGIN,
        after this process's writers before it: :func:`_write_gate`)."""
        if self.dialect != "sqlite":
            async with self._writers() as session, session.begin():
                yield session
            return
        async with self._sqlite_writing(), self._writers() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _sqlite_writing(self) -> AsyncIterator[None]:
        """This task's turn at the SQLite file's write lock (:func:`_write_gate`);
        a write inside another would wait for itself: :class:`NestedWrite`."""
        writing = _WRITING.get()
        if self._path in writing:
            raise NestedWrite(f"a write transaction inside another on {self._path} would wait for itself")
        token = _WRITING.set(writing | {self._path})
        try:
            async with _write_gate(self._path):
                yield
        finally:
            _WRITING.reset(token)

    async def run(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """``work(session)``, plain synchronous SQLAlchemy, as one transaction
        (``write``: a writing one, as :meth:`transaction`).  What an activity
        does on every case goes this way.

        On SQLite it runs in one of this database's threads on the sqlite3
        driver itself: one hand-off to a thread a transaction, where aiosqlite
        hands every statement, cursor and commit over and back, and no
        greenlet; measured, a transaction of two statements took a fifth of
        the CPU.  On PostgreSQL it runs on the async session (asyncpg), the
        same code through ``run_sync`` (as on an in-memory SQLite database,
        which has no file for other threads to open).

        Cancelled while its thread runs, it returns only once the thread has
        committed or rolled back (its turn at the write lock lasts as long),
        then raises the cancellation."""
        if self.dialect != "sqlite" or self._path in ("", ":memory:"):
            if write and self.dialect == "sqlite":
                async with self.transaction() as session:
                    return await session.run_sync(work)
            async with (self._writers if write else self.sessions)() as session, session.begin():
                return await session.run_sync(work)
        if not write:
            return await self._in_thread(work, write)
        async with self._sqlite_writing():
            return await self._in_thread(work, write)

    async def _in_thread(self, work: Callable[[Session], T], write: bool) -> T:
        if self._plain is None:
            self._plain = _PlainSqlite(self.url)
        plain = self._plain
        call = contextvars.copy_context().run  # the activity's clock of record and log context go along

        def in_thread() -> T:
            with (plain.writers if write else plain.readers)() as session, session.begin():
                return work(session)
        submitted = plain.threads.submit(call, in_thread)
        running = asyncio.wrap_future(submitted)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            if not submitted.cancel():  # started: its transaction ends before this does
                await asyncio.wait({running})
            raise

    def insert(self, table):
        """A dialect INSERT that supports ``on_conflict_do_nothing``."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def insert_ignoring(self, table):
        """``INSERT … ON CONFLICT DO NOTHING`` into ``table``, its values bound at
        execution: one statement object a table, so SQLAlchemy compiles it once
        and never computes its cache key again (``.values(...)`` costs both on
        every call)."""
        stmt = self._inserts.get(table)
        if stmt is None:
            stmt = self._inserts[table] = self.insert(table).on_conflict_do_nothing()
        return stmt

    async def lock(self, session: AsyncSession, *keys: str) -> None:
        """:meth:`lock_in` in an async session."""
        if self.dialect == "postgresql":
            await session.run_sync(self.lock_in, *keys)

    def lock_in(self, session: Session, *keys: str) -> None:
        """Serialise on named rows until the transaction ends (sorted: no deadlock).

        On PostgreSQL this is SELECT … FOR UPDATE on a row per key; on SQLite
        the transaction already holds the database write lock (BEGIN IMMEDIATE).
        """
        if self.dialect != "postgresql":
            return
        keys_sorted = sorted(set(keys))
        session.execute(self.insert(Lock).values([{"key": k} for k in keys_sorted]).on_conflict_do_nothing())
        session.execute(select(Lock.key).where(Lock.key.in_(keys_sorted)).order_by(Lock.key).with_for_update())

    async def dispose(self) -> None:
        if self._plain is not None:
            plain, self._plain = self._plain, None
            await asyncio.to_thread(plain.threads.shutdown, True)  # the transactions under way end first
            plain.engine.dispose()
        await self.engine.dispose()

    async def __aenter__(self) -> "Database":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.dispose()
