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

The transaction is :meth:`db.session.Database.run`'s (on SQLite in the
database's thread): the items are taken from the queue there, once it has
begun, and their results handed back to the waiting lines here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from db.session import Database
from intake.faults import outage_of

Item = TypeVar("Item")

# Writes ``items`` in the open transaction; returns one result per item, in order.
Write = Callable[[Session, Sequence[Item]], Sequence[Any]]


class GroupCommit(Generic[Item]):
    def __init__(self, db: Database, write: Write, *, limit: int = 64, writes: bool = True) -> None:
        """``writes``: the items share a writing transaction (False: a read);
        ``limit``: items at most (SQLite's bound variables)."""
        self.db, self.write, self.limit, self.writes = db, write, limit, writes
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._guard = threading.Lock()  # the queue, taken from in the database's thread
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: Item) -> Any:
        """``item`` written and committed: its result (or its error raised)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an Ingestor reused on another event loop
            with self._guard:
                self._loop, self._lock, self._queue = loop, asyncio.Lock(), []
        done = loop.create_future()
        with self._guard:
            self._queue.append((item, done))
        while not done.done():
            async with self._lock:
                if not done.done():
                    await self._flush()
        return done.result()

    def _take(self, batch: list[tuple[Item, asyncio.Future]], abandoned: list[bool]) -> None:
        with self._guard:
            if not batch and not abandoned:
                batch.extend(self._queue[:self.limit])
                del self._queue[:self.limit]

    async def _flush(self) -> None:
        batch: list[tuple[Item, asyncio.Future]] = []
        abandoned: list[bool] = []  # set once this flush is cancelled: its thread takes nothing more

        def shared(s: Session) -> Sequence[Any]:
            s.connection()  # begun (SQLite: the write lock taken): what queued meanwhile comes too
            self._take(batch, abandoned)
            return self.write(s, [item for item, _ in batch])
        try:
            try:
                results = await self.db.run(shared, write=self.writes)
            except Exception as e:
                self._take(batch, abandoned)  # failed before it took any (BEGIN): the first items share the error
                if outage_of(e) is not None or len(batch) == 1:
                    for _, done in batch:
                        done.set_exception(e)
                    return
                await self._one_by_one(batch)
                return
            for (_, done), result in zip(batch, results, strict=True):
                done.set_result(result)
        finally:
            with self._guard:
                abandoned.append(True)
            for _, done in batch:  # cancelled half-way: nobody waits forever
                if not done.done():
                    done.cancel()

    async def _one_by_one(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        for item, done in batch:
            try:
                [result] = await self.db.run(lambda s: self.write(s, [item]), write=self.writes)
            except Exception as e:
                done.set_exception(e)
            else:
                done.set_result(result)
