"""CSRF and CORS: the Frontend API changes state only for allowed origins."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import APP_ORIGIN
from tests.support.flows import PASSWORD, create_user, error_code, sign_in

SIGN_IN = {"identifier": "ada@example.com", "password": PASSWORD}


def test_foreign_origin_is_refused(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    response = browser.post("/v1/client/sign_ins", json=SIGN_IN,
                            headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and error_code(response) == "origin_invalid"
    assert response.json()["errors"][0]["meta"] == {"origin": "https://evil.example"}


def test_missing_origin_is_refused(backend: TestClient, app_client: TestClient) -> None:
    create_user(backend)
    response = app_client.post("/v1/client/sign_ins", json=SIGN_IN)
    assert response.status_code == 403 and error_code(response) == "origin_invalid"


def test_simple_requests_are_refused(backend: TestClient, browser: TestClient) -> None:
    """A cross-site <form> can POST text/plain or urlencoded without a preflight."""
    create_user(backend)
    session_id = sign_in(browser)
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        response = browser.post(f"/v1/client/sessions/{session_id}/end", content=b"{}",
                                headers={"Content-Type": content_type})
        assert response.status_code == 403, content_type
        assert error_code(response) == "request_header_missing"
    assert browser.get("/v1/client").json()["response"]["sessions"]  # still signed in


def test_get_does_not_change_state(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)
    for path in (f"/v1/client/sessions/{session_id}/end",
                 f"/v1/client/sessions/{session_id}/tokens"):
        assert browser.get(path).status_code == 405
    assert backend.get(f"/v1/sessions/{session_id}").json()["status"] == "active"


def test_actas_own_origin_is_trusted(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    response = browser.post("/v1/client/sign_ins", json=SIGN_IN,
                            headers={"Origin": "https://actas.test"})
    assert response.status_code == 200


def test_cors_preflight_allows_credentials_only_for_allowed_origins(
        app_client: TestClient) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return dict(app_client.options("/v1/client/sign_ins", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"}).headers)

    allowed = preflight(APP_ORIGIN)
    assert allowed["access-control-allow-origin"] == APP_ORIGIN
    assert allowed["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in preflight("https://evil.example")


def _cors_headers(response: object) -> dict[str, str]:
    headers = response.headers  # type: ignore[attr-defined]
    return {name: headers[name] for name in ("access-control-allow-origin",
                                             "access-control-allow-credentials", "vary")
            if name in headers}


def test_the_token_refresh_answers_with_the_same_cors_headers_as_the_app(
        backend: TestClient, browser: TestClient) -> None:
    """The refresh is answered before the app's middleware (the hot path): its CORS
    headers must still be those CORSMiddleware gives every other Frontend API answer,
    on success and on refusal, for an allowed origin and a foreign one."""
    create_user(backend)
    session_id = sign_in(browser)
    refresh = f"/v1/client/sessions/{session_id}/tokens"
    other = f"/v1/client/sessions/{session_id}/tokens/may_act"
    for origin in (APP_ORIGIN, "https://evil.example"):
        minted = browser.post(refresh, json={}, headers={"Origin": origin})
        refused = browser.post("/v1/client/sessions/sess_unknown/tokens", json={},
                               headers={"Origin": origin})
        by_the_app = browser.post(other, json={}, headers={"Origin": origin})
        by_the_app_refused = browser.post("/v1/client/sessions/sess_unknown/tokens/may_act",
                                          json={},
                                          headers={"Origin": origin})
        assert minted.status_code == (200 if origin == APP_ORIGIN else 403)
        assert refused.status_code in (403, 404)
        assert _cors_headers(minted) == _cors_headers(by_the_app), origin
        assert _cors_headers(refused) == _cors_headers(by_the_app_refused), origin
    assert _cors_headers(minted) == {"access-control-allow-credentials": "true",
                                     "vary": "Origin"}  # the foreign one: not mirrored
    # No Origin at all: refused, and only Vary, as the app answers.
    browser.headers.pop("Origin")
    try:
        no_origin = browser.post(refresh, json={})
        by_the_app = browser.post(other, json={})
    finally:
        browser.headers["Origin"] = APP_ORIGIN
    assert no_origin.status_code == by_the_app.status_code == 403
    assert _cors_headers(no_origin) == _cors_headers(by_the_app) == {"vary": "Origin"}
    allowed = browser.post(refresh, json={})
    assert _cors_headers(allowed) == {"access-control-allow-origin": APP_ORIGIN,
                                      "access-control-allow-credentials": "true",
                                      "vary": "Origin"}
