"""Tokens only actas itself reads: compact JWS with HS256 under a key derived from the
instance secret, one key per purpose.

On purpose not signed with the session-token keys: no SDK accepts HS256 and none has
these keys, so such a token can never pass for a user's session token in an
application, and a session token never passes for one of these (another key, and
``token_use`` names the purpose). Used for an operator's own token for an admin tool
(``operator_assertions``) and a user's ``may_act`` token (``frontend_api.client``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from actas import _jws
from actas.server.sealing import derive_key

if TYPE_CHECKING:
    from actas.server.instance import Instance

_HEADER = {"alg": "HS256", "typ": "JWT"}
# The purposes (``token_use``), each with a key of its own.
OPERATOR_ACTOR = "actas_operator"  # an operator's own token for an admin tool
MAY_ACT = "actas_may_act"  # a user's word that someone may act for them
MAX_CHARS = 4000


class NotOurs(Exception):
    """Not a token of this instance for this purpose (malformed, forged, another use)."""


def _key(instance: Instance, purpose: str) -> bytes:
    return derive_key(instance.settings.instance_secret, f"internal-token/{purpose}")


def sign(instance: Instance, purpose: str, claims: dict[str, Any]) -> str:
    body = {"iss": instance.settings.frontend_api_url, "token_use": purpose, **claims}
    signing_input = f"{_jws.json_segment(_HEADER)}.{_jws.json_segment(body)}"
    mac = hmac.new(_key(instance, purpose), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_jws.b64url_encode(mac)}"


def read(instance: Instance, purpose: str, token: str) -> dict[str, Any]:
    """The claims of ``token`` if this instance signed it for ``purpose`` (the MAC is
    checked before anything is parsed); ``exp`` and the rest are the caller's to check."""
    parts = token.split(".") if len(token) <= MAX_CHARS else []
    if len(parts) != 3:
        raise NotOurs
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(_key(instance, purpose), signing_input, hashlib.sha256).digest()
    try:
        given = _jws.b64url_decode(parts[2])
    except ValueError:
        raise NotOurs from None
    if not hmac.compare_digest(given, expected):
        raise NotOurs
    try:
        header = json.loads(_jws.b64url_decode(parts[0]))
        claims = json.loads(_jws.b64url_decode(parts[1]))
    except (ValueError, RecursionError):
        raise NotOurs from None
    if header != _HEADER or not isinstance(claims, dict) \
            or claims.get("token_use") != purpose \
            or claims.get("iss") != instance.settings.frontend_api_url:
        raise NotOurs
    return claims
