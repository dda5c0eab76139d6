"""Operators: dashboard accounts (support staff), with roles that carry permissions.

Their lifecycle (disable, enable, change role) is audited, and takes effect
at once: disabling an operator signs them out of the dashboard and ends
every impersonation they run; a role that may no longer impersonate ends
them too. Whatever is missed here (a ticket in flight) meets
``policy.recheck`` at its next step.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, IdentifierExists, ResourceNotFound
from actas.server import ids
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import Operator, OperatorSession
from actas.server.instance import Instance
from actas.server.roles import ROLES, Role
from actas.server.users import check_password, normalize_email

OPERATOR = "op"

IMPERSONATE = "impersonate"
IMPERSONATE_PROTECTED = "impersonate:protected"
# Impersonate a user whose preference is "never" (or "ask", without their grant),
# deliberately (``override``), with a reason; the user is told.
IMPERSONATE_OVERRIDE = "impersonate:override"

PERMISSIONS: dict[Role, frozenset[str]] = {
    "owner": frozenset({IMPERSONATE, IMPERSONATE_PROTECTED, IMPERSONATE_OVERRIDE}),
    "admin": frozenset({IMPERSONATE}),
    "support": frozenset({IMPERSONATE}),
    "viewer": frozenset(),
}


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise FormParamInvalid(f"role must be one of {', '.join(ROLES)}.",
                               code="form_param_value_invalid", param_name="role")


def create(db: Db, instance: Instance, *, email: str, role: str, password: str,
           name: str | None = None) -> Operator:
    _check_role(role)
    email = normalize_email(email)
    check_password(password)
    if db.scalar(select(Operator.id).where(Operator.email_address == email)) is not None:
        raise IdentifierExists("An operator with that email address exists.",
                               param_name="email_address")
    now = instance.now_ms()
    operator = Operator(id=ids.new_id(OPERATOR, now), email_address=email, name=name, role=role,
                        password_hash=instance.passwords.hash(password), disabled=False,
                        created_at=now, updated_at=now)
    db.add(operator)
    db.flush()
    return operator


def get(db: Db, operator_id: str, *, for_update: bool = False) -> Operator:
    operator = db.get(Operator, operator_id, with_for_update=for_update)
    if operator is None:
        raise ResourceNotFound(f"No operator has the id {operator_id!r}.",
                               param_name="operator_id")
    return operator


def permissions(operator: Operator) -> frozenset[str]:
    if operator.disabled:
        return frozenset()
    role = next((r for r in ROLES if r == operator.role), None)
    return PERMISSIONS[role] if role is not None else frozenset()


def display_names(db: Db) -> dict[str, str]:
    """Every operator's name as a page shows it (their email when they have no name)."""
    return {op.id: op.name or op.email_address for op in list_all(db)}


def find(db: Db, id_or_email: str) -> Operator:
    """An operator by id (``op_…``) or email address."""
    operator = (db.get(Operator, id_or_email) if id_or_email.startswith(f"{OPERATOR}_") else
                db.scalar(select(Operator).where(
                    Operator.email_address == normalize_email(id_or_email))))
    if operator is None:
        raise ResourceNotFound(f"No operator has the id or email {id_or_email!r}.",
                               param_name="operator")
    return get(db, operator.id, for_update=True)


def list_all(db: Db) -> Sequence[Operator]:
    return db.scalars(select(Operator).order_by(Operator.email_address)).all()


def set_disabled(db: Db, instance: Instance, operator: Operator, disabled: bool, *, by: str,
                 origin: RequestOrigin) -> Operator:
    """Disable (or enable) ``operator``; disabling ends their dashboard sessions and
    impersonations. Audited as ``operator.disabled`` / ``operator.enabled``."""
    if operator.disabled == disabled:
        return operator
    now = instance.now_ms()
    operator.disabled, operator.updated_at = disabled, now
    db.flush()
    ended = _cut_off(db, instance, operator, by=by, origin=origin) if disabled else (0, 0)
    instance.record(db, Record(
        type="operator.disabled" if disabled else "operator.enabled", actor_sub=by,
        origin=origin, data={"operator_id": operator.id, "email": operator.email_address,
                             "operator_sessions_ended": ended[0],
                             "impersonations_ended": ended[1]}))
    return operator


def set_role(db: Db, instance: Instance, operator: Operator, role: str, *, by: str,
             origin: RequestOrigin) -> Operator:
    """Change ``operator``'s role (audited as ``operator.role_changed``); a role without
    ``impersonate`` ends the impersonations they run."""
    _check_role(role)
    if operator.role == role:
        return operator
    before = operator.role
    operator.role, operator.updated_at = role, instance.now_ms()
    db.flush()
    ended = 0
    if IMPERSONATE not in permissions(operator):
        ended = _end_impersonations(db, instance, operator, by=by, origin=origin)
    instance.record(db, Record(
        type="operator.role_changed", actor_sub=by, origin=origin,
        data={"operator_id": operator.id, "email": operator.email_address, "from": before,
              "to": role, "impersonations_ended": ended}))
    return operator


def _cut_off(db: Db, instance: Instance, operator: Operator, *, by: str,
             origin: RequestOrigin) -> tuple[int, int]:
    signed_out = db.execute(
        update(OperatorSession)
        .where(OperatorSession.operator_id == operator.id, OperatorSession.ended_at.is_(None))
        .values(ended_at=instance.now_ms()))
    return (signed_out.rowcount,  # type: ignore[attr-defined]
            _end_impersonations(db, instance, operator, by=by, origin=origin))


def _end_impersonations(db: Db, instance: Instance, operator: Operator, *, by: str,
                        origin: RequestOrigin) -> int:
    from actas.server.impersonation import ending  # ending → policy → operators

    return ending.end_all(db, instance, actor_sub=operator.id, origin=origin, by=by,
                          event="operator.impersonations_ended").sessions_revoked
