"""An operator's own token for one admin tool: the ``actor_token`` of an RFC 8693 exchange
(``urn:ietf:params:oauth:token-type:jwt``) that proves which operator a tool acts for.

An operator signed in to the dashboard, with a fresh second-factor check, asks for one
for a named admin tool (``/dashboard/account``) and gives it to that tool. It is a JWT
bound to that tool (``aud``), to the operator (``sub``) and to the check (``sf_at``),
good for ``ACTAS_STEP_UP_MINUTES`` at most, since it stands in for a step-up.

It is an HS256 JWT under a key derived from the instance secret, on purpose: only actas
verifies it, and no SDK accepts HS256, so it can never pass for a user's session token
in an application (and a session token never passes for it: different key, and
``token_use``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session as Db

from actas import _jws
from actas.server import ids
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import MachineClient, Operator
from actas.server.sealing import derive_key

if TYPE_CHECKING:
    from actas.server.instance import Instance

TOKEN_USE = "actas_operator"  # noqa: S105  (a claim value, not a secret)
_HEADER = {"alg": "HS256", "typ": "JWT"}


class Refused(Exception):
    """The token does not prove an operator for this tool (the message says why)."""


@dataclass(frozen=True)
class Issued:
    jwt: str
    expires_at: int  # Unix seconds


def _key(instance: Instance) -> bytes:
    return derive_key(instance.settings.instance_secret, "operator-actor-token")


def issue(db: Db, instance: Instance, operator: Operator, tool: MachineClient, *,
          second_factor_kind: str | None, second_factor_at: int | None,
          origin: RequestOrigin) -> Issued:
    now_s = instance.now_ms() // 1000
    lifetime = instance.settings.step_up_minutes * 60
    expires_at = now_s + lifetime
    if second_factor_at is not None:  # never past the step-up window it carries
        expires_at = min(expires_at, second_factor_at // 1000 + lifetime)
    claims: dict[str, Any] = {
        "iss": instance.settings.frontend_api_url, "sub": operator.id, "aud": tool.id,
        "token_use": TOKEN_USE, "iat": now_s, "exp": expires_at,
        "jti": ids.new_id("opat", instance.now_ms())}
    if second_factor_at is not None:
        claims["sf"] = {"kind": second_factor_kind, "at": second_factor_at}
    signing_input = f"{_jws.json_segment(_HEADER)}.{_jws.json_segment(claims)}"
    signature = hmac.new(_key(instance), signing_input.encode(), hashlib.sha256).digest()
    instance.record(db, Record(type="operator.actor_token_issued", actor_sub=operator.id,
                               origin=origin, data={"client_id": tool.id,
                                                    "expires_at": expires_at * 1000}))
    return Issued(f"{signing_input}.{_jws.b64url_encode(signature)}", expires_at)


def verify(db: Db, instance: Instance, token: str, *, client_id: str
           ) -> tuple[Operator, dict[str, Any] | None]:
    """The enabled operator ``token`` proves, for the tool ``client_id``, and the second
    factor check it carries; or raise ``Refused``."""
    parts = token.split(".")
    if len(token) > 2000 or len(parts) != 3:
        raise Refused("actor_token is not an operator token of this instance.")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(_key(instance), signing_input, hashlib.sha256).digest()
    try:
        header = json.loads(_jws.b64url_decode(parts[0]))
        given = _jws.b64url_decode(parts[2])
        claims = json.loads(_jws.b64url_decode(parts[1]))
    except ValueError:
        raise Refused("actor_token is not an operator token of this instance.") from None
    if header != _HEADER or not hmac.compare_digest(given, expected) \
            or not isinstance(claims, dict) or claims.get("token_use") != TOKEN_USE \
            or claims.get("iss") != instance.settings.frontend_api_url:
        raise Refused("actor_token is not an operator token of this instance.")
    if claims.get("aud") != client_id:
        raise Refused("actor_token was given to another admin tool.")
    now_s = instance.now_ms() // 1000
    exp = claims.get("exp")
    if not isinstance(exp, int) or now_s >= exp + instance.settings.clock_skew:
        raise Refused("actor_token has expired: ask the operator for a new one.")
    operator = db.get(Operator, str(claims.get("sub")))
    if operator is None or operator.disabled:
        raise Refused("actor_token names no enabled operator.")
    second_factor = claims.get("sf")
    return operator, second_factor if isinstance(second_factor, dict) else None
