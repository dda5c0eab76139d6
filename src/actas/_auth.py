"""What a request's session token says: ``Auth``, and who acts, ``Actor``.

Both are named tuples rather than dataclasses on purpose: one is built for
every first-seen token on the request path, and a tuple is built in half
the time of a frozen dataclass, while staying just as immutable (a cached
``Auth`` is shared by every request that presents the same token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from actas._errors import TokenInvalid

_EMPTY: Mapping[str, Any] = {}


class Actor(NamedTuple):
    """Someone acting as the user (RFC 8693 §4.1 ``act``): the impersonator.

    ``claims`` is the whole ``act`` object. ``chain`` lists the earlier
    actors of a nested impersonation, nearest first; the top-level ``act``
    (this object) is the current actor.
    """

    sub: str
    iss: str | None
    sid: str | None
    claims: Mapping[str, Any]
    chain: tuple[Actor, ...] = ()

    @classmethod
    def from_claim(cls, act: Mapping[str, Any]) -> Actor:
        inner = act.get("act")
        if inner is None:  # the usual case, kept short: this runs per first-seen token
            iss, sid = act.get("iss"), act.get("sid")
            # tuple.__new__: a frame less than the named tuple's __new__ (see _verifier).
            return tuple.__new__(cls, (str(act.get("sub")), iss if type(iss) is str else None,
                                       sid if type(sid) is str else None, act, ()))
        chain: list[Actor] = []
        while isinstance(inner, Mapping) and len(chain) < 16:
            chain.append(cls._one(inner, ()))
            inner = inner.get("act")
        return cls._one(act, tuple(chain))

    @classmethod
    def _one(cls, act: Mapping[str, Any], chain: tuple[Actor, ...]) -> Actor:
        iss, sid = act.get("iss"), act.get("sid")
        return cls(str(act.get("sub")), iss if isinstance(iss, str) else None,
                   sid if isinstance(sid, str) else None, act, chain)


class Auth(NamedTuple):
    """The result of authenticating a request: signed in (with claims) or signed out (with why).

    ``signed_out_reason`` is one of ``missing``, ``malformed``, ``expired``,
    ``not_yet_valid``, ``bad_signature``, ``unknown_key``, ``wrong_issuer``,
    ``unauthorized_party``; ``error`` carries the full ``TokenInvalid``.
    """

    user_id: str | None = None
    session_id: str | None = None
    actor: Actor | None = None
    claims: Mapping[str, Any] = _EMPTY
    token: str | None = None
    error: TokenInvalid | None = None
    # The earliest moment (Unix seconds) the token is valid: its nbf, never before its iat.
    not_before: int = 0

    def __repr__(self) -> str:  # never the token: a repr ends up in logs
        if self.user_id is None:
            return f"Auth(signed_out_reason={self.signed_out_reason!r})"
        actor = (f", actor={self.actor.sub!r}, mode={self.impersonation_mode!r}"
                 if self.actor is not None else "")
        return f"Auth(user_id={self.user_id!r}, session_id={self.session_id!r}{actor})"

    @property
    def is_signed_in(self) -> bool:
        return self.user_id is not None

    @property
    def is_impersonated(self) -> bool:
        return self.actor is not None

    @property
    def impersonation_mode(self) -> str | None:
        """``read_only`` or ``full`` when someone is acting as the user (the token's
        ``act_mode``), else ``None``. A token with ``act`` but no ``act_mode`` (an
        older actas, or Clerk) is ``full``; any value other than ``full`` is read-only."""
        if self.actor is None:
            return None
        return "full" if self.claims.get("act_mode", "full") == "full" else "read_only"

    @property
    def is_read_only(self) -> bool:
        """Whether this is a read-only impersonation: the SDK's integrations refuse its
        unsafe requests (POST, PUT, PATCH, DELETE) unless a route allows them."""
        return self.actor is not None and self.claims.get("act_mode", "full") != "full"

    @property
    def signed_out_reason(self) -> str | None:
        return self.error.reason if self.error is not None else None

    @property
    def expires_at(self) -> int:
        exp = self.claims.get("exp", 0)
        return exp if isinstance(exp, int) else 0

    @classmethod
    def signed_out(cls, error: TokenInvalid) -> Auth:
        return cls(error=error)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Auth:
        act = claims.get("act")
        nbf, iat = claims.get("nbf"), claims.get("iat")
        not_before = max(nbf or 0, iat or 0)
        return cls(claims["sub"], claims.get("sid"),
                   Actor.from_claim(act) if act is not None else None, claims, token, None,
                   not_before)
