"""No request a client can send yields a 500, and a refused request writes nothing.

Every operation in the served OpenAPI document is sent a corpus of hostile
bodies, path parameters and query strings; each answer must be a 4xx with
the error envelope (or a success), never a 5xx.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server.db.schema import Base
from actas.server.http.bodies import RequestBody
from tests.support.flows import create_user, sign_in

BODIES: list[tuple[str, bytes]] = [
    ("not json", b"{not json"),
    ("truncated", b'{"email_address": ["a@b.c"'),
    ("array", b"[1, 2, 3]"),
    ("string", b'"hello"'),
    ("null", b"null"),
    ("number", b"1e999999"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000),
    ("nul byte", b'{"email_address": ["a\\u0000@b.c"], "username": "x\\u0000y", '
                 b'"identifier": "a\\u0000", "password": "p\\u0000assword!", '
                 b'"first_name": "\\u0000"}'),
    ("lone surrogate", b'{"first_name": "\\ud800", "identifier": "\\udfff", '
                       b'"password": "\\ud800\\ud800xxxxxx", "email_address": "\\ud800@x.io"}'),
    ("huge int", b'{"limit": 99999999999999999999999999, "first_name": 1e308}'),
    ("wrong types", b'{"email_address": {"a": 1}, "password": [], "username": 5, '
                    b'"public_metadata": "x", "identifier": null, "strategy": 3}'),
    ("long strings", b'{"email_address": ["' + b"a" * 5000 + b'@x.io"], "username": "'
                     + b"u" * 5000 + b'", "identifier": "' + b"i" * 5000 + b'", "password": "'
                     + b"p" * 5000 + b'"}'),
    ("big metadata", b'{"email_address": ["m@x.io"], "public_metadata": {"k": "'
                     + b"v" * 20000 + b'"}}'),
    ("invalid utf-8", b'{"first_name": "\xff\xfe"}'),
    ("empty", b""),
]

PATH_VALUES = ["x", "user_" + "A" * 500, "%00", "..%2F..%2Fetc", "' OR 1=1 --", "%F0%9F%92%A9",
               "sess_%00"]

QUERIES: list[dict[str, Any] | list[tuple[str, str]]] = [
    {"limit": "-1"}, {"limit": "abc"}, {"offset": "99999999999999999999999"},
    {"order_by": "'; DROP TABLE users; --"}, {"status": "\x00"}, {"query": "\x00%_\\"},
    {"paginated": "maybe"}, {"user_id": "u" * 5000}, {"banned": "2"},
    [("email_address", "\x00")] * 50,
]


def _operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _assert_client_error(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["errors"][0]["code"] and body["errors"][0]["message"], what


@pytest.fixture
def signed_in(backend: TestClient, browser: TestClient) -> str:
    create_user(backend)
    return sign_in(browser)


def test_hostile_bodies_get_4xx(backend: TestClient, browser: TestClient, signed_in: str
                                ) -> None:
    for method, path in _operations(backend):
        if method not in {"POST", "PATCH"}:
            continue
        url = _fill(path, signed_in if "session" in path else "user_x")
        for name, body in BODIES:
            for client in (backend, browser):
                response = client.request(method, url, content=body,
                                          headers={"Content-Type": "application/json"})
                _assert_client_error(response, f"{method} {url} with {name}")


def test_hostile_path_parameters_get_4xx(backend: TestClient, browser: TestClient) -> None:
    for method, path in _operations(backend):
        if "{" not in path:
            continue
        for value in PATH_VALUES:
            for client in (backend, browser):
                response = client.request(method, _fill(path, value), json={})
                _assert_client_error(response, f"{method} {path} with {value!r}")


def test_hostile_query_strings_get_4xx(backend: TestClient) -> None:
    for method, path in _operations(backend):
        if method != "GET" or "{" in path:
            continue
        for params in QUERIES:
            response = backend.get(path, params=params)
            _assert_client_error(response, f"GET {path} with {params!r}"[:200])


def test_hostile_cookies_and_headers_get_4xx(browser: TestClient, backend: TestClient) -> None:
    for cookie in ["ct_" + "x" * 5000, "ct_\x7f", "", "sk_test", "ct_' OR 1=1"]:
        browser.cookies.set("__Host-client", cookie, domain="actas.test")
        _assert_client_error(browser.get("/v1/client"), f"cookie {cookie[:20]!r}")
        _assert_client_error(browser.post("/v1/client/sessions/sess_x/tokens", json={}),
                             f"cookie {cookie[:20]!r}")
    for header in ["Bearer", "Bearer ", "Bearer sk_" + "x" * 10000, "bearer\tsk_x", "sk_x"]:
        response = backend.get("/v1/users", headers={"Authorization": header})
        assert response.status_code == 401, header[:30]


def test_oversized_body_is_refused_before_parsing(backend: TestClient) -> None:
    response = backend.post("/v1/users", content=b"{" + b" " * 2_000_000 + b"}",
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_body_too_large"


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


def test_refused_requests_write_nothing(backend: TestClient, engine: Engine) -> None:
    before = _row_counts(engine)
    for _name, body in BODIES:
        backend.post("/v1/users", content=body, headers={"Content-Type": "application/json"})
    # Valid email, then an invalid field: the user must not be half-created.
    backend.post("/v1/users", json={"email_address": ["ok@example.com", "bad"]})
    backend.post("/v1/users", json={"email_address": ["ok@example.com"], "password": "short"})
    assert _row_counts(engine) == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_and_nothing_is_written(
        constant: str, backend: TestClient, browser: TestClient, engine: Engine) -> None:
    """Python's JSON parser accepts NaN and ±Infinity; JSON has none. SQLite would store
    them and serve ``null`` back, and a NaN in an actor would reach the JWT's ``act``."""
    user = create_user(backend, public_metadata={"score": 1})
    before = _row_counts(engine)
    attempts = [
        (backend, "POST", "/v1/users", "public_metadata",
         '{"email_address": ["nan@example.com"], "public_metadata": {"score": %s}}'),
        (backend, "PATCH", f"/v1/users/{user['id']}", "public_metadata",
         '{"public_metadata": {"scores": [1, {"deep": %s}]}}'),
        (backend, "POST", "/v1/actor_tokens", "actor",
         '{"user_id": "' + user["id"] + '", "actor": {"sub": "op", "x": %s}, "reason": "r"}'),
        (browser, "POST", "/v1/client/sign_ups", "unsafe_metadata",
         '{"email_address": "nan@example.com", "password": "long enough password", '
         '"unsafe_metadata": {"x": %s}}'),
    ]
    for client, method, path, param, body in attempts:
        response = client.request(method, path, content=body % constant,
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        error = response.json()["errors"][0]
        assert error["code"] == "form_param_format_invalid", (path, error)
        assert error["meta"] == {"param_name": param}, (path, error)
        assert error["message"] == (f"{param}: must be a finite number "
                                    "(NaN, Infinity and -Infinity are not JSON)."), error
    assert _row_counts(engine) == before
    assert backend.get(f"/v1/users/{user['id']}").json()["public_metadata"] == {"score": 1}


def _request_body_models() -> set[str]:
    found: set[str] = set()
    pending: list[type[RequestBody]] = [RequestBody]
    while pending:
        model = pending.pop()
        found.add(model.__name__)
        pending.extend(model.__subclasses__())
    return found


def test_every_json_request_body_is_checked_as_a_request_body(backend: TestClient) -> None:
    """The value checks (NUL, surrogates, depth, NaN) live in ``RequestBody``: no endpoint
    may take a JSON body that bypasses them."""
    document = backend.get("/openapi.json").json()
    models = _request_body_models()
    bodies = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, spec in content.items():
                assert media_type == "application/json", (method, path, media_type)
                schema = spec["schema"]  # a model, or an optional one: anyOf [model, null]
                refs = [option["$ref"] for option in schema.get("anyOf", [schema])
                        if option != {"type": "null"}]
                assert len(refs) == 1, (method, path, schema)
                assert refs[0].rpartition("/")[2] in models, (method, path, refs)
                bodies += 1
    assert bodies >= 5


def test_free_form_json_that_could_never_be_served_back_is_refused(
        backend: TestClient, browser: TestClient) -> None:
    """Metadata and actors are free-form: a value stored but unserialisable would break
    every later list that includes it, so it must not get in at all."""
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    hostile = [{"a": deep}, {"a": "\ud800"}, {"\ud800": 1}, {"a": {"b\x00": 1}},
               {"a": [{"b": "c\x00"}]}]

    def post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
        # json.dumps escapes a lone surrogate as \ud800, exactly what a client can send.
        return client.post(path, content=json.dumps(body),
                           headers={"Content-Type": "application/json"})

    for i, metadata in enumerate(hostile):
        signed_up = post(browser, "/v1/client/sign_ups", {
            "email_address": f"h{i}@example.com", "password": "long enough password",
            "unsafe_metadata": metadata})
        created = post(backend, "/v1/users", {"email_address": [f"b{i}@example.com"],
                                              "public_metadata": metadata})
        assert signed_up.status_code == created.status_code == 422, (metadata, signed_up.text)
    user = create_user(backend)
    actor = post(backend, "/v1/actor_tokens", {
        "user_id": user["id"], "actor": {"sub": "op_x", "name": "\ud800"}, "reason": "r"})
    assert actor.status_code == 422
    assert backend.get("/v1/users").status_code == 200
    assert backend.get("/v1/audit_events").status_code == 200


def test_a_wrong_method_names_every_method_the_address_takes(backend: TestClient) -> None:
    """Routes of included routers hide their methods: Allow must still name them all."""
    response = backend.put("/v1/users", json={})
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, POST"
    assert backend.request("PUT", "/v1/me").headers["allow"] == "PATCH, DELETE"
