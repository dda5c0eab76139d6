"""An operator's own token for one admin tool: the ``actor_token`` of an RFC 8693 exchange
(``urn:ietf:params:oauth:token-type:jwt``) that proves which operator a tool acts for.

An operator signed in to the dashboard, with a fresh second-factor check, asks for one
for a named admin tool (``/dashboard/account``) and gives it to that tool. It is a JWT
bound to that tool (``aud``), to the operator (``sub``) and to the check (``sf``),
good for ``ACTAS_STEP_UP_MINUTES`` at most, since it stands in for a step-up.

An ``internal_tokens`` token: only actas reads it, and it can never pass for a user's
session token in an application, nor one for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session as Db

from actas.server import ids, internal_tokens
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import MachineClient, Operator, OperatorSession

if TYPE_CHECKING:
    from actas.server.instance import Instance



class Refused(Exception):
    """The token does not prove an operator for this tool (the message says why)."""


@dataclass(frozen=True)
class Issued:
    jwt: str
    expires_at: int  # Unix seconds


def issue(db: Db, instance: Instance, operator: Operator, tool: MachineClient, *,
          operator_session_id: str, second_factor_kind: str | None,
          second_factor_at: int | None, origin: RequestOrigin) -> Issued:
    """A token for ``tool`` acting for ``operator``, alive while the dashboard session it
    came from is (signing out, or an owner ending that session, ends it too)."""
    now_s = instance.now_ms() // 1000
    lifetime = instance.settings.step_up_minutes * 60
    expires_at = now_s + lifetime
    if second_factor_at is not None:  # never past the step-up window it carries
        expires_at = min(expires_at, second_factor_at // 1000 + lifetime)
    jti = ids.new_id("opat", instance.now_ms())
    claims: dict[str, Any] = {"sub": operator.id, "aud": tool.id, "osid": operator_session_id,
                              "iat": now_s, "exp": expires_at, "jti": jti}
    if second_factor_at is not None:
        claims["sf"] = {"kind": second_factor_kind, "at": second_factor_at}
    instance.record(db, Record(type="operator.actor_token_issued", actor_sub=operator.id,
                               origin=origin, data={"client_id": tool.id, "jti": jti,
                                                    "operator_session_id": operator_session_id,
                                                    "expires_at": expires_at * 1000}))
    token = internal_tokens.sign(instance, internal_tokens.OPERATOR_ACTOR, claims)
    return Issued(token, expires_at)


def verify(db: Db, instance: Instance, token: str, *, client_id: str
           ) -> tuple[Operator, dict[str, Any] | None]:
    """The enabled operator ``token`` proves, for the tool ``client_id``, and the second
    factor check it carries; or raise ``Refused``."""
    try:
        claims = internal_tokens.read(instance, internal_tokens.OPERATOR_ACTOR, token)
    except internal_tokens.NotOurs:
        raise Refused("actor_token is not an operator token of this instance.") from None
    if claims.get("aud") != client_id:
        raise Refused("actor_token was given to another admin tool.")
    now_s = instance.now_ms() // 1000
    exp = claims.get("exp")
    if not isinstance(exp, int) or now_s >= exp + instance.settings.clock_skew:
        raise Refused("actor_token has expired: ask the operator for a new one.")
    operator = db.get(Operator, str(claims.get("sub")))
    if operator is None or operator.disabled:
        raise Refused("actor_token names no enabled operator.")
    session = db.get(OperatorSession, str(claims.get("osid")))
    now_ms = instance.now_ms()
    if session is None or session.operator_id != operator.id or session.ended_at is not None \
            or now_ms >= session.expire_at:
        raise Refused("actor_token's dashboard session has ended: the operator signed out "
                      "or was signed out.")
    second_factor = claims.get("sf")
    return operator, second_factor if isinstance(second_factor, dict) else None
