"""Frontend API: sign-up, password sign-in, and the client they create."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.clock import FrozenClock
from tests.support.flows import PASSWORD, create_user, error_code, sign_in


def test_sign_up_creates_user_client_and_session(browser: TestClient, backend: TestClient
                                                 ) -> None:
    response = browser.post("/v1/client/sign_ups", json={
        "email_address": "new@example.com", "password": PASSWORD, "first_name": "New"})

    assert response.status_code == 200, response.text
    attempt, client = response.json()["response"], response.json()["client"]
    assert attempt["object"] == "sign_up_attempt" and attempt["status"] == "complete"
    assert client["last_active_session_id"] == attempt["created_session_id"]
    [session] = client["sessions"]
    assert session["user"]["id"] == attempt["created_user_id"]
    assert session["user"]["first_name"] == "New"
    assert backend.get(f"/v1/users/{attempt['created_user_id']}").status_code == 200


def test_client_cookie_is_httponly_secure_lax(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    response = browser.post("/v1/client/sign_ins",
                            json={"identifier": "ada@example.com", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-client=ct_")  # Secure, so the __Host- prefix
    assert "Path=/" in cookie and "domain" not in cookie.lower()
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie


def test_sign_in_by_username_and_get_client(backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend, username="ada")
    session_id = sign_in(browser, "ADA")

    client = browser.get("/v1/client").json()["response"]

    assert client["object"] == "client"
    assert [s["id"] for s in client["sessions"]] == [session_id]
    assert client["sessions"][0]["user"]["id"] == user["id"]
    assert client["sessions"][0]["public_user_data"]["identifier"] == "ada@example.com"


def test_wrong_password_and_unknown_user_look_the_same(backend: TestClient,
                                                       browser: TestClient) -> None:
    create_user(backend)
    wrong = browser.post("/v1/client/sign_ins",
                         json={"identifier": "ada@example.com", "password": "nope nope"})
    unknown = browser.post("/v1/client/sign_ins",
                           json={"identifier": "nobody@example.com", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 422
    assert wrong.json() == unknown.json()
    assert error_code(wrong) == "form_credentials_invalid"
    assert "set-cookie" not in wrong.headers  # a failed sign-in creates no client


def test_user_without_password_cannot_password_sign_in(backend: TestClient,
                                                       browser: TestClient) -> None:
    backend.post("/v1/users", json={"email_address": ["nopw@example.com"]})
    response = browser.post("/v1/client/sign_ins",
                            json={"identifier": "nopw@example.com", "password": "anything!"})
    assert error_code(response) == "form_credentials_invalid"


def test_one_browser_holds_several_sessions_and_ending_one_keeps_the_other(
        backend: TestClient, browser: TestClient) -> None:
    create_user(backend, "ada@example.com")
    create_user(backend, "bob@example.com")
    ada = sign_in(browser, "ada@example.com")
    bob = sign_in(browser, "bob@example.com")
    assert browser.get("/v1/client").json()["response"]["last_active_session_id"] == bob

    ended = browser.post(f"/v1/client/sessions/{bob}/end", json={}).json()

    assert ended["response"]["status"] == "ended"
    assert ended["client"]["last_active_session_id"] == ada
    assert [s["id"] for s in ended["client"]["sessions"]] == [ada]


def test_end_clears_the_session_cookie(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)
    response = browser.post(f"/v1/client/sessions/{session_id}/end", json={})
    assert 'Max-Age=0' in response.headers["set-cookie"]
    assert response.headers["set-cookie"].startswith("__session=")


def test_private_metadata_never_reaches_the_browser(backend: TestClient,
                                                    browser: TestClient) -> None:
    create_user(backend, private_metadata={"risk": "fraud-suspect"},
                public_metadata={"plan": "pro"})
    signed_in = browser.post("/v1/client/sign_ins",
                             json={"identifier": "ada@example.com", "password": PASSWORD})
    client = browser.get("/v1/client")
    changed = browser.post("/v1/me/change_password",
                           json={"current_password": PASSWORD, "new_password": "another one!"})
    for response in (signed_in, client, changed):
        assert "fraud-suspect" not in response.text and "private_metadata" not in response.text
    assert client.json()["response"]["sessions"][0]["user"]["public_metadata"] == {"plan": "pro"}


def test_password_guessing_is_limited_and_audited(backend: TestClient, browser: TestClient,
                                                  clock: FrozenClock) -> None:
    create_user(backend)
    for _ in range(10):
        wrong = browser.post("/v1/client/sign_ins",
                             json={"identifier": "ada@example.com", "password": "guess!!!"})
        assert error_code(wrong) == "form_credentials_invalid"
    limited = browser.post("/v1/client/sign_ins",
                           json={"identifier": "ADA@example.com", "password": PASSWORD})
    assert limited.status_code == 429 and error_code(limited) == "too_many_requests"
    wait = limited.json()["errors"][0]["meta"]["retry_after_seconds"]
    assert int(limited.headers["Retry-After"]) == wait > 0
    failures = backend.get("/v1/audit_events",
                           params={"type": "user.sign_in_failed", "limit": 50}).json()["data"]
    assert len(failures) == 10 and failures[0]["actor_sub"] is None
    assert failures[0]["data"] == {"identifier": "ada@example.com"}
    clock.advance(seconds=15 * 60 + 1)
    sign_in(browser)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_parallel_guesses_cannot_slip_under_the_limit(backend: TestClient,
                                                      instance: Instance) -> None:
    import threading

    from actas.server import create_app

    create_user(backend)
    statuses: list[int] = []
    app = create_app(instance)  # one app, as in production; warmed up before the race
    with TestClient(app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as warm:
        warm.post("/v1/client/sign_ins", json={"identifier": "nobody@example.com",
                                               "password": "warming up"})

    def guess() -> None:
        with TestClient(app, base_url="https://actas.test",
                        headers={"Origin": "http://localhost:3000"}) as client:
            statuses.append(client.post("/v1/client/sign_ins", json={
                "identifier": "ada@example.com", "password": "guess!!!"}).status_code)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(statuses) == [422] * 10 + [429] * 10


def test_a_banned_account_never_confirms_its_password(backend: TestClient,
                                                      browser: TestClient) -> None:
    """Account oracle: the answer for a banned user is the same, right password or not."""
    user = create_user(backend)
    backend.post(f"/v1/users/{user['id']}/ban")
    right = browser.post("/v1/client/sign_ins",
                         json={"identifier": "ada@example.com", "password": PASSWORD})
    wrong = browser.post("/v1/client/sign_ins",
                         json={"identifier": "ada@example.com", "password": "not the one"})
    assert right.status_code == wrong.status_code == 403
    assert right.json() == wrong.json() and error_code(right) == "user_banned"
    assert user["id"] not in right.text  # nor does it hand out the account's id
