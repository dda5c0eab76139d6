"""Fixtures of the webhook tests: a recording receiver on loopback, and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

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
