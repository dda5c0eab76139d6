"""Real tokens for the framework integrations: minted by an in-process actas server.

The integrations only verify tokens, so the storage backend does not matter
here: the server always runs on SQLite (``database_url`` is overridden), and
the verifiers are built offline from the JWKS it serves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import actas
from actas.server import Instance, create_app
from actas.server.clock import FrozenClock
from tests.conftest import APP_ORIGIN
from tests.support.flows import create_actor_token, create_user, mint, redeem, sign_in

ISSUER = "https://actas.test"
APP_LOGGER = "tests.integrations.app"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'actas.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    # A fixed instant, read by the server and by every verifier below: the
    # tokens stay exactly as fresh as the test says, however slow the machine.
    return FrozenClock(1_900_000_000_000)


@dataclass(frozen=True)
class Tokens:
    """One user, signed in normally and impersonated by ``op_alice``, and the issuer's keys."""

    jwks: dict[str, Any]
    user_id: str
    session_id: str
    signed_in: str
    impersonated_session_id: str
    impersonated: str  # a full impersonation
    read_only: str  # the same user, in a read-only impersonation
    expired: str
    clock: FrozenClock

    def now(self) -> float:
        """The verifiers' clock: the server's frozen one, in seconds."""
        return self.clock.now_ms() / 1000

    def verifier(self) -> actas.Verifier:
        return actas.Verifier(issuer=ISSUER, jwks=self.jwks, authorized_parties=[APP_ORIGIN],
                              now=self.now)


@pytest.fixture
def tokens(backend: TestClient, browser: TestClient, instance: Instance,
           clock: FrozenClock) -> Tokens:
    user = create_user(backend)
    session_id = sign_in(browser)
    expired = mint(browser, session_id)
    clock.advance(seconds=3600)  # the first token is long expired now
    signed_in = mint(browser, session_id)

    # The operator redeems the ticket in their own browser, as they would.
    with TestClient(create_app(instance), base_url=ISSUER,
                    headers={"Origin": APP_ORIGIN}) as operator_browser:
        ticket = create_actor_token(backend, user["id"])["token"]
        impersonated_session_id = redeem(operator_browser, ticket)
        impersonated = mint(operator_browser, impersonated_session_id)
    with TestClient(create_app(instance), base_url=ISSUER,
                    headers={"Origin": APP_ORIGIN}) as operator_browser:
        ticket = create_actor_token(backend, user["id"], mode="read_only")["token"]
        read_only = mint(operator_browser, redeem(operator_browser, ticket))

    jwks: dict[str, Any] = backend.get("/.well-known/jwks.json").json()
    return Tokens(jwks=jwks, user_id=user["id"], session_id=session_id, signed_in=signed_in,
                  impersonated_session_id=impersonated_session_id, impersonated=impersonated,
                  read_only=read_only, expired=expired, clock=clock)


@pytest.fixture
def verifier(tokens: Tokens) -> actas.Verifier:
    return tokens.verifier()


@pytest.fixture
def app_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the apps' logger, through a handler with ``actas.AuthLogFilter`` on it."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    handler.addFilter(actas.AuthLogFilter())
    logger = logging.getLogger(APP_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def log_identity(records: list[logging.LogRecord], message: str) -> tuple[Any, Any]:
    """``(user_id, actor_sub)`` of the one record that says ``message``."""
    [record] = [r for r in records if r.getMessage() == message]
    return getattr(record, "user_id", "<unset>"), getattr(record, "actor_sub", "<unset>")


def assert_refused(status: int, body: Any, *, expected_status: int, code: str,
                   reason: str | None = None) -> None:
    """The integrations answer with actas's error envelope: ``{"errors": [{code, …}]}``."""
    assert status == expected_status, body
    assert isinstance(body, dict) and list(body) == ["errors"], body
    [error] = body["errors"]
    assert error["code"] == code
    assert error["message"] and error["long_message"]
    if reason is not None:
        assert error["meta"] == {"reason": reason}


@pytest.fixture(scope="session")
def django_project() -> None:
    """Django is configured once per process; ``ACTAS`` is set per test (its keys differ)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only-not-secret",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF="tests.integrations.test_django",
            INSTALLED_APPS=[],
            MIDDLEWARE=["actas.integrations.django.AuthMiddleware"],
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            LOGGING_CONFIG=None,  # leave logging to pytest
        )
        django.setup()
