"""Fixtures of the server tests: a recording webhook receiver on loopback, an HTTP
client, and an operator's browser on the dashboard."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from actas.server import Instance, create_app
from tests.support.receivers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


@pytest.fixture
def dashboard(instance: Instance) -> Iterator[TestClient]:
    """An operator's browser on the dashboard: redirects are answers to check, not follow."""
    with TestClient(create_app(instance), base_url="https://actas.test",
                    follow_redirects=False) as client:
        yield client
