"""A corpus of hostile session tokens, each refused with the right reason.

Every token here is built from a real, valid one by the edit an attacker
would make; the verifier must refuse each for the stated reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import actas
from actas._jws import P256_ORDER, b64url_decode, b64url_encode, encode_compact, public_jwk
from tests.sdk.tokens import APP, ISSUER, KEY, KID, NOW, at_now, claims, offline_verifier, sign


def raw(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes,
        signer: Callable[[bytes], bytes] | None = None) -> str:
    """Assemble a token by hand, signing whatever bytes are given with the real key."""
    from cryptography.hazmat.primitives.asymmetric import padding

    def segment(part: dict[str, Any] | bytes) -> str:
        return b64url_encode(part if isinstance(part, bytes) else json.dumps(part).encode())

    signing_input = f"{segment(header)}.{segment(payload)}".encode()
    signature = (signer or (lambda m: KEY.sign(m, padding.PKCS1v15(), hashes.SHA256())))(
        signing_input)
    return f"{signing_input.decode()}.{b64url_encode(signature)}"


def replace_payload(token: str, payload: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64url_encode(json.dumps(payload).encode())}.{signature}"


@pytest.fixture(scope="module")
def verifier() -> actas.Verifier:
    return offline_verifier(authorized_parties=[APP], cache_size=0)


PUBLIC_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
GOOD = sign(claims(act={"sub": "op_alice"}))
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def with_url_only_characters() -> str:
    """A valid token whose signature uses base64url's own '-' or '_' (most do)."""
    for jti in range(1000):
        token = sign(claims(jti=f"jti_{jti}"))
        if "-" in token.rsplit(".", 1)[1] or "_" in token.rsplit(".", 1)[1]:
            return token
    raise AssertionError("no signature with '-' or '_' in 1000 tokens")


URL_ONLY = with_url_only_characters()


def twin(token: str, edit: Callable[[str], str]) -> str:
    """``token`` with its signature segment re-spelt; the signature bytes stay the same."""
    head, _, signature = token.rpartition(".")
    return f"{head}.{edit(signature)}"


def set_unused_bits(segment: str) -> str:
    # A 256-byte RSA signature is 342 characters: the last one carries 4 unused bits.
    assert len(segment) % 4 == 2 and B64URL.index(segment[-1]) % 16 == 0
    return segment[:-1] + B64URL[B64URL.index(segment[-1]) + 1]


# Twins of a valid token, by name: (the original, the twin). Each twin's
# signature decodes to the very same bytes, so a lenient verifier accepts it,
# and a cache or deny-list keyed on the token's text misses it.
TWINS: dict[str, tuple[str, str]] = {
    "signature in standard base64 ('+' and '/')": (URL_ONLY, twin(
        URL_ONLY, lambda s: s.replace("-", "+").replace("_", "/"))),
    "signature with non-zero unused bits": (GOOD, twin(GOOD, set_unused_bits)),
    "signature in standard base64 with unused bits": (URL_ONLY, twin(
        URL_ONLY, lambda s: set_unused_bits(s).replace("-", "+").replace("_", "/"))),
}

CORPUS: dict[str, tuple[str, str]] = {
    "alg none, no signature": (
        f"{b64url_encode(json.dumps({'alg': 'none', 'kid': KID}).encode())}."
        f"{GOOD.split('.')[1]}.", "bad_signature"),
    "alg none, with the original signature": (
        f"{b64url_encode(json.dumps({'alg': 'none', 'kid': KID}).encode())}."
        f"{GOOD.split('.')[1]}.{GOOD.split('.')[2]}", "bad_signature"),
    "HS256 keyed with the public key": (
        raw({"alg": "HS256", "kid": KID, "typ": "JWT"}, claims(),
            lambda m: hmac.new(PUBLIC_PEM, m, hashlib.sha256).digest()), "bad_signature"),
    "RS256 header, signature from another key": (
        encode_compact({"kid": KID, "typ": "JWT"}, claims(),
                       rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        "bad_signature"),
    "kid is a path": (sign(header={"kid": "../../../../etc/passwd", "typ": "JWT"}),
                      "unknown_key"),
    "kid is SQL": (sign(header={"kid": "' OR 1=1; DROP TABLE signing_keys; --", "typ": "JWT"}),
                   "unknown_key"),
    "kid is a URL": (sign(header={"kid": "https://evil.example/jwks.json", "typ": "JWT"}),
                     "unknown_key"),
    "kid is very long": (sign(header={"kid": "k" * 5000, "typ": "JWT"}), "malformed"),
    "kid is not a string": (sign(header={"kid": {"$ne": None}, "typ": "JWT"}), "malformed"),
    "no kid": (sign(header={"typ": "JWT"}), "unknown_key"),
    "expired": (sign(claims(iat=NOW - 120, nbf=NOW - 125, exp=NOW - 60)), "expired"),
    "nbf in the future": (sign(claims(nbf=NOW + 600, exp=NOW + 900)), "not_yet_valid"),
    "iat in the future": (sign(claims(iat=NOW + 600, nbf=None, exp=NOW + 900)),
                          "not_yet_valid"),
    "no exp": (sign(claims(exp=None)), "malformed"),
    "exp is a string": (sign(claims(exp=str(NOW + 60))), "malformed"),
    "exp is a boolean": (sign(claims(exp=True)), "malformed"),
    "wrong issuer": (sign(claims(iss="https://evil.example")), "wrong_issuer"),
    "issuer differs by a slash": (sign(claims(iss=ISSUER + "/")), "wrong_issuer"),
    "no issuer": (sign(claims(iss=None)), "wrong_issuer"),
    "wrong azp": (sign(claims(azp="https://evil.example")), "unauthorized_party"),
    "act added after signing": (
        replace_payload(sign(), claims(act={"sub": "op_mallory"})), "bad_signature"),
    "act edited after signing": (
        replace_payload(GOOD, claims(act={"sub": "op_mallory"})), "bad_signature"),
    "act removed after signing": (replace_payload(GOOD, claims()), "bad_signature"),
    "sub edited after signing": (replace_payload(sign(), claims(sub="user_admin")),
                                 "bad_signature"),
    "signature stripped": (GOOD.rsplit(".", 1)[0] + ".", "bad_signature"),
    "signature segment removed": (GOOD.rsplit(".", 1)[0], "malformed"),
    "one segment": (GOOD.split(".")[0], "malformed"),
    "four segments": (GOOD + ".e30", "malformed"),
    "signature truncated": (GOOD[:-2], "bad_signature"),
    "signature cut to invalid base64": (GOOD[: len(GOOD) - (len(GOOD.split(".")[2]) % 4 + 3)],
                                        "malformed"),
    "padding added": (GOOD + "==", "malformed"),
    "stray characters in the signature": (GOOD[:-4] + "*!$%", "malformed"),
    "payload is not JSON": (raw({"alg": "RS256", "kid": KID, "typ": "JWT"}, b"not json"),
                            "malformed"),
    "payload is a JSON array": (raw({"alg": "RS256", "kid": KID, "typ": "JWT"}, b"[1,2]"),
                                "malformed"),
    "payload has NaN": (raw({"alg": "RS256", "kid": KID, "typ": "JWT"},
                            json.dumps(claims()).replace('"v": 2', '"v": NaN').encode()),
                        "malformed"),
    "duplicate sub, compact": (
        raw({"alg": "RS256", "kid": KID, "typ": "JWT"},
            json.dumps(claims(), separators=(",", ":"))[:-1].encode()
            + b',"sub":"user_admin"}'), "malformed"),
    "duplicate sub with the same value, compact": (
        raw({"alg": "RS256", "kid": KID, "typ": "JWT"},
            json.dumps(claims(), separators=(",", ":"))[:-1].encode()
            + b',"sub":"user_1"}'), "malformed"),
    "duplicate sub, spaced": (
        raw({"alg": "RS256", "kid": KID, "typ": "JWT"},
            json.dumps(claims())[:-1].encode() + b', "sub" : "user_admin"}'), "malformed"),
    "duplicate key inside act": (
        raw({"alg": "RS256", "kid": KID, "typ": "JWT"},
            json.dumps(claims(), separators=(",", ":"))[:-1].encode()
            + b',"act":{"sub":"op_a","sub":"op_b"}}'), "malformed"),
    "duplicate header alg": (
        raw(b'{"alg":"RS256","kid":"' + KID.encode() + b'","alg":"none"}', claims()),
        "malformed"),
    "act is not an object": (sign(claims(act="op_alice")), "malformed"),
    "act without sub": (sign(claims(act={"name": "Alice"})), "malformed"),
    "1 MB token": (sign(claims(padding="x" * 1_000_000)), "malformed"),
    "wrong typ": (sign(header={"kid": KID, "typ": "at+jwt"}), "malformed"),
    "crit header": (sign(header={"kid": KID, "typ": "JWT", "crit": ["exp"]}), "malformed"),
    "header is not JSON": ("bm90IGpzb24." + GOOD.split(".", 1)[1], "malformed"),
    "empty string": ("", "missing"),
    "non-ascii": (GOOD[:-3] + "é€", "malformed"),
    **{name: (token, "malformed") for name, (_original, token) in TWINS.items()},
}


@pytest.mark.parametrize(("token", "reason"), list(CORPUS.values()), ids=list(CORPUS))
def test_hostile_token_is_refused_for_the_right_reason(verifier: actas.Verifier, token: str,
                                                       reason: str) -> None:
    auth = verifier.authenticate(token)
    assert not auth.is_signed_in
    assert auth.signed_out_reason == reason, auth.error
    assert auth.actor is None


def test_the_untouched_token_is_accepted(verifier: actas.Verifier) -> None:
    auth = verifier.verify(GOOD)
    assert auth.user_id == "user_1" and auth.actor is not None and auth.actor.sub == "op_alice"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# The same claims spelt in ways the fastest proof of "no duplicate keys" (the text is
# what orjson would write) cannot vouch for: each is still accepted, by a slower proof.
SPELLINGS: dict[str, bytes] = {
    "compact, as actas writes it": json.dumps(claims(act={"sub": "op_alice"}),
                                              separators=(",", ":")).encode(),
    "spaced": json.dumps(claims(act={"sub": "op_alice"})).encode(),
    "non-ASCII escaped": json.dumps(claims(act={"sub": "op_alice", "name": "Zoë"}),
                                    separators=(",", ":")).encode(),
    "non-ASCII as UTF-8": json.dumps(claims(act={"sub": "op_alice", "name": "Zoë"}),
                                     separators=(",", ":"), ensure_ascii=False).encode(),
    "a '\":' inside a string": json.dumps(claims(act={"sub": "op_alice", "name": 'a":b'}),
                                          separators=(",", ":")).encode(),
    "nested deeper than orjson writes": json.dumps(
        claims(act={"sub": "op_alice"}, deep=_nested(300)), separators=(",", ":")).encode(),
}


@pytest.mark.parametrize("payload", list(SPELLINGS.values()), ids=list(SPELLINGS))
def test_every_spelling_of_a_payload_without_duplicates_is_accepted(
        verifier: actas.Verifier, payload: bytes) -> None:
    auth = verifier.verify(raw({"alg": "RS256", "kid": KID, "typ": "JWT"}, payload))
    assert auth.user_id == "user_1" and auth.actor is not None and auth.actor.sub == "op_alice"
    assert dict(auth.claims) == json.loads(payload)


def test_verify_raises_the_specific_error(verifier: actas.Verifier) -> None:
    with pytest.raises(actas.TokenExpired) as excinfo:
        verifier.verify(CORPUS["expired"][0])
    assert excinfo.value.code == "token_expired"
    assert isinstance(excinfo.value, actas.TokenInvalid)
    assert isinstance(excinfo.value, actas.ActasError)


def test_skew_is_honoured_both_ways() -> None:
    now = [float(NOW)]
    verifier = actas.Verifier(issuer=ISSUER, jwks={"keys": [public_jwk(
        KEY.public_key(), kid=KID, alg="RS256")]}, clock_skew=5, now=lambda: now[0])
    token = sign(claims(nbf=NOW + 3, iat=NOW + 3, exp=NOW + 60))
    assert verifier.authenticate(token).is_signed_in  # 3 s early: within skew
    now[0] = NOW + 64
    assert verifier.authenticate(token).is_signed_in  # 4 s late: within skew
    now[0] = NOW + 65
    assert verifier.authenticate(token).signed_out_reason == "expired"


def test_base64_in_the_jwk_itself_is_not_trusted_blindly() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  (the point)
    jwks = {"keys": [public_jwk(weak.public_key(), kid="weak", alg="RS256")]}
    verifier = actas.Verifier(issuer=ISSUER, jwks=jwks, now=at_now)
    token = encode_compact({"kid": "weak", "typ": "JWT"}, claims(), weak, "RS256")
    assert verifier.authenticate(token).signed_out_reason == "unknown_key"


def test_a_key_declared_for_another_algorithm_is_skipped() -> None:
    jwk = {**public_jwk(KEY.public_key(), kid=KID, alg="RS256"), "alg": "HS256"}
    verifier = actas.Verifier(issuer=ISSUER, jwks={"keys": [jwk]}, now=at_now)
    assert verifier.authenticate(GOOD).signed_out_reason == "unknown_key"


def test_private_key_material_in_a_jwks_is_refused() -> None:
    jwk = {**public_jwk(KEY.public_key(), kid=KID, alg="RS256"), "d": base64.b64encode(b"x")}
    verifier = actas.Verifier(issuer=ISSUER, jwks={"keys": [jwk]}, now=at_now)
    assert verifier.authenticate(GOOD).signed_out_reason == "unknown_key"


def test_each_twin_is_the_same_signature_spelt_differently(verifier: actas.Verifier) -> None:
    """What makes the twins an attack: a lenient decoder gets the original's bytes."""
    def lenient(token: str) -> bytes:
        segment = token.rsplit(".", 1)[1]
        return base64.b64decode(segment.replace("-", "+").replace("_", "/") + "==")

    for name, (original, token) in TWINS.items():
        assert token != original and lenient(token) == lenient(original), name
        assert verifier.verify(original).user_id == "user_1"


def test_an_es256_signature_has_one_accepted_form() -> None:
    """(r, n - s) verifies mathematically wherever (r, s) does: only the low S is accepted."""
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = actas.Verifier(issuer=ISSUER, jwks={"keys": [public_jwk(
        key.public_key(), kid="ec", alg="ES256")]}, cache_size=0, now=at_now)
    for jti in range(16):  # our signer always gives the low S, whatever ECDSA drew
        token = encode_compact({"kid": "ec", "typ": "JWT"}, claims(jti=f"jti_{jti}"), key,
                               "ES256")
        head, _, signature_b64 = token.rpartition(".")
        signature = b64url_decode(signature_b64)
        r, s = signature[:32], int.from_bytes(signature[32:], "big")
        assert s <= P256_ORDER // 2
        assert verifier.verify(token).user_id == "user_1"

        high_s = f"{head}.{b64url_encode(r + (P256_ORDER - s).to_bytes(32, 'big'))}"
        key.public_key().verify(encode_dss_signature(int.from_bytes(r, "big"), P256_ORDER - s),
                                head.encode(), ec.ECDSA(hashes.SHA256()))  # valid ECDSA
        auth = verifier.authenticate(high_s)
        assert not auth.is_signed_in and auth.signed_out_reason == "bad_signature"
