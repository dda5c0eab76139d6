"""Public keys from JSON Web Keys (RFC 7517) and PEM, each bound to one algorithm.

The algorithm a key verifies with is decided here, from the key itself
(RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA), so that a token's header
can never choose it: ``alg: none``, HS256-with-the-public-key and every
other algorithm-confusion trick fail before any signature is computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from actas._jws import Algorithm, PublicKey, b64url_decode

_MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    kid: str | None
    alg: Algorithm
    key: PublicKey


def _uint(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("JWK number members are base64url strings")
    return int.from_bytes(b64url_decode(value), "big")


def from_jwk(jwk: Mapping[str, Any]) -> VerifyingKey:
    """Load one JWK; raise ``ValueError`` for anything not a usable public signing key."""
    kty = jwk.get("kty")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid must be a string")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signing key")
    if "d" in jwk:
        raise ValueError("a private key was published as a JWK")
    alg: Algorithm
    key: PublicKey
    if kty == "RSA":
        alg = "RS256"
        key = rsa.RSAPublicNumbers(_uint(jwk.get("e")), _uint(jwk.get("n"))).public_key()
        if key.key_size < _MIN_RSA_BITS:
            raise ValueError(f"RSA keys under {_MIN_RSA_BITS} bits are refused")
    elif kty == "EC" and jwk.get("crv") == "P-256":
        alg = "ES256"
        key = ec.EllipticCurvePublicNumbers(_uint(jwk.get("x")), _uint(jwk.get("y")),
                                            ec.SECP256R1()).public_key()
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        alg = "EdDSA"
        x = jwk.get("x")
        if not isinstance(x, str):
            raise ValueError("x must be a base64url string")
        key = ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(x))
    else:
        raise ValueError(f"unsupported key type {kty!r}")
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise ValueError(f"a {kty} key cannot be used with {declared!r}")
    return VerifyingKey(kid=kid, alg=alg, key=key)


def from_jwks(document: Mapping[str, Any]) -> dict[str, VerifyingKey]:
    """The usable keys of a JWKS document by ``kid``; unusable entries are skipped."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ValueError("a JWKS document has a 'keys' list")
    loaded: dict[str, VerifyingKey] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            continue
        try:
            key = from_jwk(jwk)
        except (ValueError, TypeError):
            continue  # one odd key must not take the others down
        if key.kid is not None:
            loaded[key.kid] = key
    return loaded


def from_pem(pem: str | bytes) -> VerifyingKey:
    key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise ValueError(f"RSA keys under {_MIN_RSA_BITS} bits are refused")
        return VerifyingKey(None, "RS256", key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return VerifyingKey(None, "ES256", key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return VerifyingKey(None, "EdDSA", key)
    raise ValueError(f"unsupported public key type {type(key).__name__}")
