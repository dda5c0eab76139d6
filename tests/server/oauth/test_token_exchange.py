"""RFC 8693 token exchange: an application's admin tool, with a machine credential of its
own, exchanges a user id for a ticket to act as that user; the same policy, and RFC 6749
errors for everything refused.

The attacks: a wrong or revoked secret; a tool allowed read-only asking for full; a tool
naming an operator to borrow rights neither has (a protected user); no reason given; a
signed client assertion replayed, meant for another server, expired or good for too
long, signed with another key or with an algorithm the key is not for; refreshing a
backend JWT.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.testclient import TestClient

import actas
from actas.server import Instance, machine_clients, operators
from actas.server.audit import RequestOrigin
from actas.server.clock import FrozenClock
from actas.server.db.schema import MachineClient
from actas.server.oauth.token_exchange import JWT, TOKEN_EXCHANGE, USER_ID
from tests.conftest import APP_ORIGIN
from tests.support.dashboard import PASSWORD as DASHBOARD_PASSWORD
from tests.support.dashboard import sign_in as dashboard_sign_in
from tests.support.flows import (
    claims,
    create_actor_token,
    create_user,
    error_code,
    mint,
    redeem,
    sign_in,
)
from tests.support.processes import ActasServer, actas_env, described, run_actas

CLI = RequestOrigin(user_agent="test")
OPERATOR_ID = "urn:actas:params:oauth:token-type:operator_id"


def _machine(instance: Instance, **rights: bool) -> tuple[str, str]:
    with instance.transaction() as db:
        row, secret = machine_clients.create(db, instance, name="Admin console", origin=CLI,
                                             **rights)
        return row.id, secret.reveal()


def _exchange(client: TestClient, credentials: tuple[str, str], **form: str) -> Any:
    basic = base64.b64encode(":".join(credentials).encode()).decode()
    body = {"grant_type": TOKEN_EXCHANGE, "subject_token_type": USER_ID,
            "reason": "Ticket #77: wrong invoice", **form}
    return client.post("/oauth/token", data=body, headers={"Authorization": f"Basic {basic}"})


def test_a_tool_exchanges_a_user_id_for_a_ticket_and_acts_as_the_user(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    ada = create_user(backend)
    tool = _machine(instance)
    answer = _exchange(app_client, tool, subject_token=ada["id"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["issued_token_type"] == "urn:actas:params:oauth:token-type:ticket"
    assert body["token_type"] == "N_A" and "/v1/tickets/accept?ticket=" in body["url"]
    assert answer.headers["cache-control"] == "no-store"
    session_id = redeem(browser, body["access_token"])
    jwt = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={}).json()["jwt"]
    act = claims(jwt)["act"]
    assert act["sub"] == tool[0] and act["name"] == "Admin console"
    assert claims(jwt)["act_mode"] == "read_only"
    [created] = backend.get("/v1/audit_events", params={
        "type": "actor_token.created"}).json()["data"]
    assert created["reason"] == "Ticket #77: wrong invoice"


def test_naming_an_operator_applies_their_role_and_the_tools_rights_together(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    ada = create_user(backend)
    vip = create_user(backend, "vip@example.com", protected=True)
    with instance.transaction() as db:
        sam = operators.create(db, instance, email="sam@s.test", role="support",
                               password="long enough", name="Sam Support")
        olive = operators.create(db, instance, email="olive@s.test", role="owner",
                                 password="long enough")
    tool = _machine(instance, may_impersonate_protected=True)
    as_sam = _exchange(app_client, tool, subject_token=ada["id"], actor_token=sam.id,
                       actor_token_type=OPERATOR_ID)
    session_id = redeem(browser, as_sam.json()["access_token"])
    jwt = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={}).json()["jwt"]
    assert claims(jwt)["act"]["sub"] == sam.id and claims(jwt)["act"]["name"] == "Sam Support"

    refused = _exchange(app_client, tool, subject_token=vip["id"], actor_token=sam.id,
                        actor_token_type=OPERATOR_ID)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    plain = _machine(instance)  # an owner may, but this tool may not: neither borrows
    borrowed = _exchange(app_client, plain, subject_token=vip["id"], actor_token=olive.id,
                         actor_token_type=OPERATOR_ID)
    assert borrowed.json()["error"] == "unauthorized_client"
    refusals = backend.get("/v1/audit_events", params={
        "type": "impersonation.refused"}).json()["data"]
    assert len(refusals) == 2


def test_every_refusal_is_an_rfc_6749_error(app_client: TestClient, backend: TestClient,
                                            instance: Instance) -> None:
    ada = create_user(backend)
    client_id, secret = _machine(instance)
    wrong = _exchange(app_client, (client_id, "mcs_" + secrets.token_hex(20)),
                      subject_token=ada["id"])
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    cases = [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"subject_token": ""}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "invalid_grant"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
         "invalid_request"),
        ({"mode": "full"}, "unauthorized_client"),  # this tool is read-only
        ({"reason": ""}, "invalid_request"),
        ({"duration": "forever"}, "invalid_request"),
        ({"subject_token": "user_nobody"}, "invalid_grant"),
        ({"actor_token": "op_nobody", "actor_token_type": OPERATOR_ID}, "invalid_grant"),
    ]
    for form, error in cases:
        answer = _exchange(app_client, (client_id, secret),
                           **{"subject_token": ada["id"], **form})
        assert answer.status_code == 400 and answer.json()["error"] == error, (form, answer.text)
    told = backend.get("/v1/audit_events", params={"type": "oauth.exchange_refused",
                                                    "limit": 100}).json()["data"]
    assert sorted(e["data"]["error"] for e in told) == sorted(error for _, error in cases)
    assert {e["data"]["client_id"] for e in told} == {client_id}
    posted = app_client.post("/oauth/token", data={  # client_secret_post works too
        "grant_type": TOKEN_EXCHANGE, "subject_token": ada["id"],
        "subject_token_type": USER_ID, "reason": "r", "client_id": client_id,
        "client_secret": secret})
    assert posted.status_code == 200
    with instance.transaction() as db:
        machine_clients.revoke(db, instance, client_id, origin=CLI)
    revoked = _exchange(app_client, (client_id, secret), subject_token=ada["id"])
    assert revoked.status_code == 401
    assert backend.get("/v1/audit_events", params={
        "type": "oauth.client_refused"}).json()["data"]


def test_the_discovery_document_advertises_the_exchange(app_client: TestClient) -> None:
    document = app_client.get("/.well-known/openid-configuration").json()
    assert document["token_endpoint"] == "https://actas.test/oauth/token"
    assert TOKEN_EXCHANGE in document["grant_types_supported"]


def test_an_oauth_library_nobody_here_wrote_performs_the_exchange(tmp_path: Path) -> None:
    """Authlib's OAuth2Client against `actas serve` over real HTTP on loopback; then PyJWT
    verifies the impersonation's token, and its act, against the served JWKS."""
    secret_key = "sk_test_" + secrets.token_hex(20)
    env = actas_env(ACTAS_SECRET_KEY=secret_key, ACTAS_ALLOWED_ORIGINS=APP_ORIGIN,
                    ACTAS_COOKIE_SECURE="false")
    made = run_actas("machines", "create", "--name", "Admin console", "--data-dir", "data",
                     cwd=tmp_path, env=env)
    assert made.returncode == 0, described(made)
    tool = json.loads(made.stdout)
    with ActasServer(["--data-dir", "data"], cwd=tmp_path, env=env) as server:
        with httpx.Client(base_url=server.url, trust_env=False,
                          headers={"Authorization": f"Bearer {secret_key}"}) as backend:
            ada = backend.post("/v1/users", json={"email_address": ["ada@example.com"]}).json()
        with OAuth2Client(tool["client_id"], tool["client_secret"], trust_env=False) as oauth:
            token = oauth.fetch_token(f"{server.url}/oauth/token", grant_type=TOKEN_EXCHANGE,
                                      subject_token=ada["id"], subject_token_type=USER_ID,
                                      reason="Ticket #77")
        assert token["issued_token_type"] == "urn:actas:params:oauth:token-type:ticket"
        with httpx.Client(base_url=server.url, trust_env=False,
                          headers={"Origin": APP_ORIGIN}) as browser:
            accepted = browser.get(token["url"])
            assert accepted.status_code == 303, accepted.text
            client = browser.get("/v1/client").json()["client"]
            session_id = client["last_active_session_id"]
            jwt = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={}).json()["jwt"]
            jwks = pyjwt.PyJWKSet.from_dict(browser.get("/.well-known/jwks.json").json())
        kid = pyjwt.get_unverified_header(jwt)["kid"]
        verified = pyjwt.decode(jwt, jwks[kid].key, algorithms=["RS256"], issuer=server.url,
                                options={"verify_aud": False})
        assert verified["sub"] == ada["id"]
        assert verified["act"]["sub"] == tool["client_id"]
        assert verified["act"]["name"] == "Admin console"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _keyed_machine(instance: Instance, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                   ) -> str:
    with instance.transaction() as db:
        row, secret = machine_clients.create(db, instance, name="Signed tool", origin=CLI,
                                             public_key_pem=_pem(key))
        assert secret is None
        return row.id


def _assertion(key: Any, client_id: str, clock: FrozenClock, *, alg: str = "ES256",
               **claims: Any) -> str:
    now = clock.now_ms() // 1000
    body = {"iss": client_id, "sub": client_id, "aud": "https://actas.test/oauth/token",
            "iat": now, "exp": now + 60, "jti": secrets.token_hex(16), **claims}
    return pyjwt.encode(body, key, algorithm=alg)


def _signed_exchange(client: TestClient, assertion: str, **form: str) -> Any:
    return client.post("/oauth/token", data={
        "grant_type": TOKEN_EXCHANGE, "subject_token_type": USER_ID, "reason": "Ticket #78",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion, **form})


def test_private_key_jwt_signs_the_tool_in_and_each_assertion_counts_once(
        app_client: TestClient, backend: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    ada = create_user(backend)
    key = ec.generate_private_key(ec.SECP256R1())
    tool = _keyed_machine(instance, key)
    good = _assertion(key, tool, clock)
    first = _signed_exchange(app_client, good, subject_token=ada["id"])
    assert first.status_code == 200, first.text
    assert _signed_exchange(app_client, good, subject_token=ada["id"]).status_code == 401

    other = ec.generate_private_key(ec.SECP256R1())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "replayed": good,
        "another key": _assertion(other, tool, clock),
        "another server": _assertion(key, tool, clock, aud="https://elsewhere.test/token"),
        "expired": _assertion(key, tool, clock, exp=clock.now_ms() // 1000 - 60),
        "good for a day": _assertion(key, tool, clock, exp=clock.now_ms() // 1000 + 86400),
        "not yet": _assertion(key, tool, clock, nbf=clock.now_ms() // 1000 + 600),
        "no jti": _assertion(key, tool, clock, jti=None),
        "iss is not the client": _assertion(key, tool, clock, iss="mc_other"),
        "an algorithm the key is not for": _assertion(stranger, tool, clock, alg="RS256"),
        "unsigned": _assertion(None, tool, clock, alg="none"),
        "not a JWT": "a.b",
    }
    for why, assertion in refused.items():
        answer = _signed_exchange(app_client, assertion, subject_token=ada["id"])
        assert answer.status_code == 401, why
        assert answer.json()["error"] == "invalid_client", why
    wrong_type = _signed_exchange(app_client, _assertion(key, tool, clock),
                                  subject_token=ada["id"], client_assertion_type="saml")
    assert wrong_type.status_code == 401
    with instance.transaction() as db:
        machine_clients.revoke(db, instance, tool, origin=CLI)
    revoked = _signed_exchange(app_client, _assertion(key, tool, clock),
                               subject_token=ada["id"])
    assert revoked.status_code == 401
    # A tool with a key has no secret: the basic scheme with any secret fails.
    assert _exchange(app_client, (tool, "mcs_" + "0" * 40),
                     subject_token=ada["id"]).status_code == 401


def test_a_backend_jwt_is_short_and_nothing_can_refresh_it(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance, clock: FrozenClock) -> None:
    ada = create_user(backend)
    tool = _machine(instance)
    answer = _exchange(app_client, tool, subject_token=ada["id"], requested_token_type=JWT,
                       duration="3600")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["issued_token_type"] == JWT and body["token_type"] == "Bearer"
    token = claims(body["access_token"])
    assert token["sub"] == ada["id"] and token["act"]["sub"] == tool[0]
    assert token["act_mode"] == "read_only" and token["sid"] == body["session_id"]
    assert body["expires_in"] == token["exp"] - token["iat"] <= 60
    session = backend.get(f"/v1/sessions/{body['session_id']}").json()
    assert session["actor"]["sub"] == tool[0]
    assert session["expire_at"] - session["created_at"] <= 300_000  # capped, not an hour
    # No browser holds its client: the Frontend API will not refresh it for anyone.
    refreshed = browser.post(f"/v1/client/sessions/{body['session_id']}/tokens", json={})
    assert refreshed.status_code in (401, 404)
    [accepted] = backend.get("/v1/audit_events", params={
        "type": "actor_token.accepted"}).json()["data"]
    assert accepted["session_id"] == body["session_id"]


def test_authlib_signs_in_with_private_key_jwt_over_http(tmp_path: Path) -> None:
    """Authlib's PrivateKeyJWT client authentication against `actas serve`, asking for a
    backend JWT, which PyJWT then verifies against the served JWKS."""
    secret_key = "sk_test_" + secrets.token_hex(20)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "tool.pem").write_text(_pem(key))
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    env = actas_env(ACTAS_SECRET_KEY=secret_key, ACTAS_ALLOWED_ORIGINS=APP_ORIGIN,
                    ACTAS_COOKIE_SECURE="false")
    made = run_actas("machines", "create", "--name", "Signed console", "--public-key",
                     "tool.pem", "--data-dir", "data", cwd=tmp_path, env=env)
    assert made.returncode == 0, described(made)
    tool = json.loads(made.stdout)
    assert "client_secret" not in tool
    with ActasServer(["--data-dir", "data"], cwd=tmp_path, env=env) as server:
        with httpx.Client(base_url=server.url, trust_env=False,
                          headers={"Authorization": f"Bearer {secret_key}"}) as backend:
            ada = backend.post("/v1/users", json={"email_address": ["ada@example.com"]}).json()
        endpoint = f"{server.url}/oauth/token"
        with OAuth2Client(tool["client_id"], private_pem,
                          token_endpoint_auth_method=PrivateKeyJWT(endpoint, alg="RS256"),
                          trust_env=False) as oauth:
            # Authlib's assertion is good for an hour by default: the longest accepted.
            token = oauth.fetch_token(endpoint, grant_type=TOKEN_EXCHANGE,
                                      subject_token=ada["id"], subject_token_type=USER_ID,
                                      requested_token_type=JWT, reason="Ticket #79")
        assert token["issued_token_type"] == JWT
        with httpx.Client(base_url=server.url, trust_env=False) as plain:
            jwks = pyjwt.PyJWKSet.from_dict(plain.get("/.well-known/jwks.json").json())
    jwt = token["access_token"]
    verified = pyjwt.decode(jwt, jwks[pyjwt.get_unverified_header(jwt)["kid"]].key,
                            algorithms=["RS256"], issuer=server.url,
                            # Signature, issuer and claims; not the wall clock (a busy
                            # machine may take longer than the token's minute to get here).
                            options={"verify_aud": False, "verify_exp": False})
    assert verified["sub"] == ada["id"] and verified["act"]["sub"] == tool["client_id"]


def test_the_users_own_token_naming_the_actor_in_may_act_is_a_subject(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    """The user, signed in, authorises Sam (RFC 8693 §4.4 may_act); the tool exchanges that
    token acting for Sam, once. Anything else the user did not say is refused."""
    ada = create_user(backend)
    with instance.transaction() as db:
        sam = operators.create(db, instance, email="sam@s.test", role="support",
                               password="long enough", name="Sam Support")
        olive = operators.create(db, instance, email="olive@s.test", role="owner",
                                 password="long enough")
    tool = _machine(instance)
    session_id = sign_in(browser)
    authorised = browser.post(f"/v1/client/sessions/{session_id}/tokens/may_act",
                              json={"actor": sam.id})
    assert authorised.status_code == 200, authorised.text
    subject = authorised.json()["jwt"]
    assert claims(subject)["may_act"] == {"sub": sam.id} and claims(subject)["sub"] == ada["id"]

    def exchange(token: str, actor: str) -> Any:
        return _exchange(app_client, tool, subject_token=token, subject_token_type=JWT,
                         actor_token=actor, actor_token_type=OPERATOR_ID)

    assert exchange(subject, olive.id).json()["error"] == "invalid_grant"  # not whom she named
    granted = exchange(subject, sam.id)
    assert granted.status_code == 200, granted.text
    assert "/v1/tickets/accept?ticket=" in granted.json()["url"]
    [created, *_] = backend.get("/v1/audit_events", params={
        "type": "actor_token.created"}).json()["data"]
    assert created["user_id"] == ada["id"] and created["actor_sub"] == sam.id
    assert exchange(subject, sam.id).json()["error"] == "invalid_grant"  # once
    assert exchange(mint(browser, session_id), sam.id).json()["error"] == "invalid_grant"
    assert exchange(subject[:-4] + "AAAA", sam.id).json()["error"] == "invalid_grant"

    unknown = browser.post(f"/v1/client/sessions/{session_id}/tokens/may_act",
                           json={"actor": "op_nobody"})
    assert unknown.status_code == 422 and error_code(unknown) == "form_param_value_invalid"
    later = browser.post(f"/v1/client/sessions/{session_id}/tokens/may_act",
                         json={"actor": sam.id}).json()["jwt"]
    assert browser.post(f"/v1/client/sessions/{session_id}/end", json={}).status_code == 200
    assert exchange(later, sam.id).json()["error"] == "invalid_grant"  # she signed out
    issued = backend.get("/v1/audit_events", params={
        "type": "session.may_act_issued"}).json()["data"]
    assert len(issued) == 2 and issued[0]["data"]["may_act"] == {"sub": sam.id}


def test_an_impersonator_cannot_authorise_anyone_for_the_user(
        backend: TestClient, browser: TestClient) -> None:
    ada = create_user(backend)
    ticket = create_actor_token(backend, ada["id"])["token"]
    session_id = redeem(browser, ticket)
    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens/may_act",
                           json={"actor": "op_alice"})
    assert refused.status_code == 403
    assert error_code(refused) == "impersonated_session_forbidden"


def test_an_operators_own_token_proves_whom_the_tool_acts_for(
        dashboard: TestClient, app_client: TestClient, backend: TestClient,
        browser: TestClient, instance: Instance, clock: FrozenClock) -> None:
    """Sam, signed in to the dashboard, gives the console a token of his: it names him for
    that tool only, for the step-up window, and only while he is enabled."""
    ada = create_user(backend)
    with instance.transaction() as db:
        sam = operators.create(db, instance, email="sam@s.test", role="support",
                               password=DASHBOARD_PASSWORD, name="Sam Support")
        operators.create(db, instance, email="vera@s.test", role="viewer",
                         password=DASHBOARD_PASSWORD)
    console, other = _machine(instance), _machine(instance)
    csrf_token = dashboard_sign_in(dashboard, "sam@s.test")
    account = dashboard.get("/dashboard/account").text
    assert "Act through an admin tool" in account
    page = dashboard.post("/dashboard/account/actor_tokens",
                          data={"csrf_token": csrf_token, "client_id": console[0]})
    assert page.status_code == 200, page.text
    found = re.search(r'data-testid="operator-token-value">([^<]+)<', page.text)
    assert found
    token = found.group(1).strip()

    def exchange(tool: tuple[str, str], actor_token: str) -> Any:
        return _exchange(app_client, tool, subject_token=ada["id"], actor_token=actor_token,
                         actor_token_type=JWT)

    granted = exchange(console, token)
    assert granted.status_code == 200, granted.text
    [created, *_] = backend.get("/v1/audit_events", params={
        "type": "actor_token.created"}).json()["data"]
    assert created["actor_sub"] == sam.id
    assert exchange(other, token).json()["error"] == "invalid_grant"  # not its token
    assert exchange(console, token[:-3] + "AAA").json()["error"] == "invalid_grant"
    users_token = mint(browser, sign_in(browser))
    assert exchange(console, users_token).json()["error"] == "invalid_grant"
    clock.advance(seconds=11 * 60)
    assert "expired" in exchange(console, token).json()["error_description"]

    dashboard.cookies.clear()
    viewer = dashboard_sign_in(dashboard, "vera@s.test")
    assert dashboard.post("/dashboard/account/actor_tokens", data={
        "csrf_token": viewer, "client_id": console[0]}).status_code == 403
    issued = backend.get("/v1/audit_events", params={
        "type": "operator.actor_token_issued"}).json()["data"]
    assert [e["actor_sub"] for e in issued] == [sam.id]


def test_revoking_a_tool_ends_what_it_started(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    ada = create_user(backend)
    grace = create_user(backend, "grace@example.com")
    tool = _machine(instance)
    live = redeem(browser, _exchange(app_client, tool, subject_token=ada["id"]).json()[
        "access_token"])
    pending = _exchange(app_client, tool, subject_token=grace["id"]).json()["access_token"]
    with instance.transaction() as db:
        machine_clients.revoke(db, instance, tool[0], origin=CLI)
    assert backend.get(f"/v1/sessions/{live}").json()["status"] == "revoked"
    assert browser.post(f"/v1/client/sessions/{live}/tokens", json={}).status_code != 200
    refused = TestClient(app_client.app, base_url="https://actas.test",
                         headers={"Origin": APP_ORIGIN}).get(
        "/v1/tickets/accept", params={"ticket": pending}, follow_redirects=False)
    assert refused.status_code in (400, 410)
    [ended] = backend.get("/v1/audit_events", params={
        "type": "machine_client.impersonations_ended"}).json()["data"]
    assert ended["data"]["client_id"] == tool[0] and ended["data"]["sessions_revoked"] == 1


def test_hostile_input_to_the_exchange_is_a_clear_error(
        app_client: TestClient, backend: TestClient, instance: Instance) -> None:
    ada = create_user(backend)
    tool = _machine(instance)
    odd = _exchange(app_client, tool, subject_token=ada["id"], duration="²")
    assert odd.status_code == 400 and odd.json()["error"] == "invalid_request"
    nested = "[" * 3000
    header = base64.urlsafe_b64encode(nested.encode()).rstrip(b"=").decode()
    deep = _signed_exchange(app_client, f"{header}.e30.AAAA", subject_token=ada["id"])
    assert deep.status_code == 401 and deep.json()["error"] == "invalid_client"


def test_a_may_act_token_is_no_session_token_for_an_application(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    """What the user hands to an admin tool must not let anyone into the application as the
    user: the SDK refuses it."""
    create_user(backend)
    with instance.transaction() as db:
        sam = operators.create(db, instance, email="sam@s.test", role="support",
                               password="long enough")
    session_id = sign_in(browser)
    token = browser.post(f"/v1/client/sessions/{session_id}/tokens/may_act",
                         json={"actor": sam.id}).json()["jwt"]
    verifier = actas.Verifier(issuer="https://actas.test",
                              jwks=app_client.get("/.well-known/jwks.json").json(),
                              now=lambda: instance.now_ms() / 1000)
    assert verifier.authenticate(token).user_id is None
    assert verifier.authenticate(mint(browser, session_id)).user_id is not None


def test_a_ticket_a_revoked_tool_got_is_refused_when_redeemed(
        app_client: TestClient, backend: TestClient, browser: TestClient,
        instance: Instance) -> None:
    """A revocation racing an exchange may miss the ticket just issued; the redemption
    checks the tool again (as every later refresh does)."""
    ada = create_user(backend)
    tool = _machine(instance)
    ticket = _exchange(app_client, tool, subject_token=ada["id"]).json()["access_token"]
    with instance.transaction() as db:  # revoked, the clean-up not seen by this ticket
        row = db.get(MachineClient, tool[0])
        assert row is not None
        row.revoked_at = instance.now_ms()
    refused = browser.post("/v1/client/sign_ins", json={"strategy": "ticket",
                                                        "ticket": ticket})
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "impersonation_not_permitted"


def test_an_operators_token_ends_with_their_dashboard_session(
        dashboard: TestClient, app_client: TestClient, backend: TestClient,
        instance: Instance) -> None:
    ada = create_user(backend)
    with instance.transaction() as db:
        operators.create(db, instance, email="sam@s.test", role="support",
                         password=DASHBOARD_PASSWORD)
    console = _machine(instance)
    csrf_token = dashboard_sign_in(dashboard, "sam@s.test")
    page = dashboard.post("/dashboard/account/actor_tokens",
                          data={"csrf_token": csrf_token, "client_id": console[0]}).text
    found = re.search(r'data-testid="operator-token-value">([^<]+)<', page)
    assert found
    token = found.group(1).strip()
    form = {"subject_token": ada["id"], "actor_token": token, "actor_token_type": JWT}
    assert _exchange(app_client, console, **form).status_code == 200
    dashboard.post("/dashboard/sign_out", data={"csrf_token": csrf_token})
    after = _exchange(app_client, console, **form)
    assert after.json()["error"] == "invalid_grant"
    assert "signed out" in after.json()["error_description"]
    [issued] = backend.get("/v1/audit_events", params={
        "type": "operator.actor_token_issued"}).json()["data"]
    assert issued["data"]["jti"].startswith("opat_")
