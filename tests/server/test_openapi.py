"""The served OpenAPI document describes the server as it is."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_document_is_openapi_31_and_every_documented_operation_is_served(
        backend: TestClient) -> None:
    document = backend.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    for method, path in documented:
        response = backend.request(method, path.replace("{", "").replace("}", ""), json={})
        unrouted = response.status_code == 405 or (
            response.status_code == 404 and "nothing at this address" in response.text)
        assert not unrouted, (method, path)
    assert ("POST", "/v1/client/sessions/{session_id}/tokens") in documented
    assert ("GET", "/v1/sessions") in documented


def test_an_undocumented_address_is_a_404_envelope(backend: TestClient) -> None:
    response = backend.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "resource_not_found"


def test_errors_are_documented_as_the_envelope(app_client: TestClient) -> None:
    document = app_client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        if path == "/v1/tickets/accept":  # a page for people: its errors are HTML
            assert "text/html" in item["get"]["responses"]["400"]["content"]
            continue
        for method, operation in item.items():
            for status in ("400", "401", "404", "422"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, \
                    (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_backend_routes_declare_the_secret_key(app_client: TestClient) -> None:
    document = app_client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    users = document["paths"]["/v1/users"]["get"]
    assert users["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/v1/client"]["get"]


def test_documented_user_fields_are_what_the_server_sends(backend: TestClient) -> None:
    document = backend.get("/openapi.json").json()
    schema = document["components"]["schemas"]["UserObject"]
    user = backend.post("/v1/users", json={"email_address": ["doc@example.com"]}).json()
    assert set(user) == set(schema["properties"])
