"""Session fixation: a client cookie someone else knows never carries a new session.

The attack: Mallory gets a ``__client`` cookie of her own, plants it in Ada's
browser (from a sibling subdomain, or a plain-HTTP response on the network),
and waits for Ada to sign in. Before the fix Ada's session joined Mallory's
client, so Mallory's copy of the cookie could read it, mint its tokens and
delete the account. Now every sign-in, sign-up and ticket redemption gives
the client a fresh secret, and deleting the account needs the password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from actas.server import Instance, create_app
from tests.conftest import APP_ORIGIN
from tests.support.flows import PASSWORD, create_actor_token, create_user, error_code, sign_in

COOKIE = "__Host-client"


@pytest.fixture
def mallory(instance: Instance) -> Iterator[TestClient]:
    """The attacker's own browser."""
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as client:
        yield client


def _sign_in(backend: TestClient, victim: TestClient) -> None:
    sign_in(victim)


def _sign_up(backend: TestClient, victim: TestClient) -> None:
    response = victim.post("/v1/client/sign_ups", json={
        "email_address": "new@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.text


def _redeem(backend: TestClient, victim: TestClient) -> None:
    target = create_user(backend, "grace@example.com")
    ticket = create_actor_token(backend, target["id"])["token"]
    response = victim.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": ticket})
    assert response.status_code == 200, response.text


def _accept_link(backend: TestClient, victim: TestClient) -> None:
    target = create_user(backend, "grace@example.com")
    url = create_actor_token(backend, target["id"])["url"]
    response = victim.get(url.removeprefix("https://actas.test"), follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.mark.parametrize("signs_in", [_sign_in, _sign_up, _redeem, _accept_link],
                         ids=["password", "sign_up", "ticket", "accept_link"])
def test_a_planted_client_cookie_sees_nothing_after_sign_in(
        backend: TestClient, browser: TestClient, mallory: TestClient,
        signs_in: Callable[[TestClient, TestClient], None]) -> None:
    create_user(backend)  # ada@example.com
    create_user(backend, "mallory@example.com")
    sign_in(mallory, "mallory@example.com")
    planted = mallory.cookies[COOKIE]
    browser.cookies.set(COOKIE, planted, domain="actas.test")

    signs_in(backend, browser)

    fresh = browser.cookies[COOKIE]
    assert fresh != planted
    # Mallory's copy of the cookie now opens nothing: not the victim's session,
    # not even her own (she signs in again; her account is untouched).
    assert mallory.get("/v1/client").json()["response"] is None
    victims_session = browser.get("/v1/client").json()["response"]["last_active_session_id"]
    assert error_code(mallory.post(f"/v1/client/sessions/{victims_session}/tokens",
                                   json={})) == "signed_out"
    assert mallory.request("DELETE", "/v1/me", json={"password": "guess"}).status_code == 401


def test_the_old_cookie_stops_working_when_the_same_browser_signs_in_again(
        backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    first = sign_in(browser)
    before = browser.cookies[COOKIE]
    second = sign_in(browser)
    assert browser.cookies[COOKIE] != before
    sessions = browser.get("/v1/client").json()["response"]["sessions"]
    assert {s["id"] for s in sessions} == {first, second}  # the browser keeps both


def test_deleting_the_account_needs_the_password(backend: TestClient,
                                                browser: TestClient) -> None:
    user = create_user(backend)
    sign_in(browser)
    missing = browser.request("DELETE", "/v1/me", json={})
    assert missing.status_code == 422
    wrong = browser.request("DELETE", "/v1/me", json={"password": "not it at all"})
    assert error_code(wrong) == "form_credentials_invalid"
    assert backend.get(f"/v1/users/{user['id']}").status_code == 200

    deleted = browser.request("DELETE", "/v1/me", json={"password": PASSWORD})
    assert deleted.status_code == 200, deleted.text
    assert backend.get(f"/v1/users/{user['id']}").status_code == 404


def test_only_a_plain_http_install_keeps_the_unprefixed_cookie() -> None:
    from actas.server.http import cookies
    from actas.server.settings import load_settings

    assert cookies.client_cookie_name(load_settings({}, cookie_secure=False,
                                                    **_minimal())) == "__client"
    assert cookies.client_cookie_name(load_settings({}, **_minimal())) == COOKIE


def _minimal() -> dict[str, str]:
    return {"secret_key": "sk_test_" + "k" * 40,
            "instance_secret": "test-instance-secret-" + "s" * 32,
            "frontend_api_url": "https://actas.test"}


def test_re_authentication_is_rate_limited_and_audited(backend: TestClient,
                                                       browser: TestClient) -> None:
    """A stolen cookie must not be an unlimited password oracle."""
    user = create_user(backend)
    sign_in(browser)
    answers = [browser.post("/v1/me/change_password", json={
        "current_password": f"guess number {i}", "new_password": "taken over!!"}).status_code
        for i in range(12)]
    assert answers[:10] == [422] * 10 and set(answers[10:]) == {429}
    right = browser.post("/v1/me/change_password",
                         json={"current_password": PASSWORD, "new_password": "taken over!!"})
    assert right.status_code == 429  # the budget is spent for this window, right or wrong
    failures = backend.get("/v1/audit_events", params={
        "type": "user.reauthentication_failed", "user_id": user["id"]}).json()["data"]
    assert len(failures) == 10


def test_changing_the_password_ends_every_other_session(backend: TestClient,
                                                        browser: TestClient,
                                                        mallory: TestClient) -> None:
    create_user(backend)
    stolen = sign_in(mallory)  # think: a session on a stolen laptop
    own = sign_in(browser)
    changed = browser.post("/v1/me/change_password",
                           json={"current_password": PASSWORD, "new_password": "a new one!!"})
    assert changed.status_code == 200, changed.text
    assert error_code(mallory.post(f"/v1/client/sessions/{stolen}/tokens",
                                   json={})) == "session_not_active"
    assert browser.post(f"/v1/client/sessions/{own}/tokens", json={}).status_code == 200


def test_a_session_revoked_during_the_password_check_changes_nothing(
        backend: TestClient, browser: TestClient, instance: Instance,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check runs outside any transaction; what happened meanwhile still counts."""
    user = create_user(backend)
    session_id = sign_in(browser)
    real_verify = instance.passwords.verify

    def verify_while_an_admin_acts(stored: str | None, given: str) -> None:
        backend.post(f"/v1/sessions/{session_id}/revoke")
        real_verify(stored, given)

    monkeypatch.setattr(instance.passwords, "verify", verify_while_an_admin_acts)
    changed = browser.post("/v1/me/change_email",
                           json={"email_address": "mallory@example.com", "password": PASSWORD})
    assert changed.status_code == 400 and error_code(changed) == "session_not_active"
    emails = backend.get(f"/v1/users/{user['id']}").json()["email_addresses"]
    assert [e["email_address"] for e in emails] == ["ada@example.com"]
