"""``encode_compact`` produces JWS that an independent library (PyJWT) verifies, and
``verify_rs256`` answers as cryptography's own RSA verify does."""

from __future__ import annotations

import hashlib

import jwt as pyjwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

import actas
from actas._jws import Algorithm, PrivateKey, encode_compact, public_jwk, verify_rs256

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


# RS256 is verified by recovering the encoded message and comparing it whole
# (actas._jws.verify_rs256), not by cryptography's verify: hand-written, so it is
# held to the same answers as cryptography's verify, on good and on forged blocks.
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_SHA1_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


def _raw_sign(block: bytes) -> bytes:
    """The RSA private operation on a 256-byte block, with no padding of its own: a
    signer that writes whatever encoded message a forger wants."""
    numbers = _RSA.private_numbers()
    value = pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(256, "big")


def _block(body: bytes, *, head: bytes = b"\x00\x01", filler: int = 0xFF,
           separator: bytes = b"\x00") -> bytes:
    return head + bytes([filler]) * (256 - len(head) - len(separator) - len(body)) \
        + separator + body


def _answers(signature: bytes, data: bytes) -> tuple[bool, bool]:
    """(actas accepts, cryptography accepts)."""
    public = _RSA.public_key()
    try:
        verify_rs256(public, data, signature)
        ours = True
    except InvalidSignature:
        ours = False
    try:
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        theirs = True
    except InvalidSignature:
        theirs = False
    return ours, theirs


def test_rs256_accepts_exactly_what_cryptography_accepts_for_real_signatures() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for i in range(40):
        data = f"header.payload-{i}".encode() * (i + 1)
        good = _RSA.sign(data, padding.PKCS1v15(), hashes.SHA256())
        assert _answers(good, data) == (True, True)
        assert _answers(good, data + b"x") == (False, False)
        flipped = bytearray(good)
        flipped[i * 6 % 256] ^= 1 << (i % 8)
        assert _answers(bytes(flipped), data) == (False, False)
        assert _answers(other.sign(data, padding.PKCS1v15(), hashes.SHA256()), data) == (
            False, False)
        # Signed with another hash, or with PSS: the same key, not RS256.
        assert _answers(_RSA.sign(data, padding.PKCS1v15(), hashes.SHA512()), data) == (
            False, False)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        assert _answers(_RSA.sign(data, pss, hashes.SHA256()), data) == (False, False)
        assert _answers(_raw_sign(_block(_SHA256_INFO + hashlib.sha256(data).digest())),
                        data) == (True, True)


def test_rs256_refuses_every_other_spelling_of_a_signature() -> None:
    # A signature whose first byte is zero: RSA recovery alone would also accept it
    # without that byte (the same number), which would be a second text of one token.
    data, i = b"", 0
    while True:
        data = f"zero-led-{i}".encode()
        signature = _RSA.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if signature[0] == 0:
            break
        i += 1
    assert _answers(signature, data) == (True, True)
    assert _answers(signature[1:], data) == (False, False)
    assert _answers(b"\x00" + signature, data) == (False, False)
    assert _answers(b"", data) == (False, False)
    # Numbers the modulus or above: no RSA signature at all.
    n = _RSA.public_key().public_numbers().n
    assert _answers(n.to_bytes(256, "big"), data) == (False, False)
    assert _answers(b"\xff" * 256, data) == (False, False)


@pytest.mark.parametrize("forgery", [
    "no NULL parameters", "SHA-1 DigestInfo", "trailing byte", "short filler",
    "filler not FF", "block type 2", "no separator", "hash only",
])
def test_rs256_refuses_forged_encoded_messages(forgery: str) -> None:
    data = b"header.payload"
    digest = hashlib.sha256(data).digest()
    block = {
        "no NULL parameters": _block(bytes.fromhex("302f300b0609608648016503040201")
                                     + b"\x04\x20" + digest),
        "SHA-1 DigestInfo": _block(_SHA1_INFO + hashlib.sha1(data).digest()),  # noqa: S324  (the forgery)
        "trailing byte": _block(_SHA256_INFO + digest + b"\x00"),
        "short filler": b"\x00\x01" + b"\xff" * 4 + b"\x00" + _SHA256_INFO + digest
                        + b"\x00" * (256 - 7 - 51),
        "filler not FF": _block(_SHA256_INFO + digest, filler=0xFE),
        "block type 2": _block(_SHA256_INFO + digest, head=b"\x00\x02"),
        "no separator": _block(_SHA256_INFO + digest, separator=b"\xff"),
        "hash only": _block(digest),
    }[forgery]
    assert len(block) == 256
    assert _answers(_raw_sign(block), data) == (False, False)
