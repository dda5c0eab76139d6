"""Fixtures shared by every test: a database per backend, an instance, HTTP clients.

The storage and API tests run once on SQLite and once on PostgreSQL. The
PostgreSQL server is a private throwaway one started here (see
``tests/support/postgres.py``), unless ``ACTAS_TEST_DATABASE_URL`` names one.
``ACTAS_TEST_BACKENDS=sqlite`` narrows a quick local run to SQLite.

``ACTAS_TEST_PAUSE_AFTER_COLLECTION=75`` sleeps that many seconds between
collection and the first test: the check that nothing collected (a token, an
expiry, a deadline) depends on how soon the tests run after import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server import Instance, create_app, load_settings
from actas.server.clock import FrozenClock, SystemClock
from actas.server.db.engine import create_engine, migrate
from actas.server.db.schema import Base
from tests.support.postgres import ThrowawayPostgres

SECRET_KEY = "sk_test_" + "k" * 40
APP_ORIGIN = "http://localhost:3000"
BACKENDS = [b for b in os.environ.get("ACTAS_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def pytest_collection_finish(session: pytest.Session) -> None:
    pause = float(os.environ.get("ACTAS_TEST_PAUSE_AFTER_COLLECTION", "0"))
    if pause > 0:
        time.sleep(pause)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("ACTAS_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with ThrowawayPostgres() as server:
        yield server.url


@pytest.fixture(scope="session")
def _engines() -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'actas.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """A migrated, empty database. PostgreSQL is shared and emptied between tests."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        migrate(engine)
        yield engine
        engine.dispose()
        return
    engine = _engines.get(database_url)
    if engine is None:
        engine = _engines[database_url] = create_engine(database_url)
        migrate(engine)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    yield engine


@pytest.fixture
def clock() -> FrozenClock:
    # Starts at the real time so that independent JWT libraries, which read
    # the system clock, accept freshly minted tokens.
    return FrozenClock(SystemClock().now_ms())


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": str(tmp_path / "data"),
        "secret_key": SECRET_KEY,
        "instance_secret": "test-instance-secret-" + "s" * 32,
        "frontend_api_url": "https://actas.test",
        "allowed_origins": APP_ORIGIN,
        "password_hashing": "test-only-insecure",
        # Second factors are tested where they are the subject (test_second_factor.py).
        "operator_second_factor": "optional",
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to start the instance with other settings."""
    return {}


@pytest.fixture
def instance(tmp_path: Path, database_url: str, engine: Engine, clock: FrozenClock,
             settings_overrides: dict[str, Any]) -> Instance:
    settings = make_settings(tmp_path, database_url, **settings_overrides)
    return Instance.start(settings, clock=clock, engine=engine)


@pytest.fixture
def app_client(instance: Instance) -> Iterator[TestClient]:
    """An unauthenticated client of the whole server (https, so Secure cookies flow)."""
    with TestClient(create_app(instance), base_url="https://actas.test") as client:
        yield client


@pytest.fixture
def backend(app_client: TestClient) -> TestClient:
    """A Backend API client: every request carries the secret key."""
    app_client.headers["Authorization"] = f"Bearer {SECRET_KEY}"
    return app_client


@pytest.fixture
def browser(instance: Instance) -> Iterator[TestClient]:
    """A Frontend API client that behaves like a page on APP_ORIGIN (own cookie jar)."""
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as client:
        yield client
