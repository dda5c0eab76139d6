"""Minting session JWTs, the short-lived tokens applications verify.

Claims: ``iss`` (the Frontend API URL), ``sub`` (user), ``sid`` (session),
``azp`` (the requesting origin, when there is one), ``iat``, ``nbf`` (iat
minus the clock skew), ``exp`` (iat plus the token lifetime, but never past
the session's ``expire_at``), ``jti``,
``v: 2``; and ``act`` when someone is acting as the user (RFC 8693 §4.1), with
``act_mode`` (``read_only`` or ``full``) beside it.
The header carries ``kid`` and ``typ: JWT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actas._jws import encode_compact
from actas.server import ids
from actas.server.db.schema import Session as SessionRow
from actas.server.instance import Instance
from actas.server.roles import READ_ONLY
from actas.server.signing_keys import Signer

TOKEN_VERSION = 2
# The impersonation's mode, read_only or full, beside act (docs/impersonation.md).
MODE_CLAIM = "act_mode"


@dataclass(frozen=True)
class SessionToken:
    jwt: str
    claims: dict[str, Any]


def mint(instance: Instance, session: SessionRow, signer: Signer, *, azp: str | None
         ) -> SessionToken:
    """Sign a token for ``session`` with ``signer`` (``KeyRing.current_signer``): no
    database work, so it runs outside any transaction."""
    now_ms = instance.now_ms()
    settings = instance.settings
    iat = now_ms // 1000
    claims: dict[str, Any] = {
        "iss": settings.frontend_api_url,
        "sub": session.user_id,
        "sid": session.id,
    }
    if azp is not None:
        claims["azp"] = azp
    claims.update({
        "iat": iat,
        "nbf": iat - settings.clock_skew,
        # Never past the session's hard end: an impersonation's last token must
        # not outlive it by a token lifetime.
        "exp": min(iat + settings.session_token_lifetime, session.expire_at // 1000),
        "jti": ids.new_id(ids.TOKEN, now_ms),
        "v": TOKEN_VERSION,
    })
    if session.actor is not None:
        claims["act"] = dict(session.actor)
        # Not inside act: RFC 8693 §4.1 keeps act for the actor's identity, and
        # consumers that only know Clerk's claims ignore a top-level one they don't know.
        # A row without a mode (never written by this version) fails closed.
        claims[MODE_CLAIM] = session.impersonation_mode or READ_ONLY
    jwt = encode_compact({"kid": signer.kid, "typ": "JWT"}, claims, signer.private_key,
                         signer.algorithm)
    return SessionToken(jwt=jwt, claims=claims)
