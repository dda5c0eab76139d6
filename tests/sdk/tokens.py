"""Signed test tokens at a fixed instant, and the clock that verifies them at it.

Every token in the SDK tests is signed for ``NOW``, a fixed moment, and every
verifier built here reads ``at_now`` instead of the wall clock: a token can
never expire because the suite ran slowly, was paused, or collected long
before this test ran.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

import actas
from actas._jws import encode_compact, public_jwk

ISSUER = "https://actas.test"
APP = "http://localhost:3000"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "ins_key_test"
NOW = 1_900_000_000  # 2030-03-17: a fixed instant, never the wall clock


def at_now() -> float:
    """The verifiers' clock: always ``NOW``."""
    return float(NOW)


def claims(**changes: Any) -> dict[str, Any]:
    """A valid payload at ``NOW``; a change to ``None`` drops the claim."""
    base = {"iss": ISSUER, "sub": "user_1", "sid": "sess_1", "azp": APP, "iat": NOW,
            "nbf": NOW - 5, "exp": NOW + 60, "jti": "jti_1", "v": 2}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any] | None = None, header: dict[str, Any] | None = None) -> str:
    return encode_compact(header or {"kid": KID, "typ": "JWT"}, payload or claims(), KEY, "RS256")


def offline_verifier(**options: Any) -> actas.Verifier:
    """A verifier of ``KEY``'s tokens from an inline JWKS, on the ``at_now`` clock."""
    options.setdefault("now", at_now)
    return actas.Verifier(issuer=ISSUER, jwks={"keys": [public_jwk(
        KEY.public_key(), kid=KID, alg="RS256")]}, **options)
