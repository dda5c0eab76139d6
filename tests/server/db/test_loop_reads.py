"""The event loop's PostgreSQL reads (``db.loop_reads``): connections kept and capped, a
failed or stalled read never poisons the next one, and a bad session id is refused
before it reaches the database. The outage case (server halted, then back) is in
``tests/server/test_database_outage.py``."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from actas.server.credentials import CLIENT_TOKEN_PREFIX
from actas.server.db import loop_reads
from actas.server.db.loop_reads import LoopReads
from actas.server.token_refresh import read_params

BACKEND_PID = "SELECT pg_backend_pid() WHERE %(x)s::int = 1"


@pytest.fixture
def reads(request: pytest.FixtureRequest) -> LoopReads:
    if "postgresql" not in os.environ.get("ACTAS_TEST_BACKENDS", "sqlite,postgresql"):
        pytest.skip("ACTAS_TEST_BACKENDS excludes PostgreSQL")
    return LoopReads(request.getfixturevalue("postgres_url"), size=3)


@pytest.mark.postgresql
def test_sequential_reads_share_one_connection(reads: LoopReads) -> None:
    async def run() -> set[int]:
        pids = set()
        for _ in range(5):
            row = await reads.one(BACKEND_PID, {"x": 1})
            assert row is not None
            pids.add(row[0])
        assert reads.idle == 1
        assert await reads.one(BACKEND_PID, {"x": 2}) is None  # no row: None
        await reads.close()
        assert reads.idle == 0
        return pids

    assert len(asyncio.run(run())) == 1


@pytest.mark.postgresql
def test_concurrent_reads_never_open_more_than_the_pool_size(reads: LoopReads) -> None:
    async def run() -> set[int]:
        rows = await asyncio.gather(*[
            reads.one("SELECT pg_backend_pid(), pg_sleep(0.05) WHERE %(x)s::int = 1",
                      {"x": 1}) for _ in range(12)])
        idle = reads.idle
        await reads.close()
        assert idle == 3
        return {row[0] for row in rows if row is not None}

    assert len(asyncio.run(run())) == 3


@pytest.mark.postgresql
def test_a_failed_read_closes_its_connection_and_the_next_read_works(reads: LoopReads) -> None:
    async def run() -> None:
        first = await reads.one(BACKEND_PID, {"x": 1})
        with pytest.raises(psycopg.errors.DivisionByZero):
            await reads.one("SELECT 1 / (%(x)s::int - 1)", {"x": 1})
        assert reads.idle == 0  # closed, not put back
        second = await reads.one(BACKEND_PID, {"x": 1})
        assert first is not None and second is not None and first[0] != second[0]
        await reads.close()

    asyncio.run(run())


@pytest.mark.postgresql
def test_a_stalled_read_raises_operational_error_and_is_not_reused(
        reads: LoopReads, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_reads, "READ_TIMEOUT_S", 0.2)

    async def run() -> None:
        with pytest.raises(psycopg.OperationalError, match="no answer from the database"):
            await reads.one("SELECT pg_sleep(30) WHERE %(x)s::int = 1", {"x": 1})
        assert reads.idle == 0
        assert await reads.one(BACKEND_PID, {"x": 1}) is not None
        await reads.close()

    asyncio.run(run())


@pytest.mark.parametrize("session_id", ["sess_\x00x", "sess_\u00e9", "sess_\n"])
def test_ids_no_session_can_have_are_not_read(session_id: str) -> None:
    cookie = CLIENT_TOKEN_PREFIX + "c" * 43
    assert read_params(cookie, "sess_01JH3ZQ9X2K8V5T4R6N1M0P7Q8") is not None
    assert read_params(cookie, session_id) is None
    assert read_params("not a client cookie", "sess_01JH3ZQ9X2K8V5T4R6N1M0P7Q8") is None
