"""Operators: dashboard accounts (support staff), with roles that carry permissions."""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, IdentifierExists, ResourceNotFound
from actas.server import ids
from actas.server.db.schema import Operator
from actas.server.instance import Instance
from actas.server.users import check_password, normalize_email

Role = Literal["owner", "admin", "support", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
OPERATOR = "op"

IMPERSONATE = "impersonate"
IMPERSONATE_PROTECTED = "impersonate:protected"

PERMISSIONS: dict[Role, frozenset[str]] = {
    "owner": frozenset({IMPERSONATE, IMPERSONATE_PROTECTED}),
    "admin": frozenset({IMPERSONATE}),
    "support": frozenset({IMPERSONATE}),
    "viewer": frozenset(),
}


def create(db: Db, instance: Instance, *, email: str, role: str, password: str,
           name: str | None = None) -> Operator:
    if role not in ROLES:
        raise FormParamInvalid(f"role must be one of {', '.join(ROLES)}.",
                               code="form_param_value_invalid", param_name="role")
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


def get(db: Db, operator_id: str) -> Operator:
    operator = db.get(Operator, operator_id)
    if operator is None:
        raise ResourceNotFound(f"No operator has the id {operator_id!r}.",
                               param_name="operator_id")
    return operator


def permissions(operator: Operator) -> frozenset[str]:
    if operator.disabled:
        return frozenset()
    role = next((r for r in ROLES if r == operator.role), None)
    return PERMISSIONS[role] if role is not None else frozenset()
