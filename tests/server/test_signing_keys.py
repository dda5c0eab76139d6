"""Signing keys: encrypted at rest, bound to their kid, rotated publish-then-sign."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.clock import FrozenClock
from actas.server.credentials import Secret
from actas.server.db.schema import SigningKey
from actas.server.signing_keys import SCHEDULE_TTL_MS, KeyRing, published_jwks
from tests.conftest import make_settings
from tests.support.flows import create_user, mint, sign_in

LEAD_MS = 300_000


def _token_lifetime_ms(instance: Instance) -> int:
    # What `actas keys rotate` passes: the token lifetime plus the clock skew.
    settings = instance.settings
    return (settings.session_token_lifetime + settings.clock_skew) * 1000


def _rotate(instance: Instance, lead_ms: int = LEAD_MS) -> SigningKey:
    with instance.transaction() as db:
        return instance.keys.rotate(
            db, algorithm=instance.settings.signing_algorithm, now_ms=instance.now_ms(),
            lead_ms=lead_ms, token_lifetime_ms=_token_lifetime_ms(instance))


def _signer_kid(instance: Instance) -> str:
    with instance.transaction() as db:
        return instance.keys.current_signer(db, instance.now_ms()).kid


def _published_kids(instance: Instance) -> list[str]:
    with instance.transaction() as db:
        return [key["kid"] for key in published_jwks(db, instance.now_ms())["keys"]]


def _kid_of(token: str) -> str:
    kid: str = pyjwt.get_unverified_header(token)["kid"]
    return kid


def test_private_key_is_stored_encrypted(instance: Instance) -> None:
    with instance.transaction() as db:
        private_key = instance.keys.current_signer(db, instance.now_ms()).private_key
        stored = db.scalars(select(SigningKey.private_key_ciphertext)).one()
    der = private_key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    assert der not in stored and der[-64:] not in stored
    assert pem not in stored


def test_a_key_ring_with_another_instance_secret_cannot_decrypt(instance: Instance) -> None:
    other = KeyRing(Secret("another-instance-secret-" + "x" * 32))
    with instance.transaction() as db, pytest.raises(InvalidTag):
        other.current_signer(db, instance.now_ms())


def test_a_ciphertext_moved_to_another_kid_fails_to_decrypt(instance: Instance) -> None:
    now = instance.now_ms()
    with instance.transaction() as db:
        first = db.scalars(select(SigningKey)).one()
        second = instance.keys.create(db, algorithm=instance.settings.signing_algorithm,
                                      now_ms=now, signs_from=now + 1)
        assert KeyRing(instance.settings.instance_secret).current_signer(db, now + 1).kid \
            == second.kid  # its own ciphertext decrypts
        second.private_key_ciphertext = first.private_key_ciphertext
        db.flush()
        with pytest.raises(InvalidTag):
            KeyRing(instance.settings.instance_secret).current_signer(db, now + 1)


def test_a_rotated_key_is_published_at_once_but_signs_only_from_signs_from(
        instance: Instance, clock: FrozenClock) -> None:
    old = _signer_kid(instance)

    new = _rotate(instance)

    assert new.signs_from == instance.now_ms() + LEAD_MS
    assert _published_kids(instance) == [new.kid, old]
    assert _signer_kid(instance) == old
    clock.advance(ms=LEAD_MS - 1)
    assert _signer_kid(instance) == old
    clock.advance(ms=1)
    assert _signer_kid(instance) == new.kid


def test_the_replaced_key_stays_published_until_its_last_token_expires(
        instance: Instance, clock: FrozenClock) -> None:
    old = _signer_kid(instance)
    new = _rotate(instance)

    # Its last token: signed up to the schedule cache's TTL after the switch, by a
    # replica that has not re-read the schedule yet.
    clock.advance(ms=LEAD_MS + SCHEDULE_TTL_MS + _token_lifetime_ms(instance) - 1)
    assert _published_kids(instance) == [new.kid, old]
    clock.advance(ms=1)
    assert _published_kids(instance) == [new.kid]
    assert _signer_kid(instance) == new.kid


@pytest.fixture
def other_replica(tmp_path: Path, database_url: str, engine: Engine, clock: FrozenClock,
                  instance: Instance) -> Instance:
    """A second process on the same database (its own key ring and cache)."""
    return Instance.start(make_settings(tmp_path, database_url), clock=clock, engine=engine)


def test_a_rotation_on_another_replica_signs_here_within_the_schedule_ttl(
        instance: Instance, other_replica: Instance, clock: FrozenClock) -> None:
    """Each process caches the key schedule for SCHEDULE_TTL_MS; a rotation with no
    publish lead is followed within that time, never later."""
    old = _signer_kid(instance)  # this process has read the schedule
    new = _rotate(other_replica, lead_ms=0)

    assert _signer_kid(other_replica) == new.kid  # the rotating process: at once
    clock.advance(ms=SCHEDULE_TTL_MS - 1)
    assert _signer_kid(instance) == old
    clock.advance(ms=1)
    assert _signer_kid(instance) == new.kid


def test_with_a_publish_lead_longer_than_the_ttl_every_replica_switches_at_signs_from(
        instance: Instance, other_replica: Instance, clock: FrozenClock) -> None:
    old = _signer_kid(instance)
    new = _rotate(other_replica)  # LEAD_MS, the CLI's default, is well over the TTL

    for replica in (instance, other_replica):
        clock.advance(ms=SCHEDULE_TTL_MS)  # refreshes of the cache meanwhile
        assert _signer_kid(replica) == old
    clock.advance(ms=new.signs_from - clock.now_ms() - 1)
    assert (_signer_kid(instance), _signer_kid(other_replica)) == (old, old)
    clock.advance(ms=1)
    assert (_signer_kid(instance), _signer_kid(other_replica)) == (new.kid, new.kid)


def test_tokens_carry_the_kid_of_the_current_signer_across_a_rotation(
        instance: Instance, clock: FrozenClock, backend: TestClient,
        browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)
    old = _signer_kid(instance)
    assert _kid_of(mint(browser, session_id)) == old

    new = _rotate(instance)
    assert _kid_of(mint(browser, session_id)) == old
    clock.advance(ms=LEAD_MS)

    assert _kid_of(mint(browser, session_id)) == new.kid


@pytest.mark.parametrize("settings_overrides", [{"signing_algorithm": "ES256"},
                                                {"signing_algorithm": "EdDSA"}],
                         ids=["ES256", "EdDSA"])
def test_tokens_of_each_algorithm_verify_against_the_served_jwks(
        settings_overrides: dict[str, Any], backend: TestClient, browser: TestClient,
        app_client: TestClient) -> None:
    alg = settings_overrides["signing_algorithm"]
    user = create_user(backend)
    token = mint(browser, sign_in(browser))

    header = pyjwt.get_unverified_header(token)
    jwks = app_client.get("/.well-known/jwks.json").json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = pyjwt.decode(token, pyjwt.PyJWK(jwk).key, algorithms=[alg],
                          issuer="https://actas.test")
    assert header["alg"] == alg and jwk["alg"] == alg
    assert claims["sub"] == user["id"]
