"""The user's say in impersonations of their account.

Every user has an impersonation preference:

- ``allowed``: operators the policy allows may impersonate them (the behaviour
  of every product today);
- ``ask``: only within a grant of theirs: an access request they answered yes,
  or access they offered unasked, for a window of time
  (``actas.server.impersonation.access_requests``);
- ``never``: nobody, except an owner who overrides it deliberately
  (``override``, the ``impersonate:override`` permission) with a reason.

A user without one has the instance's (``ACTAS_IMPERSONATION_PREFERENCE_DEFAULT``).
``require`` decides when a ticket is issued and says on what basis (``Consent``);
``recheck`` runs again at redemption and every token refresh, so that a grant
revoked or lapsed, or a preference tightened, ends a live impersonation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session as Db

from actas._errors import (
    FormParamInvalid,
    ImpersonationConsentRequired,
    ImpersonationForbiddenByUser,
    ImpersonationReasonRequired,
    ImpersonationRefused,
)
from actas.server import operators
from actas.server.db.schema import AccessRequest, ActorToken, User
from actas.server.roles import FULL, READ_ONLY
from actas.server.settings import Settings

Preference = Literal["allowed", "ask", "never"]
ALLOWED: Final = "allowed"
ASK: Final = "ask"
NEVER: Final = "never"
PREFERENCES: tuple[Preference, ...] = (ALLOWED, ASK, NEVER)

# Why a ticket got past the user's preference (ActorToken.consent).
NOT_NEEDED: Final = "not_needed"
GRANTED: Final = "granted"
OVERRIDE: Final = "override"


@dataclass(frozen=True)
class Consent:
    basis: str  # NOT_NEEDED | GRANTED | OVERRIDE
    grant: AccessRequest | None = None


def preference_of(user: User, settings: Settings) -> Preference:
    value = user.impersonation_preference or settings.impersonation_preference_default
    return value if value in PREFERENCES else ASK


def parse_preference(value: object) -> Preference:
    if value not in PREFERENCES:
        raise FormParamInvalid("impersonation_preference must be allowed, ask or never.",
                               code="form_param_value_invalid",
                               param_name="impersonation_preference")
    return value


def mode_allows(granted: str, wanted: str) -> bool:
    """A grant for ``full`` covers both modes; one for ``read_only`` only read-only."""
    return granted == FULL or wanted == READ_ONLY


def grant_status(row: AccessRequest, now_ms: int) -> str:
    """``pending``, ``granted``, ``denied``, ``withdrawn``, ``revoked`` as stored, or
    ``lapsed`` (never answered in time) and ``expired`` (its window is over)."""
    if row.status == "pending" and now_ms >= row.expires_at:
        return "lapsed"
    if row.status == "granted" and row.granted_until is not None and now_ms >= row.granted_until:
        return "expired"
    return row.status


def covering_grant(db: Db, *, user_id: str, actor_sub: str, mode: str,
                   now_ms: int) -> AccessRequest | None:
    """The grant that lets ``actor_sub`` impersonate ``user_id`` in ``mode`` now: one
    the user gave to this actor's request, or one offered to anyone; the longest-lasting
    first."""
    rows = db.scalars(
        select(AccessRequest)
        .where(AccessRequest.user_id == user_id, AccessRequest.status == "granted",
               AccessRequest.granted_until > now_ms,
               or_(AccessRequest.requested_by_sub == actor_sub,
                   AccessRequest.requested_by_sub.is_(None)))
        .order_by(AccessRequest.granted_until.desc()))
    return next((r for r in rows if mode_allows(r.mode, mode)), None)


def require(db: Db, settings: Settings, *, user: User, actor_sub: str, mode: str,
            permissions: frozenset[str], override: bool, reason: str | None,
            now_ms: int) -> Consent:
    """On what basis the user's preference lets this impersonation start; raise the
    ``ImpersonationRefused`` leaf that says why not."""
    preference = preference_of(user, settings)
    if preference == ALLOWED:
        return Consent(NOT_NEEDED)
    if preference == ASK:
        grant = covering_grant(db, user_id=user.id, actor_sub=actor_sub, mode=mode,
                               now_ms=now_ms)
        if grant is not None:
            return Consent(GRANTED, grant)
    if override and operators.IMPERSONATE_OVERRIDE in permissions:
        if not (reason or "").strip():
            raise ImpersonationReasonRequired(
                "Overriding the user's preference needs a reason; the user is told.")
        return Consent(OVERRIDE)
    if preference == NEVER:
        raise ImpersonationForbiddenByUser(user_id=user.id, preference=NEVER)
    raise ImpersonationConsentRequired(user_id=user.id, preference=ASK)


def recheck(db: Db, settings: Settings, *, user: User, token: ActorToken,
            permissions: frozenset[str], now_ms: int) -> None:
    """Whether the user's say still allows the impersonation ``token`` began: a grant
    revoked or over, or a preference made stricter since, refuses it."""
    if token.consent == OVERRIDE:
        if operators.IMPERSONATE_OVERRIDE not in permissions:
            raise ImpersonationForbiddenByUser(
                "The override behind this impersonation is no longer held by its operator.",
                user_id=user.id)
        return
    if token.consent == GRANTED:
        # Shared lock: a revocation (which locks the grant for update) waits for this
        # redemption or refresh to commit, then ends the session it made.
        grant = db.scalar(select(AccessRequest).where(
            AccessRequest.id == token.access_request_id).with_for_update(read=True)) \
            if token.access_request_id else None
        if grant is None or grant_status(grant, now_ms) != "granted":
            raise ImpersonationConsentRequired(
                "The access the user granted for this impersonation was revoked or is over.",
                user_id=user.id, access_request_id=token.access_request_id)
    preference = preference_of(user, settings)
    if preference == NEVER:
        raise ImpersonationForbiddenByUser(
            "The user no longer allows impersonation.", user_id=user.id)
    if preference == ASK and token.consent != GRANTED:
        raise ImpersonationConsentRequired(
            "The user now asks to be asked before anyone impersonates them.", user_id=user.id)


def refusal_of(db: Db, settings: Settings, *, user: User, token: ActorToken,
               permissions: frozenset[str], now_ms: int) -> ImpersonationRefused | None:
    """``recheck``'s refusal, returned rather than raised (for ending live ones)."""
    try:
        recheck(db, settings, user=user, token=token, permissions=permissions, now_ms=now_ms)
    except ImpersonationRefused as refusal:
        return refusal
    return None
