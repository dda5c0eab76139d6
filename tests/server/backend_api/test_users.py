"""Backend API: users, in Clerk's shapes."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from actas.server.clock import FrozenClock
from actas.server.instance import Instance
from tests.support.flows import PASSWORD, create_user, error_code, sign_in


def test_create_returns_clerks_user_shape_without_the_password(backend: TestClient) -> None:
    user = create_user(backend, "Ada@Example.com", username="Ada_L", first_name="Ada",
                       last_name="Lovelace", public_metadata={"plan": "pro"},
                       private_metadata={"stripe": "cus_1"}, unsafe_metadata={"theme": "dark"})

    assert user["object"] == "user" and user["id"].startswith("user_")
    assert user["username"] == "ada_l"
    assert [e["email_address"] for e in user["email_addresses"]] == ["ada@example.com"]
    email = user["email_addresses"][0]
    assert user["primary_email_address_id"] == email["id"] and email["id"].startswith("idn_")
    assert email["verification"]["object"] == "verification_admin"
    assert user["password_enabled"] is True
    assert user["public_metadata"] == {"plan": "pro"}
    assert user["private_metadata"] == {"stripe": "cus_1"}
    assert user["banned"] is False
    assert isinstance(user["created_at"], int) and user["created_at"] > 1_600_000_000_000
    for absent in ("phone_numbers", "web3_wallets", "passkeys", "external_accounts"):
        assert user[absent] == []
    assert "password" not in user and not any("hash" in key for key in user)


def test_get_update_and_delete(backend: TestClient) -> None:
    user = create_user(backend)

    assert backend.get(f"/v1/users/{user['id']}").json() == user
    updated = backend.patch(f"/v1/users/{user['id']}",
                            json={"first_name": "Grace", "public_metadata": {"a": 1}}).json()
    assert updated["first_name"] == "Grace" and updated["public_metadata"] == {"a": 1}
    assert updated["last_name"] == user["last_name"]  # absent fields are untouched
    deleted = backend.delete(f"/v1/users/{user['id']}")
    assert deleted.json() == {"id": user["id"], "object": "user", "deleted": True}
    gone = backend.get(f"/v1/users/{user['id']}")
    assert gone.status_code == 404 and error_code(gone) == "resource_not_found"


def test_clearing_a_field_with_null(backend: TestClient) -> None:
    user = create_user(backend, first_name="Ada")
    updated = backend.patch(f"/v1/users/{user['id']}", json={"first_name": None}).json()
    assert updated["first_name"] is None


def test_password_change_takes_effect_at_sign_in(backend: TestClient,
                                                 browser: TestClient) -> None:
    user = create_user(backend)
    backend.patch(f"/v1/users/{user['id']}", json={"password": "a whole new password"})
    old = browser.post("/v1/client/sign_ins", json={"identifier": "ada@example.com",
                                                    "password": PASSWORD})
    assert old.status_code == 422 and error_code(old) == "form_credentials_invalid"
    sign_in(browser, password="a whole new password")


def test_a_new_password_is_hashed_before_the_transaction(
        backend: TestClient, instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id (~130 ms, 64 MiB) runs before the update's transaction: on SQLite a
    write made meanwhile would otherwise wait for the database's one write lock,
    and the update would answer with the user as it was before that write."""
    user = create_user(backend)
    real_hash = instance.passwords.hash
    during: list[int] = []

    def hash_while_another_writes(password: str) -> str:
        during.append(backend.patch(f"/v1/users/{user['id']}/metadata",
                                    json={"public_metadata": {"during": True}}).status_code)
        return real_hash(password)

    monkeypatch.setattr(instance.passwords, "hash", hash_while_another_writes)
    changed = backend.patch(f"/v1/users/{user['id']}",
                            json={"password": "a whole new password", "first_name": "Grace"})
    assert changed.status_code == 200, changed.text
    assert during == [200]
    assert changed.json()["public_metadata"] == {"during": True}
    assert changed.json()["first_name"] == "Grace"


def test_duplicate_email_and_username_are_refused_case_insensitively(
        backend: TestClient) -> None:
    create_user(backend, "ada@example.com", username="ada")
    email = backend.post("/v1/users", json={"email_address": ["ADA@example.com"]})
    username = backend.post("/v1/users", json={"email_address": ["b@example.com"],
                                                "username": "ADA"})
    assert email.status_code == 422 and error_code(email) == "form_identifier_exists"
    assert email.json()["errors"][0]["meta"] == {"param_name": "email_address"}
    assert error_code(username) == "form_identifier_exists"
    assert backend.get("/v1/users/count").json() == {"object": "total_count", "total_count": 1}


def test_invalid_fields_name_the_parameter(backend: TestClient) -> None:
    cases = {
        "not-an-email": {"email_address": ["not-an-email"]},
        "short password": {"email_address": ["a@example.com"], "password": "short"},
        "bad username": {"email_address": ["a@example.com"], "username": "a b"},
        "no identifier": {"first_name": "Ada"},
        "unknown field": {"email_address": ["a@example.com"], "is_admin": True},
        "wrong type": {"email_address": "a@example.com"},
    }
    expected_param = {
        "not-an-email": "email_address", "short password": "password",
        "bad username": "username", "no identifier": "email_address",
        "unknown field": "is_admin", "wrong type": "email_address",
    }
    for name, body in cases.items():
        response = backend.post("/v1/users", json=body)
        assert response.status_code == 422, name
        error = response.json()["errors"][0]
        assert error["meta"]["param_name"] == expected_param[name], name
        assert error["code"].startswith("form_"), name
        assert error["message"] and error["long_message"], name
    assert backend.get("/v1/users").json() == []  # nothing half-written


def test_list_filters_orders_and_pages(backend: TestClient) -> None:
    ids = [create_user(backend, f"user{i}@example.com", first_name=f"N{i}",
                       username=f"user{i}")["id"] for i in range(5)]

    newest_first = [u["id"] for u in backend.get("/v1/users").json()]
    assert newest_first == ids[::-1]
    oldest_first = [u["id"] for u in backend.get("/v1/users",
                                                 params={"order_by": "+created_at"}).json()]
    assert oldest_first == ids
    page = backend.get("/v1/users", params={"limit": 2, "offset": 1, "paginated": "true"})
    assert [u["id"] for u in page.json()["data"]] == ids[::-1][1:3]
    assert page.json()["total_count"] == 5
    by_email = backend.get("/v1/users", params=[("email_address", "USER3@example.com"),
                                                ("email_address", "user1@example.com")])
    assert {u["id"] for u in by_email.json()} == {ids[1], ids[3]}
    assert [u["id"] for u in backend.get("/v1/users", params={"query": "user2"}).json()] \
        == [ids[2]]
    assert [u["id"] for u in backend.get("/v1/users", params={"query": "n4"}).json()] \
        == [ids[4]]
    # LIKE wildcards in a query are literal characters, not patterns.
    assert backend.get("/v1/users", params={"query": "%"}).json() == []
    by_name = backend.get("/v1/users", params={"order_by": "-username"}).json()
    assert [u["username"] for u in by_name] == [f"user{i}" for i in range(4, -1, -1)]
    bad = backend.get("/v1/users", params={"order_by": "password_hash"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["meta"]["param_name"] == "order_by"
    too_many = backend.get("/v1/users", params={"limit": 501})
    assert too_many.status_code == 422 and error_code(too_many) == "form_param_format_invalid"


def test_ban_revokes_sessions_and_refuses_sign_in_until_unbanned(
        backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    session_id = sign_in(browser)

    banned = backend.post(f"/v1/users/{user['id']}/ban").json()

    assert banned["banned"] is True
    assert backend.get(f"/v1/sessions/{session_id}").json()["status"] == "revoked"
    refused = browser.post("/v1/client/sign_ins",
                           json={"identifier": "ada@example.com", "password": PASSWORD})
    assert refused.status_code == 403 and error_code(refused) == "user_banned"
    assert backend.post(f"/v1/users/{user['id']}/unban").json()["banned"] is False
    sign_in(browser)


def test_unknown_user_ids_are_404_everywhere(backend: TestClient) -> None:
    for method, path in [("GET", "/v1/users/user_nope"), ("PATCH", "/v1/users/user_nope"),
                         ("DELETE", "/v1/users/user_nope"), ("POST", "/v1/users/user_nope/ban")]:
        response = backend.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path)
        assert error_code(response) == "resource_not_found"


def test_order_by_email_and_time_range_filters(backend: TestClient, clock: FrozenClock
                                               ) -> None:
    b = create_user(backend, "b@example.com")
    clock.advance(seconds=10)
    a = create_user(backend, "a@example.com")
    clock.advance(seconds=10)
    c = create_user(backend, "c@example.com")

    by_email = backend.get("/v1/users", params={"order_by": "+email_address"}).json()
    assert [u["id"] for u in by_email] == [a["id"], b["id"], c["id"]]
    between = backend.get("/v1/users", params={"created_at_after": b["created_at"],
                                               "created_at_before": c["created_at"]}).json()
    assert [u["id"] for u in between] == [a["id"]]


def test_metadata_merge_is_deep_and_null_removes(backend: TestClient) -> None:
    user = create_user(backend, public_metadata={"plan": "pro", "flags": {"beta": True,
                                                                          "old": 1}},
                       private_metadata={"stripe": "cus_1"})
    merged = backend.patch(f"/v1/users/{user['id']}/metadata", json={
        "public_metadata": {"flags": {"old": None, "new": 2}, "seats": 5}}).json()
    assert merged["public_metadata"] == {"plan": "pro", "seats": 5,
                                         "flags": {"beta": True, "new": 2}}
    assert merged["private_metadata"] == {"stripe": "cus_1"}  # untouched
