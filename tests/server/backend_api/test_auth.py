"""Backend API authentication: the secret key in ``Authorization: Bearer``."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.support.flows import error_code

BACKEND_ROUTES = [("GET", "/v1/users"), ("POST", "/v1/users"), ("GET", "/v1/users/user_x"),
                  ("GET", "/v1/sessions"), ("POST", "/v1/sessions/sess_x/revoke"),
                  ("GET", "/v1/jwks")]


@pytest.mark.parametrize(("method", "path"), BACKEND_ROUTES)
def test_every_backend_route_needs_the_secret_key(app_client: TestClient, method: str,
                                                  path: str) -> None:
    missing = app_client.request(method, path)
    wrong = app_client.request(method, path,
                               headers={"Authorization": "Bearer sk_test_" + "w" * 40})
    malformed = app_client.request(method, path, headers={"Authorization": "Basic Zm9vOmJhcg=="})

    assert missing.status_code == 401 and error_code(missing) == "authorization_header_missing"
    assert wrong.status_code == 401 and error_code(wrong) == "authentication_invalid"
    assert malformed.status_code == 401
    assert error_code(malformed) == "authorization_header_format_invalid"


def test_a_session_cookie_is_not_a_secret_key(app_client: TestClient) -> None:
    response = app_client.get("/v1/users", headers={"Authorization": "Bearer eyJhbGciOi.x.y"})
    assert response.status_code == 401


def test_jwks_lists_the_signing_key(backend: TestClient) -> None:
    keys = backend.get("/v1/jwks").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])  # public half only
