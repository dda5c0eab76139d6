"""The in-app notice: impersonations of my account since I last looked, shown once on any
device, and never to (or dismissable by) the impersonator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from actas.server import Instance, create_app
from actas.server.clock import FrozenClock
from tests.conftest import APP_ORIGIN
from tests.support.flows import create_actor_token, create_user, error_code, redeem, sign_in


@pytest.fixture
def operator_browser(instance: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as client:
        yield client


def _notices(browser: TestClient) -> list[dict[str, object]]:
    notices: list[dict[str, object]] = browser.get("/v1/me/impersonation_notices").json()[
        "response"]
    return notices


def test_news_until_dismissed_and_never_for_the_impersonator(
        backend: TestClient, browser: TestClient, operator_browser: TestClient,
        clock: FrozenClock) -> None:
    ada = create_user(backend)
    sign_in(browser)
    assert _notices(browser) == []
    token = create_actor_token(backend, ada["id"], actor={"name": "Sam Support"},
                               reason="Ticket #42")
    redeem(operator_browser, token["token"])
    # The impersonator sees no news, and cannot dismiss the user's.
    assert _notices(operator_browser) == []
    refused = operator_browser.post("/v1/me/impersonation_notices/seen", json={})
    assert error_code(refused) == "impersonated_session_forbidden"

    [news] = _notices(browser)
    assert news["actor"] == {"sub": "op_alice", "name": "Sam Support",
                             "sid": token["id"], "iss": "https://actas.test"}
    assert news["reason"] == "Ticket #42"
    assert browser.post("/v1/me/impersonation_notices/seen", json={}).status_code == 200
    assert _notices(browser) == []

    # A later impersonation is news again.
    clock.advance(seconds=1)
    session_id = operator_browser.get("/v1/client").json()["client"]["last_active_session_id"]
    operator_browser.post(f"/v1/client/sessions/{session_id}/stop_impersonating", json={})
    redeem(operator_browser, create_actor_token(backend, ada["id"], reason="Ticket #43")["token"])
    assert [n["reason"] for n in _notices(browser)] == ["Ticket #43"]
