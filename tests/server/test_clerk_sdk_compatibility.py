"""Clerk's own Backend SDK (clerk-backend-api) works against actas by changing its base URL.

Clerk's SDK validates every response strictly, so this proves the users,
sessions and actor tokens shapes (and the error envelope) field by field.
"""

from __future__ import annotations

import clerk_backend_api
import pytest
from starlette.testclient import TestClient

from tests.conftest import SECRET_KEY
from tests.support.flows import redeem, sign_in

# Clerk's generated SDK touches deprecated pydantic attributes while building
# its query strings: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def clerk(app_client: TestClient) -> object:
    # The test client is an httpx.Client: Clerk's SDK sends its requests through it.
    return clerk_backend_api.Clerk(bearer_auth=SECRET_KEY, server_url="https://actas.test/v1",
                                   client=app_client)


def test_users_through_clerks_sdk(clerk: object) -> None:
    users = clerk.users  # type: ignore[attr-defined]
    created = users.create(email_address=["ada@example.com"], first_name="Ada",
                           password="correct horse battery", public_metadata={"plan": "pro"})
    assert created.id.startswith("user_") and created.first_name == "Ada"
    assert created.email_addresses[0].email_address == "ada@example.com"
    assert [u.id for u in users.list(request={"email_address": ["ada@example.com"]})] == \
        [created.id]
    assert users.count(request={}).total_count == 1
    assert users.get(user_id=created.id).public_metadata == {"plan": "pro"}
    assert users.update(user_id=created.id, last_name="Lovelace").last_name == "Lovelace"
    merged = users.update_metadata(user_id=created.id, public_metadata={"seats": 3})
    assert merged.public_metadata == {"plan": "pro", "seats": 3}
    assert [u.id for u in users.list(request={"order_by": "+email_address"})] == [created.id]
    assert users.ban(user_id=created.id).banned is True
    assert users.unban(user_id=created.id).banned is False
    deleted = users.delete(user_id=created.id)
    assert deleted.deleted is True
    with pytest.raises(clerk_backend_api.models.ClerkErrors) as missing:
        users.get(user_id=created.id)
    assert missing.value.data.errors[0].code == "resource_not_found"


def test_sessions_and_actor_tokens_through_clerks_sdk(clerk: object, browser: TestClient
                                                     ) -> None:
    user = clerk.users.create(  # type: ignore[attr-defined]
        email_address=["ada@example.com"], password="correct horse battery")
    own = sign_in(browser, "ada@example.com", "correct horse battery")
    token = clerk.actor_tokens.create(request={  # type: ignore[attr-defined]
        "user_id": user.id, "actor": {"sub": "op_alice", "reason": "Ticket #1"}})
    assert token.status == "pending" and token.token and token.url
    with TestClient(browser.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as support:
        impersonation = redeem(support, token.token)

    sessions = clerk.sessions.list(user_id=user.id)  # type: ignore[attr-defined]
    assert {s.id for s in sessions} == {own, impersonation}
    fetched = clerk.sessions.get(session_id=impersonation)  # type: ignore[attr-defined]
    assert fetched.id == impersonation and fetched.actor is not None  # Clerk's Actor model
    minted = clerk.sessions.create_token(session_id=own)  # type: ignore[attr-defined]
    assert minted.jwt
    revoked = clerk.sessions.revoke(session_id=impersonation)  # type: ignore[attr-defined]
    assert revoked.status == "revoked"
    pending = clerk.actor_tokens.create(request={  # type: ignore[attr-defined]
        "user_id": user.id, "actor": {"sub": "op_bob", "reason": "Ticket #2"}})
    assert clerk.actor_tokens.revoke(  # type: ignore[attr-defined]
        actor_token_id=pending.id).status == "revoked"
