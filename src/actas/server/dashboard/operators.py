"""Operators, for owners: who may act as users, and the switches that take it away.

Owners list every operator, disable or enable one, and change roles; each
change is audited and takes effect at once (see ``actas.server.operators``).
An owner cannot change their own account here, so the last owner can never
lock everyone out by mistake.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session as Db
from starlette.responses import Response

from actas._errors import PermissionDenied
from actas.server import operators
from actas.server.dashboard import operator_sessions, pages
from actas.server.dashboard.operator_sessions import SignedInOperator
from actas.server.db.schema import Operator
from actas.server.http.origins import instance_of, request_origin
from actas.server.roles import ROLES

router = APIRouter()

NOTICES = {
    "disabled": "{name} was disabled: signed out, and every impersonation they ran was "
                "ended.",
    "enabled": "{name} was enabled again.",
    "role": "{name} is now {role}.",
}


def _notice(db: Db, kind: str, operator_id: str) -> str | None:
    """What just changed, naming whom (looked up now: the address carries only ids)."""
    template = NOTICES.get(kind)
    operator = db.get(Operator, operator_id) if operator_id else None
    if template is None or operator is None:
        return None
    return template.format(name=operator.name or operator.email_address, role=operator.role)


def _require_owner(signed_in: SignedInOperator) -> None:
    if signed_in.operator.role != "owner":
        raise PermissionDenied("Only owners can manage operators.")


@router.get("/dashboard/operators")
def list_operators(request: Request) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        _require_owner(signed_in)
        return pages.render(request, "operators.html", me=signed_in,
                            operators=operators.list_all(db), roles=ROLES,
                            notice=_notice(db, request.query_params.get("notice", ""),
                                           request.query_params.get("operator", "")))


def _change(request: Request, operator_id: str, csrf_token: str, *, disabled: bool | None = None,
            role: str | None = None) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        _require_owner(signed_in)
        if operator_id == signed_in.operator.id:
            raise PermissionDenied("You cannot change your own account; ask another owner.")
        operator = operators.get(db, operator_id, for_update=True)
        by, origin = signed_in.operator.id, request_origin(request)
        if role is not None:
            operators.set_role(db, instance, operator, role, by=by, origin=origin)
            notice = "role"
        else:
            assert disabled is not None
            operators.set_disabled(db, instance, operator, disabled, by=by, origin=origin)
            notice = "disabled" if disabled else "enabled"
    return pages.redirect(request, f"/dashboard/operators?notice={notice}&operator={operator_id}")


@router.post("/dashboard/operators/{operator_id}/disable")
def disable(request: Request, operator_id: str,
            csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    return _change(request, operator_id, csrf_token, disabled=True)


@router.post("/dashboard/operators/{operator_id}/enable")
def enable(request: Request, operator_id: str,
           csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    return _change(request, operator_id, csrf_token, disabled=False)


@router.post("/dashboard/operators/{operator_id}/role")
def set_role(request: Request, operator_id: str,
             csrf_token: Annotated[str, Form(max_length=128)],
             role: Annotated[str, Form(max_length=16)]) -> Response:
    return _change(request, operator_id, csrf_token, role=role)
