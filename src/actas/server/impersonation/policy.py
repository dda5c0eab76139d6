"""Who may impersonate whom. Every check raises its own ``ImpersonationRefused`` leaf.

A request comes from a *requester*: an operator (dashboard), whose role's
permissions apply, or the Backend API (the secret key), which is trusted to
name any actor and holds every permission, but whose requests still meet
every check on the target side.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session as Db
from sqlalchemy.orm import lazyload

from actas._errors import (
    ImpersonationModeNotPermitted,
    ImpersonationNested,
    ImpersonationNotPermitted,
    ImpersonationOfSelf,
    ImpersonationReasonRequired,
    ImpersonationTargetBanned,
    ImpersonationTargetNotFound,
    ImpersonationTargetProtected,
)
from actas.server import operators
from actas.server.db.schema import ActorToken, EmailAddress, MachineClient, Operator, User
from actas.server.impersonation import consent
from actas.server.roles import FULL, Mode
from actas.server.settings import Settings

REASON_MAX_LENGTH = 1000
# Nested impersonation (when allowed) at most this deep: every link rides in
# every token, and the kill switch must be able to see the whole chain.
MAX_ACTOR_CHAIN = 4


@dataclass(frozen=True)
class Requester:
    kind: str  # "operator" | "backend_api"
    permissions: frozenset[str]
    operator: Operator | None = None

    @classmethod
    def backend_api(cls) -> Requester:
        return cls("backend_api", frozenset({operators.IMPERSONATE,
                                             operators.IMPERSONATE_PROTECTED,
                                             operators.IMPERSONATE_OVERRIDE}))

    @classmethod
    def of_operator(cls, operator: Operator) -> Requester:
        return cls("operator", operators.permissions(operator), operator)


# Whether one of a user's addresses is an operator's: one statement, built once, whether
# or not the user's addresses are loaded.
_AN_OPERATORS_ADDRESS = (
    select(Operator.id)
    .join(EmailAddress, EmailAddress.email_address == Operator.email_address)
    .where(EmailAddress.user_id == bindparam("user_id")).limit(1))
# The target user without its addresses: only an operator's self-check reads them.
_WITHOUT_ADDRESSES = (lazyload(User.email_addresses),)


def is_protected(db: Db, user: User, settings: Settings) -> bool:
    """Protected: flagged so, marked by a metadata rule, or the app account of an operator."""
    if user.protected:
        return True
    if db.scalar(_AN_OPERATORS_ADDRESS, {"user_id": user.id}) is not None:
        return True
    for rule in settings.protected_metadata_rules:
        path, _, expected = rule.partition("=")
        where, _, keys = path.partition(".")
        value: Any = getattr(user, where) or {}
        for key in keys.split("."):  # "public_metadata.org.role": a nested key
            value = value.get(key) if isinstance(value, dict) else None
        if matches_rule(value, expected):
            return True
    return False


def matches_rule(value: Any, expected: str) -> bool:
    """Whether a metadata value meets a protection rule's expected value.

    Forgiving on purpose, since a miss leaves a user unprotected: case,
    surrounding space and Unicode compatibility forms are ignored (``"Admin"``,
    ``" admin "``, fullwidth letters), a list matches when any member
    does (``["admin", "billing"]``), and JSON scalars compare by their text
    (``true`` matches ``true``, ``1`` matches ``1``). Keys are matched exactly.
    """
    wanted = _folded(expected)
    if isinstance(value, list | tuple):
        return any(matches_rule(item, expected) for item in value)
    if isinstance(value, bool):
        return ("true" if value else "false") == wanted
    if isinstance(value, str | int | float):
        return _folded(str(value)) == wanted
    return False


def _folded(text: str) -> str:
    # NFKC folds compatibility forms (fullwidth letters); format characters such
    # as a zero-width space are dropped, so they cannot hide a match either.
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if unicodedata.category(c) != "Cf").strip().casefold()


def chain_subs(actor: dict[str, Any] | None) -> list[str]:
    """Every actor of a (possibly nested) ``act`` chain, outermost (current) first."""
    return chain_values(actor, "sub")


def chain_values(actor: dict[str, Any] | None, key: str) -> list[str]:
    """``key``'s string value in each link of an ``act`` chain that has one, outermost
    first (``sub``: who acts; ``client_id``: the admin tool they act through)."""
    found: list[str] = []
    while isinstance(actor, dict):
        if isinstance(actor.get(key), str):
            found.append(actor[key])
        actor = actor.get("act")
    return found


def require_short_chain(actor: dict[str, Any]) -> None:
    if len(chain_subs(actor)) > MAX_ACTOR_CHAIN:
        raise ImpersonationNested(
            f"Nested impersonation is limited to {MAX_ACTOR_CHAIN} actors in a chain.")


def normalize_reason(reason: str | None) -> str | None:
    reason = (reason or "").strip()
    return reason[:REASON_MAX_LENGTH] or None


def check(db: Db, settings: Settings, *, requester: Requester, actor: dict[str, Any],
          user_id: str, reason: str | None, mode: Mode) -> User:
    """Return the target user if ``requester`` may have ``actor`` impersonate them in
    ``mode``; else raise."""
    if operators.IMPERSONATE not in requester.permissions:
        raise ImpersonationNotPermitted(role=requester.operator.role if requester.operator
                                        else None)
    require_mode_allowed(settings, requester, mode)
    if settings.require_reason and normalize_reason(reason) is None:
        raise ImpersonationReasonRequired()
    if "act" in actor and not settings.allow_nested_impersonation:
        raise ImpersonationNested("The actor is itself impersonating someone; nested "
                                  "impersonation is off (ACTAS_ALLOW_NESTED_IMPERSONATION).")
    require_short_chain(actor)
    return _check_target(db, settings, requester=requester, actor=actor, user_id=user_id)


def require_mode_allowed(settings: Settings, requester: Requester, mode: str) -> None:
    """A full impersonation needs a role of ``settings.full_impersonation_roles`` (the
    Backend API may start either mode)."""
    if mode == FULL and requester.operator is not None \
            and requester.operator.role not in settings.full_impersonation_roles:
        raise ImpersonationModeNotPermitted(
            f"The role {requester.operator.role} may start read-only impersonations only "
            "(ACTAS_FULL_IMPERSONATION_ROLES).", role=requester.operator.role, mode=mode)


def recheck(db: Db, settings: Settings, token: ActorToken, *, now_ms: int) -> User:
    """The policy again, for an impersonation already granted by ``token``.

    Run when the ticket is redeemed and at every token refresh of its session:
    what was allowed when the ticket was issued may not be any more (the
    operator was disabled or lost a permission, the admin tool that asked was
    revoked, the user was banned, deleted
    or made protected, or withdrew their consent: see ``consent.recheck``).
    Raises the ``ImpersonationRefused`` leaf that says why.
    """
    requester = Requester.backend_api()
    # The operator who asked from the dashboard, or one a Backend API actor names (op_…).
    operator_id = token.operator_id or (
        token.actor_sub if token.actor_sub.startswith(f"{operators.OPERATOR}_") else None)
    operator = db.get(Operator, operator_id) if operator_id is not None else None
    if (operator is None and token.operator_id is not None) or \
            (operator is not None and operator.disabled):
        raise ImpersonationNotPermitted(
            "The operator behind this impersonation was disabled or removed.",
            operator_id=operator_id)
    if operator is not None and token.operator_id is not None:
        # Asked for from the dashboard: the operator's role applies.
        requester = Requester.of_operator(operator)
        if operators.IMPERSONATE not in requester.permissions:
            raise ImpersonationNotPermitted(
                "The operator behind this impersonation may no longer impersonate "
                f"(role {operator.role}).", role=operator.role)
        require_mode_allowed(settings, requester, token.mode)
    tool_id = token.actor.get("client_id") if isinstance(token.actor, dict) else None
    if isinstance(tool_id, str) and tool_id.startswith("mc_"):  # started by an admin tool
        tool = db.get(MachineClient, tool_id)
        if tool is None or tool.revoked_at is not None:
            raise ImpersonationNotPermitted(
                "The admin tool behind this impersonation was revoked.", client_id=tool_id)
    user = _check_target(db, settings, requester=requester, actor=token.actor,
                         user_id=token.user_id)
    consent.recheck(db, settings, user=user, token=token, permissions=requester.permissions,
                    now_ms=now_ms)
    return user


def _check_target(db: Db, settings: Settings, *, requester: Requester, actor: dict[str, Any],
                  user_id: str) -> User:
    user = db.get(User, user_id, options=_WITHOUT_ADDRESSES)
    if user is None:
        raise ImpersonationTargetNotFound(user_id=user_id)
    if _is_self(actor, user, requester):
        raise ImpersonationOfSelf(user_id=user_id)
    if user.banned:
        raise ImpersonationTargetBanned(user_id=user_id)
    if is_protected(db, user, settings) and \
            operators.IMPERSONATE_PROTECTED not in requester.permissions:
        raise ImpersonationTargetProtected(user_id=user_id)
    return user


def _is_self(actor: dict[str, Any], user: User, requester: Requester) -> bool:
    if actor.get("sub") == user.id:
        return True
    # An operator who also has an application account is still themselves.
    operator = requester.operator
    return operator is not None and operator.email_address in {
        e.email_address for e in user.email_addresses}
