"""JSON Web Signature (RFC 7515), compact serialization, for the algorithms actas uses.

Written on top of ``cryptography`` rather than through a JWT library on
purpose: minting and verifying session tokens is the hot path of both the
server and the SDK, and a JWT library's generic claim machinery costs more
than the signature itself. What is here is deliberately small (three
algorithms, compact form only) and is checked against PyJWT in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

Algorithm = Literal["RS256", "ES256", "EdDSA"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256", "EdDSA")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# The order n of P-256's group (FIPS 186-4, D.1.2.3). An ECDSA signature (r, s)
# has a twin (r, n - s) that verifies as well; ES256 here uses s <= n/2 only.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def json_segment(value: dict[str, Any]) -> str:
    # orjson writes compact JSON (in UTF-8, not \u-escaped: RFC 8259 §8.1) several times
    # faster than json.dumps, and it is what actas._verifier's cheapest proof expects.
    # What it refuses to write but JSON holds (an integer beyond 64 bits in a caller's
    # actor object) json still writes. A string with an unpaired surrogate is no
    # Unicode text: no verifier (actas's included) would accept a token holding one,
    # so it is refused here, clearly, rather than signed.
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        try:
            data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("a claim holds a string that is not valid Unicode text (an "
                             "unpaired surrogate): no verifier would accept it") from None
    return b64url_encode(data)


def sign(private_key: PrivateKey, alg: Algorithm, signing_input: bytes) -> bytes:
    """Sign ``signing_input`` (``header.payload``) and return the raw JWS signature."""
    if alg == "RS256" and isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if (alg == "ES256" and isinstance(private_key, ec.EllipticCurvePrivateKey)
            and isinstance(private_key.curve, ec.SECP256R1)):  # RFC 7518 §3.4: P-256 only
        # JWS wants r || s, each 32 bytes, not the DER that cryptography returns.
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        # (r, n - s) verifies too; only the low S is canonical (and accepted by verify).
        s = min(s, P256_ORDER - s)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "EdDSA" and isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(signing_input)
    raise ValueError(f"a {_describe(private_key)} key cannot sign {alg}")


def _describe(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def encode_compact(header: dict[str, Any], payload: dict[str, Any], private_key: PrivateKey,
                   alg: Algorithm) -> str:
    """Serialize and sign a JWS in compact form; ``header["alg"]`` is set from ``alg``."""
    signing_input = f"{json_segment({**header, 'alg': alg})}.{json_segment(payload)}"
    signature = sign(private_key, alg, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


def public_jwk(public_key: PublicKey, *, kid: str, alg: Algorithm) -> dict[str, str]:
    """The RFC 7517 JSON Web Key of a public key, for JWKS documents."""
    base = {"kid": kid, "alg": alg, "use": "sig"}
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"kty": "RSA", **base, "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError(f"a {_describe(public_key)} key has no ES256 JWK")
        point = public_key.public_numbers()
        return {"kty": "EC", **base, "crv": "P-256",
                "x": _int_b64(point.x, 32), "y": _int_b64(point.y, 32)}
    raw = public_key.public_bytes_raw()
    return {"kty": "OKP", **base, "crv": "Ed25519", "x": b64url_encode(raw)}


# Built once: constructing them per call is measurable on the verify hot path.
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(_SHA256)
_P256_HALF_ORDER = P256_ORDER // 2
# The DER DigestInfo that RSASSA-PKCS1-v1_5 puts before a SHA-256 hash (RFC 8017 §9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_sha256 = hashlib.sha256


def verify_rs256(public_key: rsa.RSAPublicKey, signing_input: bytes, signature: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` is the RS256 signature of the input.

    Verified the way RFC 8017 §8.2.2 describes RSASSA-PKCS1-v1_5: the signature
    must be exactly as long as the modulus; the RSA public operation recovers
    the encoded message, OpenSSL checks and strips its ``00 01 FF.. 00`` padding,
    and what is left must equal, byte for byte, the DigestInfo of SHA-256 and
    the input's hash (no DER parsing, so no parsing leniency to exploit). It is
    the same check as ``RSAPublicKey.verify`` with PKCS1v15 and SHA-256, ~1 µs
    (5%) faster per token on the SDK's hot path (``bench/verify.py`` prints both).
    The length check is ours: the recovery accepts a signature with its leading
    zero byte dropped, a second spelling of the same signature.
    """
    if len(signature) != (public_key.key_size + 7) >> 3:
        raise InvalidSignature
    recovered = public_key.recover_data_from_signature(signature, _PKCS1, None)
    if recovered != _SHA256_DIGEST_INFO + _sha256(signing_input).digest():
        raise InvalidSignature


def verify(public_key: PublicKey, alg: Algorithm, signing_input: bytes, signature: bytes) -> None:
    """Raise ``cryptography.exceptions.InvalidSignature`` unless the signature verifies.

    ``alg`` is the key's own algorithm (chosen when the key was loaded), never
    the token header's: a key verifies with one algorithm only. An ES256
    signature must be canonical, ``r || s`` with ``s <= n/2``: its high-S twin
    ``(r, n - s)`` is mathematically valid but raises here like any bad
    signature (the verifier's reason ``bad_signature``), so that a signed token
    has exactly one accepted text. ``sign`` produces the low S.
    """
    if alg == "RS256" and isinstance(public_key, rsa.RSAPublicKey):
        verify_rs256(public_key, signing_input, signature)
    elif alg == "ES256" and isinstance(public_key, ec.EllipticCurvePublicKey):
        if len(signature) != 64:
            raise InvalidSignature
        s = int.from_bytes(signature[32:], "big")
        if s > _P256_HALF_ORDER:
            raise InvalidSignature
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), s)
        public_key.verify(der, signing_input, _ECDSA_SHA256)
    elif alg == "EdDSA" and isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, signing_input)
    else:
        raise InvalidSignature
