"""Public discovery documents."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_openid_configuration_points_at_the_jwks(app_client: TestClient) -> None:
    document = app_client.get("/.well-known/openid-configuration").json()
    assert document["issuer"] == "https://actas.test"
    assert document["jwks_uri"] == "https://actas.test/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_public_jwks_equals_the_backend_jwks(app_client: TestClient,
                                             backend: TestClient) -> None:
    public = app_client.get("/.well-known/jwks.json")
    assert public.headers["cache-control"].startswith("public")
    assert public.json() == backend.get("/v1/jwks").json()
