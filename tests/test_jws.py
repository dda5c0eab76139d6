"""``encode_compact`` produces JWS that an independent library (PyJWT) verifies."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import actas
from actas._jws import Algorithm, PrivateKey, encode_compact, public_jwk

PAYLOAD = {"sub": "user_1", "sid": "sess_1", "iat": 1_764_072_000}


def _key(alg: Algorithm) -> PrivateKey:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(params=["RS256", "ES256", "EdDSA"])
def alg(request: pytest.FixtureRequest) -> Algorithm:
    value: Algorithm = request.param
    return value


def test_token_verifies_with_pyjwt_using_the_public_key(alg: Algorithm) -> None:
    key = _key(alg)
    token = encode_compact({"kid": "k1", "typ": "JWT"}, PAYLOAD, key, alg)
    claims = pyjwt.decode(token, key.public_key(), algorithms=[alg])
    assert claims == PAYLOAD


def test_token_verifies_with_pyjwt_using_the_public_jwk(alg: Algorithm) -> None:
    key = _key(alg)
    token = encode_compact({"kid": "k1"}, PAYLOAD, key, alg)
    jwk = pyjwt.PyJWK(public_jwk(key.public_key(), kid="k1", alg=alg))
    claims = pyjwt.decode(token, jwk.key, algorithms=[alg])
    assert claims == PAYLOAD


def test_token_signed_by_another_key_does_not_verify(alg: Algorithm) -> None:
    token = encode_compact({}, PAYLOAD, _key(alg), alg)
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, _key(alg).public_key(), algorithms=[alg])


@pytest.mark.parametrize("claimed", ["none", "HS256", "RS256"])
def test_header_alg_comes_from_the_argument_not_the_header_dict(alg: Algorithm,
                                                                claimed: str) -> None:
    token = encode_compact({"alg": claimed, "kid": "k1", "typ": "JWT"}, PAYLOAD, _key(alg), alg)
    assert pyjwt.get_unverified_header(token) == {"alg": alg, "kid": "k1", "typ": "JWT"}


@pytest.mark.parametrize(("alg", "key"), [
    ("RS256", ec.generate_private_key(ec.SECP256R1())),
    ("RS256", ed25519.Ed25519PrivateKey.generate()),
    ("ES256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ("ES256", ed25519.Ed25519PrivateKey.generate()),
    # ES256 is ECDSA on P-256 only (RFC 7518 §3.4); another curve is the wrong key.
    ("ES256", ec.generate_private_key(ec.SECP384R1())),
    ("ES256", ec.generate_private_key(ec.SECP256K1())),
    ("EdDSA", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ("EdDSA", ec.generate_private_key(ec.SECP256R1())),
], ids=["RS256-ec", "RS256-ed25519", "ES256-rsa", "ES256-ed25519", "ES256-p384",
        "ES256-secp256k1", "EdDSA-rsa", "EdDSA-ec"], indirect=["alg"])
def test_a_key_of_the_wrong_type_for_the_alg_raises_value_error(alg: Algorithm,
                                                                key: PrivateKey) -> None:
    with pytest.raises(ValueError, match=alg):
        encode_compact({}, PAYLOAD, key, alg)


@pytest.mark.parametrize("actor", [
    {"sub": "op_1", "name": "José Ñúñez 山田", "email": "jose@example.com"},  # UTF-8, unescaped
    {"sub": "op_1", "ticket": 2**70},  # beyond what orjson writes: json writes it
    {"sub": "op_1", "nested": {"a": [1, 2.5, None, True, "\u2028"]}},
])
def test_any_json_claims_round_trip_through_pyjwt_and_the_sdk(actor: dict[str, object]) -> None:
    key = _key("RS256")
    payload = {**PAYLOAD, "iss": "https://actas.test", "exp": PAYLOAD["iat"] + 60,
               "act": actor}
    token = encode_compact({"kid": "k1", "typ": "JWT"}, payload, key, "RS256")
    assert pyjwt.decode(token, key.public_key(), algorithms=["RS256"],
                        options={"verify_exp": False}) == payload
    verifier = actas.Verifier(issuer="https://actas.test",
                              jwks={"keys": [public_jwk(key.public_key(), kid="k1",
                                                        alg="RS256")]},
                              now=lambda: PAYLOAD["iat"])
    assert verifier.verify(token).claims == payload


def test_a_claim_no_utf8_can_hold_is_refused_with_a_clear_error() -> None:
    """An unpaired surrogate (from a library caller: request bodies refuse them) made
    the fallback fail with a UnicodeEncodeError; written escaped, it would make a
    token that no verifier accepts. It is a ValueError that says why."""
    key = _key("RS256")
    payload = {**PAYLOAD, "act": {"sub": "op_1", "name": "\ud800"}}
    with pytest.raises(ValueError, match="not valid Unicode"):
        encode_compact({"kid": "k1", "typ": "JWT"}, payload, key, "RS256")
