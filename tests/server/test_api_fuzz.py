"""Fuzzing the served OpenAPI document with schemathesis: no 5xx, and every answer as
documented (status code, content type, body schema, headers).

Both APIs, in-process, with valid credentials so that requests get past
authentication: the Backend API's secret key on every case, and for the
Frontend API the cookie of a freshly signed-in browser. Examples are bounded
(``MAX_EXAMPLES`` per operation), derandomized, with no example database: the run is
the same on every machine. Semantic refusals of schema-valid input (a wrong
password, an invalid email address) are the API's business, so the checks
are the response-side ones.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from starlette.testclient import TestClient

from actas.server import Instance, create_app
from actas.server.clock import SystemClock
from actas.server.db.engine import create_engine
from tests.conftest import APP_ORIGIN, SECRET_KEY, make_settings
from tests.support.flows import PASSWORD

MAX_EXAMPLES = 25
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance, checks.allow_header_conformance]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{data_dir / 'actas.db'}"
    instance = Instance.start(make_settings(data_dir, url), clock=SystemClock(),
                              engine=create_engine(url))
    return create_app(instance)


def _signed_in_cookie(app: Any) -> str:
    """A browser signed in as a user of its own (a case may delete or re-key it)."""
    with TestClient(app, base_url="https://actas.test", headers={"Origin": APP_ORIGIN}) as web:
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        web.post("/v1/users", headers={"Authorization": f"Bearer {SECRET_KEY}"},
                 json={"email_address": [email], "password": PASSWORD})
        signed_in = web.post("/v1/client/sign_ins",
                             json={"identifier": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        return "; ".join(f"{name}={value}" for name, value in web.cookies.items())


def test_every_operation_answers_as_documented(app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # both APIs are in the document
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: schemathesis.Case) -> None:
            headers = {"Authorization": f"Bearer {SECRET_KEY}", "Origin": APP_ORIGIN}
            if case.path.startswith(("/v1/client", "/v1/me")):
                headers["Cookie"] = _signed_in_cookie(app)
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            answers_as_documented()
        except Exception as failure:  # every operation is tried; all failures reported
            failures[operation.label] = str(failure)[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
