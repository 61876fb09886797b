"""Group commit: writes queued while a transaction runs share the next one
(and, the same way, reads queued while a read runs share the next read).

SQLite takes one writer at a time, so the intake's throughput is bounded by
its write transactions per event.  A :class:`GroupCommit` lets concurrent
lines share them: each line submits its item and waits until the transaction
holding it has committed (so a line is never counted before its write is
durable, and a crash leaves exactly what one transaction per line would
leave).  Whoever finds no transaction running opens the next one and takes
every item queued by then, up to ``limit``.

If that shared transaction fails with anything but an outage, each of its
items is written again in a transaction of its own, so one bad line never
rejects another; an outage (intake/faults.py) is every item's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from db.session import Database
from intake.faults import outage_of

Item = TypeVar("Item")

# Writes ``items`` in the open transaction; returns one result per item, in order.
Write = Callable[[AsyncSession, Sequence[Item]], Awaitable[Sequence[Any]]]


class GroupCommit(Generic[Item]):
    def __init__(self, db: Database, write: Write, *, limit: int = 64,
                 session: Callable[[], AbstractAsyncContextManager[AsyncSession]] | None = None) -> None:
        """``session``: what the items share (default a writing transaction,
        ``db.sessions`` for reads); ``limit``: items at most (SQLite's bound variables)."""
        self.db, self.write, self.limit = db, write, limit
        self.session = session or db.transaction
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: Item) -> Any:
        """``item`` written and committed: its result (or its error raised)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an Ingestor reused on another event loop
            self._loop, self._lock, self._queue = loop, asyncio.Lock(), []
        done = loop.create_future()
        self._queue.append((item, done))
        while not done.done():
            async with self._lock:
                if not done.done():
                    await self._flush()
        return done.result()

    async def _flush(self) -> None:
        batch: list[tuple[Item, asyncio.Future]] = []
        try:
            try:
                async with self.session() as s:
                    await s.connection()  # begun (SQLite: the write lock taken): what queued meanwhile comes too
                    batch, self._queue = self._queue[:self.limit], self._queue[self.limit:]
                    results = await self.write(s, [item for item, _ in batch])
            except Exception as e:
                if not batch:  # failed before it took any (BEGIN): the queue's first items share the error
                    batch, self._queue = self._queue[:self.limit], self._queue[self.limit:]
                if outage_of(e) is not None or len(batch) == 1:
                    for _, done in batch:
                        done.set_exception(e)
                    return
                await self._one_by_one(batch)
                return
            for (_, done), result in zip(batch, results, strict=True):
                done.set_result(result)
        finally:
            for _, done in batch:  # cancelled half-way: nobody waits forever
                if not done.done():
                    done.cancel()

    async def _one_by_one(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        for item, done in batch:
            try:
                async with self.session() as s:
                    [result] = await self.write(s, [item])
            except Exception as e:
                done.set_exception(e)
            else:
                done.set_result(result)
