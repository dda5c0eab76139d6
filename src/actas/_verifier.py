"""Verifying session tokens locally: no network call on the request path.

Decoding and validating are separate steps (signature first, then claims),
every failure raises its own ``TokenInvalid`` leaf, and the checks follow
RFC 7519 and RFC 8725 (JWT best current practices): the algorithm comes from
the key, never from the header; ``exp`` is required and ``nbf``/``iat`` are
honoured with a clock skew; ``iss`` must match exactly; ``azp`` must be an
authorised party when the verifier has a list; sizes are capped before
anything is decoded; duplicate JSON keys and non-finite numbers are refused.

A token has exactly one accepted encoding, so that a cache or deny-list keyed
on its text cannot be sidestepped by a twin that decodes to the same bytes:
segments are base64url without padding, ``+``/``/`` or non-zero unused bits
(refused as ``malformed``), and an ES256 signature has its low S (the high-S
twin is refused as ``bad_signature``, see ``actas._jws.verify``).

Hand-written on ``cryptography`` on purpose: this is the hot path of every
application request, and a generic JWT library spends more time around the
RSA verify than the verify itself (see ``bench/verify.py``).
"""

from __future__ import annotations

import json
import json.scanner
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from pybase64 import b64decode as _a2b  # SIMD; validate=True is as strict as binascii's

from actas import _jws
from actas._auth import Actor, Auth
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
from actas._token_cache import TokenCache

MAX_TOKEN_BYTES = 8 * 1024
MAX_HEADER_BYTES = 1024
_HEADER_CACHE_SIZE = 64
_new_tuple = tuple.__new__
_verify_rs256 = _jws.verify_rs256
_loads, _dumps = orjson.loads, orjson.dumps
# base64url to base64, for the strict decoder; standard base64's own '+' and '/' become '!',
# which the strict decoder refuses: no extra pass over the token to find them.
_B64_TRANSLATION = bytes.maketrans(b"-_+/", b"+/!!")
_PADDING = (b"", b"===", b"==", b"=")  # by len % 4; a remainder of 1 is never valid
_B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The characters a segment may end with, by len % 4. A segment of 4k+2 (4k+3)
# characters carries 4 (2) bits more than its bytes need; the canonical encoding
# sets them to zero, and every other last character decodes to the same bytes.
_LAST: tuple[frozenset[int], ...] = (
    frozenset(range(256)), frozenset(), frozenset(_B64URL[::16]), frozenset(_B64URL[::4]))


def _b64decode(segment: bytes) -> bytes:
    # Strict: one stray character or '=' makes the token malformed, rather than
    # being skipped the way the lenient base64 decoders do, and so do '+' and
    # '/' and non-zero unused bits: a token has exactly one encoding, so that
    # a cache or deny-list keyed on its text cannot be sidestepped by a twin.
    # bytes.translate is several times faster than str.translate on this hot path.
    if segment and segment[-1] not in _LAST[len(segment) % 4]:
        raise TokenMalformed("A token segment is not canonical base64url.")
    try:
        raw = segment.translate(_B64_TRANSLATION)
        return _a2b(raw + _PADDING[len(raw) % 4], validate=True)
    except ValueError:  # binascii.Error
        raise TokenMalformed("A token segment is not valid base64url.") from None


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# The exact parse, for when the fast one cannot prove there were no duplicate keys.
# Built once (json.loads() with keyword arguments builds a new decoder per call);
# the C scanner is called directly: JSONDecoder.decode() wraps it in two regex
# whitespace skips that a JWT segment (compact JSON) never needs.
_make_scanner: Any = json.scanner.make_scanner  # typeshed mistypes it; it takes a decoder
_SCAN_EXACT: Any = _make_scanner(
    json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_unique_object))


def _surely_no_duplicate_keys(data: bytes, value: dict[str, Any]) -> bool:
    """A fast proof that a compact JSON object has no duplicate keys, or ``False`` if unsure.

    In compact JSON every key is followed by ``":``. Counting the keys of the
    object and of its ``act`` object (the only nested object a session token
    usually has): when the text holds exactly that many ``":``, no key was lost
    to a duplicate, and there is no other key anywhere. Any other shape, a
    ``":`` inside a string, or whitespace before a colon makes the counts
    disagree or the guard fail, and the caller parses again, exactly.
    """
    # Four substring searches in C beat one regex search here.
    if b'" ' in data or b'"\n' in data or b'"\t' in data or b'"\r' in data:
        return False
    keys = len(value)
    act = value.get("act")
    if type(act) is dict:
        keys += len(act)
    return data.count(b'":') == keys


def _as_orjson_writes(value: dict[str, Any], data: bytes) -> bool:
    """Whether ``data`` is byte for byte what orjson writes for ``value``: then it has no
    duplicate key (a dict has none to write), no whitespace and no escapes to hide one."""
    try:
        return orjson.dumps(value) == data
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: prove it otherwise
        return False


def _parse(scan: Any, text: str) -> Any:
    value, end = scan(text, 0)
    if end != len(text):
        raise ValueError("trailing data")
    return value


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` as a JSON object, refusing duplicate keys, NaN and infinities.

    orjson parses first: it is four times faster than ``json`` on a session
    token's payload, which every first-seen token pays, and it refuses what
    RFC 8259 does not allow (NaN, Infinity, numbers beyond a double, invalid
    UTF-8 and lone surrogates). It keeps the last of duplicate keys silently, so
    the text must prove it had none, cheapest proof first:

    1. it is exactly what orjson writes for the parsed object (a text with a
       duplicate key has a key more than anything written from a dict); actas
       writes its tokens compactly, so a token of its own passes here, at a
       tenth of the cost of the count below;
    2. the count of keys in ``_surely_no_duplicate_keys``;
    3. else ``json`` parses again with a hook that refuses them."""
    try:
        value = orjson.loads(data)
        if type(value) is not dict:
            raise TokenMalformed(f"The token {what} is not a JSON object.")
        if not _as_orjson_writes(value, data) and not _surely_no_duplicate_keys(data, value):
            value = _parse(_SCAN_EXACT, data.decode("utf-8"))
    except (ValueError, StopIteration, UnicodeDecodeError, RecursionError):
        raise TokenMalformed(f"The token {what} is not a JSON object without duplicate keys."
                             ) from None
    result: dict[str, Any] = value
    return result


class Verifier:
    """Verifies actas session tokens against one issuer's keys.

    Give exactly one key source: ``jwks_url`` (fetched once, refetched for an
    unknown ``kid`` at most every ``jwks_refetch_interval`` seconds), a
    ``jwks`` document, or a ``pem`` public key (fully offline).
    ``cache_size`` bounds an LRU of tokens whose signature and claims were
    already verified (admitted on their second sighting, see
    ``actas._token_cache``): a repeated token skips the signature check, but
    its ``exp``/``nbf`` are checked against the clock on every call. ``0``
    turns the cache off.
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
        self._headers: dict[bytes, tuple[str | None, str]] = {}
        self._check: Callable[[str], Auth] = (TokenCache(self._verify, cache_size)
                                              if cache_size else self._verify)

    def verify(self, token: str) -> Auth:
        """Return the signed-in ``Auth`` for ``token``, or raise a ``TokenInvalid`` leaf."""
        auth = self._check(token)
        now = self._now()
        if now >= auth.claims["exp"] + self.clock_skew:
            raise TokenExpired()
        if now < auth.not_before - self.clock_skew:
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
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise TokenMalformed("A session token is ASCII.") from None
        # Exactly two dots, and no '=': JWS segments are unpadded base64url.
        # (One split is cheaper than finding the dots and slicing three times.)
        parts = raw.split(b".")
        if len(parts) != 3 or b"=" in raw:
            raise TokenMalformed("A session token has three dot-separated parts.")
        header_b64, payload_b64, signature_b64 = parts
        header = self._headers.get(header_b64)
        kid, header_alg = header if header is not None else self._read_header(header_b64)
        key = self.keys.get(kid)
        if header_alg != key.alg:
            raise TokenSignatureInvalid(
                f"The token says {header_alg!r} but its key verifies only {key.alg}.")
        # _b64decode, inlined for the two segments of every first-seen token.
        # (The signature matters most: it is the one segment not signed itself.)
        if (signature_b64 and signature_b64[-1] not in _LAST[len(signature_b64) % 4]) or (
                payload_b64 and payload_b64[-1] not in _LAST[len(payload_b64) % 4]):
            raise TokenMalformed("A token segment is not canonical base64url.")
        try:
            segment = signature_b64.translate(_B64_TRANSLATION)
            signature = _a2b(segment + _PADDING[len(segment) % 4], validate=True)
            segment = payload_b64.translate(_B64_TRANSLATION)
            payload = _a2b(segment + _PADDING[len(segment) % 4], validate=True)
        except ValueError:  # binascii.Error
            raise TokenMalformed("A token segment is not valid base64url.") from None
        signed = raw[:len(header_b64) + 1 + len(payload_b64)]  # header '.' payload
        try:
            if key.alg == "RS256":  # the default, called directly: one frame less per token
                _verify_rs256(key.key, signed, signature)  # type: ignore[arg-type]
            else:
                _jws.verify(key.key, key.alg, signed, signature)
        except InvalidSignature:
            raise TokenSignatureInvalid() from None
        # Claims, inlined (this runs for every first-seen token), with the cheapest
        # proof of _json_object: a payload written by orjson, as actas writes them.
        try:
            claims = _loads(payload)
            proven = type(claims) is dict and _dumps(claims) == payload
        except (ValueError, TypeError):  # orjson's errors: _json_object says which
            proven = False
        if not proven:
            claims = _json_object(payload, "payload")  # parses again, with the other proofs
        get = claims.get
        if get("iss") != self.issuer:
            raise TokenIssuerInvalid(
                f"The token was issued by {get('iss')!r}, not {self.issuer!r}.")
        sub, exp, nbf, iat, azp, act = (get("sub"), get("exp"), get("nbf"), get("iat"),
                                        get("azp"), get("act"))
        if type(sub) is not str or not sub:
            raise TokenMalformed("The token has no subject.")
        # type() and not isinstance(): bool is an int, and floats are refused too.
        if type(exp) is not int:
            raise TokenMalformed("The token has no exp claim that is a whole number.")
        if (nbf is not None and type(nbf) is not int) or (iat is not None
                                                          and type(iat) is not int):
            raise TokenMalformed("The token's nbf or iat claim is not a whole number.")
        if azp is not None and self.authorized_parties is not None \
                and azp not in self.authorized_parties:
            raise TokenPartyUnauthorized(f"The token was issued to {azp!r}.")
        actor = None
        if act is not None:
            if type(act) is not dict or type(act.get("sub")) is not str:
                raise TokenMalformed("The token's act claim is not an actor with a sub.")
            actor = Actor.from_claim(act)
        # tuple.__new__ and not Auth(...): the named tuple's own __new__ is one Python
        # frame more per first-seen token, for keyword defaults this call never uses.
        return _new_tuple(Auth, (sub, get("sid"), actor, claims, token, None,
                                 max(nbf or 0, iat or 0)))

    def _read_header(self, header_b64: bytes) -> tuple[str | None, str]:
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
