"""Verifying session tokens locally: no network call on the request path.

Decoding and validating are separate steps (signature first, then claims),
every failure raises its own ``TokenInvalid`` leaf, and the checks follow
RFC 7519 and RFC 8725 (JWT best current practices): the algorithm comes from
the key, never from the header; ``exp`` is required and ``nbf``/``iat`` are
honoured with a clock skew; ``iss`` must match exactly; ``azp`` must be an
authorised party when the verifier has a list; sizes are capped before
anything is decoded; duplicate JSON keys and non-finite numbers are refused.

Hand-written on ``cryptography`` on purpose: this is the hot path of every
application request, and a generic JWT library spends more time around the
RSA verify than the verify itself (see ``bench/verify.py``).
"""

from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature

from actas import _jws
from actas._auth import Auth
from actas._errors import (
    TokenExpired,
    TokenInvalid,
    TokenIssuerInvalid,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    TokenPartyUnauthorized,
    TokenSignatureInvalid,
)
from actas._jwks import KeySource

MAX_TOKEN_BYTES = 8 * 1024
MAX_HEADER_BYTES = 1024
_HEADER_CACHE_SIZE = 64
_B64_TRANSLATION = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"===", b"==", b"=")  # by len % 4; a remainder of 1 is never valid


def _b64decode(segment: str) -> bytes:
    # Strict: one stray character or '=' makes the token malformed, rather than
    # being skipped the way the lenient base64 decoders do. bytes.translate is
    # several times faster than str.translate on this hot path.
    try:
        raw = segment.encode("ascii").translate(_B64_TRANSLATION)
        return binascii.a2b_base64(raw + _PADDING[len(raw) % 4], strict_mode=True)
    except (binascii.Error, ValueError):
        raise TokenMalformed("A token segment is not valid base64url.") from None


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads() with keyword arguments builds a new decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)
_EXACT_DECODER = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_unique_object)
_QUOTE_THEN_SPACE = re.compile(rb'"\s')


def _count_keys(value: Any) -> int:
    count = 0
    if type(value) is dict:
        count = len(value)
        value = value.values()
    for item in value:
        if type(item) is dict or type(item) is list:
            count += _count_keys(item)
    return count


def _surely_no_duplicate_keys(data: bytes, value: Any) -> bool:
    """A fast proof that compact JSON has no duplicate keys, or ``False`` if unsure.

    In compact JSON every key is followed by ``":``, so when the parsed
    object holds as many keys as the text has ``":``, no key was lost to a
    duplicate. Whitespace before a colon, or ``":`` inside a string, makes
    the counts disagree, and the caller then parses again, exactly.
    """
    if _QUOTE_THEN_SPACE.search(data) is not None:
        return False
    return data.count(b'":') == _count_keys(value)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        value = _DECODER.decode(text)
        if not _surely_no_duplicate_keys(data, value):
            value = _EXACT_DECODER.decode(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenMalformed(f"The token {what} is not a JSON object without duplicate keys."
                             ) from None
    if not isinstance(value, dict):
        raise TokenMalformed(f"The token {what} is not a JSON object.")
    return value


def auth_not_before(claims: Mapping[str, Any]) -> int:
    """The earliest moment a token is valid: its ``nbf``, and never before its ``iat``."""
    nbf: int | None = claims.get("nbf")
    iat: int | None = claims.get("iat")
    if nbf is None:
        return iat if iat is not None else 0
    return nbf if iat is None or nbf >= iat else iat


class Verifier:
    """Verifies actas session tokens against one issuer's keys.

    Give exactly one key source: ``jwks_url`` (fetched once, refetched for an
    unknown ``kid`` at most every ``jwks_refetch_interval`` seconds), a
    ``jwks`` document, or a ``pem`` public key (fully offline).
    ``cache_size`` bounds an LRU of tokens whose signature and claims were
    already verified: a repeated token skips the signature check, but its
    ``exp``/``nbf`` are checked against the clock on every call. ``0`` turns
    the cache off.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        pem: str | bytes | None = None,
        authorized_parties: Iterable[str] | None = None,
        clock_skew: int = 5,
        jwks_refetch_interval: float = 60.0,
        cache_size: int = 4096,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        http_client: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.authorized_parties = (frozenset(authorized_parties)
                                   if authorized_parties is not None else None)
        self.clock_skew = clock_skew
        self.max_token_bytes = max_token_bytes
        self._now = now
        self.keys = KeySource(jwks_url=jwks_url, jwks=jwks, pem=pem,
                              refetch_interval=jwks_refetch_interval, http_client=http_client)
        # Every token from one key shares its header segment: parse it once.
        self._headers: dict[str, tuple[str | None, str]] = {}
        self._check = lru_cache(maxsize=cache_size)(self._verify) if cache_size else self._verify

    def verify(self, token: str) -> Auth:
        """Return the signed-in ``Auth`` for ``token``, or raise a ``TokenInvalid`` leaf."""
        auth = self._check(token)
        now = self._now()
        claims = auth.claims
        skew = self.clock_skew
        if now >= claims["exp"] + skew:
            raise TokenExpired()
        if now < auth_not_before(claims) - skew:
            raise TokenNotYetValid()
        return auth

    def authenticate(self, token: str | None) -> Auth:
        """Like ``verify`` but never raises for a bad token: a signed-out ``Auth`` says why."""
        if not token:
            return Auth.signed_out(TokenMissing())
        try:
            return self.verify(token)
        except TokenInvalid as error:
            return Auth.signed_out(error)

    def _verify(self, token: str) -> Auth:
        if not isinstance(token, str) or len(token) > self.max_token_bytes:
            raise TokenMalformed(f"Session tokens are at most {self.max_token_bytes} bytes.")
        parts = token.split(".")
        if len(parts) != 3 or "=" in token:  # JWS segments are unpadded base64url
            raise TokenMalformed("A session token has three dot-separated parts.")
        header_b64, payload_b64, signature_b64 = parts
        header = self._headers.get(header_b64)
        kid, header_alg = header if header is not None else self._read_header(header_b64)
        key = self.keys.get(kid)
        if header_alg != key.alg:
            raise TokenSignatureInvalid(
                f"The token says {header_alg!r} but its key verifies only {key.alg}.")
        signature = _b64decode(signature_b64)
        try:
            _jws.verify(key.key, key.alg, f"{header_b64}.{payload_b64}".encode("ascii"),
                        signature)
        except (InvalidSignature, UnicodeEncodeError):
            raise TokenSignatureInvalid() from None
        claims = _json_object(_b64decode(payload_b64), "payload")
        return self._validate_claims(claims, token)

    def _read_header(self, header_b64: str) -> tuple[str | None, str]:
        if len(header_b64) > MAX_HEADER_BYTES:
            raise TokenMalformed("The token header is too large.")
        header = _json_object(_b64decode(header_b64), "header")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _jws.ALGORITHMS:
            raise TokenSignatureInvalid(f"The algorithm {alg!r} is not allowed.")
        if header.get("typ", "JWT") != "JWT":
            raise TokenMalformed("The token's typ is not JWT: it is not a session token.")
        if "crit" in header:
            raise TokenMalformed("The token has critical header parameters actas does not know.")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise TokenMalformed("The token's kid is not a short string.")
        if len(self._headers) >= _HEADER_CACHE_SIZE:
            self._headers.clear()
        self._headers[header_b64] = (kid, alg)
        return kid, alg

    def _validate_claims(self, claims: dict[str, Any], token: str) -> Auth:
        if claims.get("iss") != self.issuer:
            raise TokenIssuerInvalid(
                f"The token was issued by {claims.get('iss')!r}, not {self.issuer!r}.")
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            raise TokenMalformed("The token has no subject.")
        # type() and not isinstance(): bool is an int, and floats are refused too.
        if type(claims.get("exp")) is not int:
            raise TokenMalformed("The token has no exp claim that is a whole number.")
        nbf, iat = claims.get("nbf"), claims.get("iat")
        if (nbf is not None and type(nbf) is not int) or (iat is not None and type(iat)
                                                          is not int):
            raise TokenMalformed("The token's nbf or iat claim is not a whole number.")
        azp = claims.get("azp")
        if azp is not None and self.authorized_parties is not None \
                and azp not in self.authorized_parties:
            raise TokenPartyUnauthorized(f"The token was issued to {azp!r}.")
        act = claims.get("act")
        if act is not None and not (isinstance(act, dict) and isinstance(act.get("sub"), str)):
            raise TokenMalformed("The token's act claim is not an actor with a sub.")
        return Auth.from_claims(claims, token)
