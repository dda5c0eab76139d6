"""Admin tools, for owners: the machine clients (``actas.server.machine_clients``) with
which an application's own admin tool starts impersonations through the token endpoint
(RFC 8693), without the Backend API's secret key.

An owner creates one (a name, its rights, and either a secret, shown once on the next
page, or the tool's public key for ``private_key_jwt``) and revokes one; both audited,
as from ``actas machines``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session as Db
from starlette.responses import Response

from actas._errors import FormParamInvalid, PermissionDenied
from actas.server import machine_clients
from actas.server.dashboard import operator_sessions, pages
from actas.server.dashboard.operator_sessions import SignedInOperator
from actas.server.http.origins import instance_of, request_origin
from actas.server.instance import Instance

router = APIRouter()


def _require_owner(signed_in: SignedInOperator) -> None:
    if signed_in.operator.role != "owner":
        raise PermissionDenied("Only owners can manage admin tools.")


def _owner_acting(db: Db, instance: Instance, request: Request, csrf_token: str
                  ) -> tuple[SignedInOperator, str | None]:
    """The signed-in owner about to create or revoke a tool (CSRF checked), and where to
    go first if their second-factor check is stale: a tool can impersonate without a
    second factor, so who makes or unmakes one proves theirs."""
    signed_in = operator_sessions.current(db, instance, request)
    operator_sessions.check_csrf(instance, signed_in, csrf_token)
    _require_owner(signed_in)
    if operator_sessions.step_up_due(db, instance, signed_in):
        return signed_in, operator_sessions.step_up_page("/dashboard/admin_tools")
    return signed_in, None


def _page(request: Request, *, status_code: int = 200, **context: object) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        _require_owner(signed_in)
        tools = machine_clients.list_all(db)
    return pages.render(request, "admin_tools.html", status_code=status_code, me=signed_in,
                        tools=tools, token_endpoint=f"{instance.settings.frontend_api_url}"
                        "/oauth/token", **context)


@router.get("/dashboard/admin_tools")
def list_tools(request: Request) -> Response:
    return _page(request, notice=request.query_params.get("notice"))


@router.post("/dashboard/admin_tools")
def create_tool(request: Request, csrf_token: Annotated[str, Form(max_length=128)],
                name: Annotated[str, Form(max_length=200)],
                protected: Annotated[str, Form(max_length=8)] = "",
                full: Annotated[str, Form(max_length=8)] = "",
                public_key: Annotated[str, Form(max_length=10_000)] = "") -> Response:
    instance = instance_of(request)
    try:
        with instance.transaction() as db:
            signed_in, go_first = _owner_acting(db, instance, request, csrf_token)
            if go_first is not None:
                return pages.redirect(request, go_first)
            row, secret = machine_clients.create(
                db, instance, name=name, may_impersonate_protected=protected == "yes",
                may_start_full=full == "yes", public_key_pem=public_key.strip() or None,
                origin=request_origin(request), by=signed_in.operator.id)
            created = {"client_id": row.id, "name": row.name,
                       "secret": secret.reveal() if secret else None}
    except FormParamInvalid as invalid:
        return _page(request, status_code=422, error=invalid.message, name=name,
                     public_key=public_key)
    return _page(request, created=created)


@router.post("/dashboard/admin_tools/{client_id}/revoke")
def revoke_tool(request: Request, client_id: str,
                csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in, go_first = _owner_acting(db, instance, request, csrf_token)
        if go_first is not None:
            return pages.redirect(request, go_first)
        machine_clients.revoke(db, instance, client_id, origin=request_origin(request),
                               by=signed_in.operator.id)
    return pages.redirect(request, "/dashboard/admin_tools?notice=revoked")
