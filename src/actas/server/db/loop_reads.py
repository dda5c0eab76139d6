"""PostgreSQL reads on the event loop, through psycopg's async API without SQLAlchemy.

The token refresh reads one row per request on PostgreSQL (see
``actas.server.token_refresh``). Through SQLAlchemy's asyncio layer a
statement cost ~700 µs of CPU (a greenlet per statement, its pool's checkout
and reset, result processing); through psycopg directly ~120 µs, measured with
16 concurrent readers on one loop. Refresh on PostgreSQL went from 600-750 to
900-1,140 req/s (``bench/refresh.py``). So the one statement runs here,
prepared, and everything else stays in SQLAlchemy.

The pool is written here on purpose rather than taken from ``psycopg_pool``:
that pool hands out connections its background task opened, so with the
database down a checkout waits for its timeout (30 s) where a refresh should
fail at once with 503 ``database_unavailable``; and its checks on return cost
~80 µs more per read. This one is small and does less:
- at most ``size`` connections, opened on demand (a failed connect raises at
  once), kept idle for the next read;
- autocommit: a read is one statement in its own snapshot (READ COMMITTED's),
  with no BEGIN before it or ROLLBACK after;
- a connection that raised, timed out or is left in a transaction is closed,
  never reused: a dead server costs one failed read per pooled connection;
- every read has a deadline (``READ_TIMEOUT_S``), after which it raises
  ``psycopg.OperationalError`` (so a stalled server answers 503 too).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import make_url

READ_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5


def conninfo(database_url: str) -> str:
    """libpq's URL for a SQLAlchemy one (``postgresql+psycopg://…`` → ``postgresql://…``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class _Pool:
    """The connections of one event loop: an asyncio connection belongs to its loop."""

    def __init__(self, size: int) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(size)


class LoopReads:
    """Reads through a few psycopg async connections per event loop (a serving process
    has one; a test may run several apps' loops over one instance)."""

    def __init__(self, database_url: str, *, size: int) -> None:
        self._conninfo = conninfo(database_url)
        self._size = size
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary())

    def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(self._size)
        return pool

    async def one(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of ``sql`` (prepared), or ``None``. Raises
        ``psycopg.OperationalError`` when the database cannot answer in time."""
        async with self._connection() as connection:
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    cursor = await connection.execute(sql, params, prepare=True)
                    return await cursor.fetchone()
            except TimeoutError:
                raise psycopg.OperationalError(
                    f"no answer from the database within {READ_TIMEOUT_S:.0f} s") from None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = self._pool()
        async with pool.slots:
            connection = pool.idle.pop() if pool.idle else await self._connect()
            try:
                yield connection
            except BaseException:
                await connection.close()
                raise
            if (connection.closed
                    or connection.info.transaction_status != TransactionStatus.IDLE):
                await connection.close()
            else:
                pool.idle.append(connection)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
                return await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise psycopg.OperationalError(
                f"could not connect to the database within {CONNECT_TIMEOUT_S} s") from None

    @property
    def idle(self) -> int:
        """Connections kept open for the next read, by this event loop."""
        pool = self._pools.get(asyncio.get_running_loop())
        return 0 if pool is None else len(pool.idle)

    async def close(self) -> None:
        """Close this event loop's connections (at the app's shutdown)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        for connection in [] if pool is None else pool.idle:
            await connection.close()
