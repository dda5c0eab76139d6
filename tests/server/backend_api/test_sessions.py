"""Backend API: sessions (list with Clerk's parameters, get, revoke, tokens)."""

from __future__ import annotations

import jwt as pyjwt
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.clock import FrozenClock
from tests.support.flows import create_user, error_code, sign_in

SESSION_FIELDS = {"id", "object", "user_id", "client_id", "actor", "status",
                  "last_active_organization_id", "latest_activity", "last_active_at",
                  "expire_at", "abandon_at", "created_at", "updated_at",
                  "impersonation_mode"}  # actas's one addition: read_only | full | null


def test_session_object_has_clerks_fields(backend: TestClient, browser: TestClient,
                                          instance: Instance) -> None:
    user = create_user(backend)
    session_id = sign_in(browser)

    session = backend.get(f"/v1/sessions/{session_id}").json()

    assert set(session) == SESSION_FIELDS
    assert session["object"] == "session" and session["status"] == "active"
    assert session["user_id"] == user["id"] and session["client_id"].startswith("client_")
    assert session["actor"] is None and session["impersonation_mode"] is None
    settings = instance.settings
    assert session["expire_at"] - session["created_at"] == settings.session_max_lifetime * 1000
    assert session["abandon_at"] - session["last_active_at"] == \
        settings.session_inactivity_timeout * 1000


def test_list_filters_by_user_client_and_status(backend: TestClient, browser: TestClient
                                                ) -> None:
    ada = create_user(backend, "ada@example.com")
    bob = create_user(backend, "bob@example.com")
    first = sign_in(browser, "ada@example.com")
    second = sign_in(browser, "ada@example.com")
    bobs = sign_in(browser, "bob@example.com")
    backend.post(f"/v1/sessions/{first}/revoke")

    def ids(**params: object) -> list[str]:
        response = backend.get("/v1/sessions", params=params)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()]

    assert ids(user_id=ada["id"]) == [second, first]
    assert ids(user_id=bob["id"]) == [bobs]
    assert ids(user_id=ada["id"], status="active") == [second]
    assert ids(status="revoked") == [first]
    client_id = backend.get(f"/v1/sessions/{first}").json()["client_id"]
    assert ids(client_id=client_id) == [bobs, second, first]
    assert ids(limit=1, offset=1) == [second]
    page = backend.get("/v1/sessions", params={"user_id": ada["id"], "paginated": "true",
                                               "limit": 1}).json()
    assert page["total_count"] == 2 and [s["id"] for s in page["data"]] == [second]
    bad = backend.get("/v1/sessions", params={"status": "zombie"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["meta"]["param_name"] == "status"


def test_abandoned_status_is_derived_from_the_clock(backend: TestClient, browser: TestClient,
                                                   clock: FrozenClock, instance: Instance
                                                   ) -> None:
    create_user(backend)
    session_id = sign_in(browser)
    clock.advance(seconds=instance.settings.session_inactivity_timeout)

    assert backend.get(f"/v1/sessions/{session_id}").json()["status"] == "abandoned"
    listed = backend.get("/v1/sessions", params={"status": "abandoned"}).json()
    assert [s["id"] for s in listed] == [session_id]
    assert backend.get("/v1/sessions", params={"status": "active"}).json() == []


def test_revoke_twice_is_a_clear_error(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)
    assert backend.post(f"/v1/sessions/{session_id}/revoke").status_code == 200
    again = backend.post(f"/v1/sessions/{session_id}/revoke")
    assert again.status_code == 400 and error_code(again) == "session_not_active"
    missing = backend.post("/v1/sessions/sess_missing/revoke")
    assert missing.status_code == 404 and error_code(missing) == "resource_not_found"


def test_backend_minted_token_has_no_azp(backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    session_id = sign_in(browser)
    token = backend.post(f"/v1/sessions/{session_id}/tokens").json()
    claims = pyjwt.decode(token["jwt"], options={"verify_signature": False})
    assert token["object"] == "token"
    assert claims["sub"] == user["id"] and claims["sid"] == session_id and "azp" not in claims


def test_token_refresh_moves_last_active_at(backend: TestClient, browser: TestClient,
                                            clock: FrozenClock) -> None:
    user = create_user(backend)
    session_id = sign_in(browser)
    clock.advance(seconds=300)  # the touch interval: refreshes within it write nothing
    browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    session = backend.get(f"/v1/sessions/{session_id}").json()
    assert session["last_active_at"] == clock.now_ms()
    assert backend.get(f"/v1/users/{user['id']}").json()["last_active_at"] == clock.now_ms()
