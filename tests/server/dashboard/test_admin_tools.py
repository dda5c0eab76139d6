"""Admin tools in the dashboard: an owner creates a machine client (its secret shown once,
or a public key and no secret), and revokes it; nobody else may."""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.oauth.token_exchange import TOKEN_EXCHANGE, USER_ID
from tests.support.dashboard import _operator, sign_in
from tests.support.flows import create_user

# A curve cryptography can read but not use: it must be a clear 422, not a crash.
SECP160R1_PEM = """-----BEGIN PUBLIC KEY-----
MD4wEAYHKoZIzj0CAQYFK4EEAAgDKgAEDtImLD9Uq9GTMSY4WRL5GneWRRGEWFX5
DePal0/av0dh+WmgvoEyww==
-----END PUBLIC KEY-----
"""


def _exchange(client: TestClient, client_id: str, secret: str, user_id: str) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/oauth/token", headers={"Authorization": f"Basic {basic}"}, data={
        "grant_type": TOKEN_EXCHANGE, "subject_token": user_id, "subject_token_type": USER_ID,
        "reason": "Ticket #80"}).status_code


def test_an_owner_creates_a_tool_whose_secret_works_until_revoked(
        dashboard: TestClient, app_client: TestClient, backend: TestClient,
        instance: Instance) -> None:
    ada = create_user(backend)
    _operator(instance, "olive@owner.test", "owner")
    token = sign_in(dashboard, "olive@owner.test")
    created = dashboard.post("/dashboard/admin_tools", data={
        "csrf_token": token, "name": "Support console", "full": "yes"})
    assert created.status_code == 200
    client_id = re.search(r'data-testid="client-id">(mc_[^<]+)<', created.text)
    secret = re.search(r'data-testid="client-secret">(mcs_[^<]+)<', created.text)
    assert client_id and secret, created.text
    assert _exchange(app_client, client_id.group(1), secret.group(1), ada["id"]) == 200
    listed = dashboard.get("/dashboard/admin_tools").text
    assert "Support console" in listed and secret.group(1) not in listed  # shown once

    revoked = dashboard.post(f"/dashboard/admin_tools/{client_id.group(1)}/revoke",
                             data={"csrf_token": token})
    assert revoked.status_code == 303
    assert _exchange(app_client, client_id.group(1), secret.group(1), ada["id"]) == 401
    assert "revoked" in dashboard.get("/dashboard/admin_tools").text
    events = backend.get("/v1/audit_events").json()["data"]
    made = {e["type"]: e["actor_sub"] for e in events if e["type"].startswith("machine_client")}
    assert made["machine_client.created"] == made["machine_client.revoked"] is not None


def test_a_tool_with_a_public_key_has_no_secret_and_a_bad_key_is_explained(
        dashboard: TestClient, instance: Instance) -> None:
    _operator(instance, "olive@owner.test", "owner")
    token = sign_in(dashboard, "olive@owner.test")
    pem = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    keyed = dashboard.post("/dashboard/admin_tools", data={
        "csrf_token": token, "name": "Signed console", "public_key": pem})
    assert keyed.status_code == 200 and 'data-testid="client-secret"' not in keyed.text
    assert "private_key_jwt" in keyed.text
    bad = dashboard.post("/dashboard/admin_tools", data={
        "csrf_token": token, "name": "Broken", "public_key": "-----BEGIN nonsense"})
    assert bad.status_code == 422 and "not a PEM public key" in bad.text
    assert "Broken" in bad.text  # the form keeps what was typed
    for pem in (SECP160R1_PEM, ec.generate_private_key(ec.SECP384R1()).public_key()
                .public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()):
        curve = dashboard.post("/dashboard/admin_tools", data={
            "csrf_token": token, "name": "Odd curve", "public_key": pem})
        assert curve.status_code == 422, curve.text


def test_only_owners_manage_admin_tools(dashboard: TestClient, instance: Instance) -> None:
    _operator(instance, "sam@support.test", "support")
    token = sign_in(dashboard, "sam@support.test")
    assert dashboard.get("/dashboard/admin_tools").status_code == 403
    assert dashboard.post("/dashboard/admin_tools", data={
        "csrf_token": token, "name": "Sneaky", "full": "yes",
        "protected": "yes"}).status_code == 403
    assert "Admin tools" not in dashboard.get("/dashboard/users").text
