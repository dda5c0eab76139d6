from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from actas.server import Instance, create_app


@pytest.fixture
def dashboard(instance: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(instance), base_url="https://actas.test",
                    follow_redirects=False) as client:
        yield client
