"""When the database goes away, or fills up: a clear 503, nothing half-written, and back
to work without restarting actas.

PostgreSQL is a throwaway server of this module's own, halted and resumed as
a crash and restart would; SQLite's full disk and read-only file are made by
the database itself (``max_page_count``, ``query_only``), in-process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server import Instance, create_app
from actas.server.clock import FrozenClock
from actas.server.db.engine import create_engine
from actas.server.db.schema import User
from tests.conftest import APP_ORIGIN, SECRET_KEY, make_settings
from tests.support.flows import PASSWORD, create_user, mint, sign_in
from tests.support.postgres import ThrowawayPostgres

BACKENDS = os.environ.get("ACTAS_TEST_BACKENDS", "sqlite,postgresql").split(",")


def _users(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(User)).scalar() or 0)


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "database_unavailable" and "retry" in error["message"].lower()
    assert response.headers["retry-after"] == "1"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[ThrowawayPostgres]:
    if "postgresql" not in BACKENDS:
        pytest.skip("ACTAS_TEST_BACKENDS excludes PostgreSQL")
    with ThrowawayPostgres() as server:
        yield server


@pytest.mark.postgresql
def test_postgresql_restarting_under_actas(own_postgres: ThrowawayPostgres, tmp_path: Path,
                                           clock: FrozenClock) -> None:
    engine = create_engine(own_postgres.url)
    instance = Instance.start(make_settings(tmp_path, own_postgres.url), clock=clock,
                              engine=engine)
    app = create_app(instance)
    with TestClient(app, base_url="https://actas.test",
                    headers={"Authorization": f"Bearer {SECRET_KEY}"}) as backend, \
            TestClient(app, base_url="https://actas.test",
                       headers={"Origin": APP_ORIGIN}) as browser:
        create_user(backend)
        session_id = sign_in(browser)
        mint(browser, session_id)
        assert backend.get("/readyz").status_code == 200

        own_postgres.halt()
        try:
            _assert_unavailable(backend.get("/v1/users"))
            _assert_unavailable(browser.post(f"/v1/client/sessions/{session_id}/tokens",
                                              json={}))
            _assert_unavailable(browser.post("/v1/client/sign_ups", json={
                "email_address": "new@example.com", "password": PASSWORD}))
            _assert_unavailable(backend.get("/readyz"))
            assert backend.get("/healthz").status_code == 200  # alive, just not ready
        finally:
            own_postgres.resume()

        # Back without restarting actas: the pool replaces its dead connections.
        assert backend.get("/readyz").status_code == 200
        mint(browser, session_id)
        assert [u["email_addresses"][0]["email_address"]
                for u in backend.get("/v1/users").json()] == ["ada@example.com"]
    engine.dispose()


@pytest.mark.parametrize("pragma", ["max_page_count", "query_only"],
                         ids=["disk full", "read-only"])
def test_sqlite_full_or_read_only_answers_503_and_writes_nothing(
        tmp_path: Path, clock: FrozenClock, pragma: str) -> None:
    url = f"sqlite:///{tmp_path / 'actas.db'}"
    engine = create_engine(url)
    instance = Instance.start(make_settings(tmp_path, url), clock=clock, engine=engine)
    app = create_app(instance)
    with TestClient(app, base_url="https://actas.test",
                    headers={"Authorization": f"Bearer {SECRET_KEY}"}) as backend:
        create_user(backend)
        before = _users(engine)
        if pragma == "max_page_count":
            # No free pages left to reuse (a migration that rebuilt a table left some):
            # a write then needs a new page, and there is no room for one.
            raw = engine.raw_connection()
            try:
                raw.cursor().execute("VACUUM")
            finally:
                raw.close()
        engine.dispose()  # every new connection gets the pragma

        @event.listens_for(engine, "connect")
        def _constrain(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if pragma == "max_page_count":  # no room for one more page
                pages = cursor.execute("PRAGMA page_count").fetchone()[0]
                cursor.execute(f"PRAGMA max_page_count={pages}")
            else:
                cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        big = {"bio": "x" * 7_000}  # more than a page: it needs a new one
        _assert_unavailable(backend.post("/v1/users", json={
            "email_address": ["grace@example.com"], "password": PASSWORD,
            "public_metadata": big}))
        if pragma == "max_page_count":
            assert backend.get("/v1/users").status_code == 200  # a full disk still reads
        event.remove(engine, "connect", _constrain)
        engine.dispose()
        assert _users(engine) == before  # no half-written user, email or audit row
    engine.dispose()
