"""The operator's account: where they are signed in to the dashboard, and ending a session
there (one's own; an owner, anyone's, from the operators page); their second factors;
and their own token for an admin tool (``operator_assertions``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from actas._errors import PermissionDenied, ResourceNotFound
from actas.server import (
    machine_clients,
    operator_assertions,
    operator_factors,
    operator_passkeys,
    operators,
)
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import MachineClient
from actas.server.http.origins import instance_of, request_origin

router = APIRouter()


@router.get("/dashboard/account")
def account(request: Request) -> Response:
    """The signed-in operator's own sessions."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        live = operator_sessions.live_of(db, signed_in.operator.id, instance.now_ms())
        return pages.render(request, "account.html", me=signed_in, whose=signed_in.operator,
                            sessions=live, notice=request.query_params.get("notice"),
                            factors=operator_factors.confirmed(db, signed_in.operator.id),
                            codes_left=operator_factors.recovery_codes_left(
                                db, signed_in.operator.id),
                            passkeys=operator_passkeys.of_operator(db, signed_in.operator.id),
                            tools=[t for t in machine_clients.list_all(db)
                                   if t.revoked_at is None]
                            if operators.IMPERSONATE in signed_in.permissions else [],
                            step_up_minutes=instance.settings.step_up_minutes,
                            step_up_due=operator_sessions.step_up_due(db, instance, signed_in))


@router.get("/dashboard/operators/{operator_id}/sessions")
def sessions_of(request: Request, operator_id: str) -> Response:
    """An operator's sessions, for an owner."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        if signed_in.operator.role != "owner":
            raise PermissionDenied("Only owners can see other operators' sessions.")
        whose = operators.get(db, operator_id)
        live = operator_sessions.live_of(db, whose.id, instance.now_ms())
        return pages.render(request, "account.html", me=signed_in, whose=whose,
                            sessions=live, notice=request.query_params.get("notice"))


@router.post("/dashboard/operator_sessions/{session_id}/end")
def end_session(request: Request, session_id: str,
                csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        row = operator_sessions.end_one(db, instance, session_id, by=signed_in,
                                        origin=request_origin(request))
        back = ("/dashboard/account" if row.operator_id == signed_in.operator.id
                else f"/dashboard/operators/{row.operator_id}/sessions")
    return pages.redirect(request, f"{back}?notice=ended")


@router.post("/dashboard/account/actor_tokens")
def actor_token_for_tool(request: Request, csrf_token: Annotated[str, Form(max_length=128)],
                         client_id: Annotated[str, Form(max_length=40)]) -> Response:
    """The operator's own token for one admin tool (``operator_assertions``): what the tool
    sends as ``actor_token`` to act for them. Needs a fresh second-factor check, like
    starting an impersonation here."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        if operators.IMPERSONATE not in signed_in.permissions:
            raise PermissionDenied("Your role cannot impersonate users.")
        has_factor = operator_factors.has_any(db, signed_in.operator.id)
        if operator_sessions.step_up_due(db, instance, signed_in):
            return pages.redirect(request, operator_sessions.step_up_page("/dashboard/account"))
        tool = db.get(MachineClient, client_id)
        if tool is None or tool.revoked_at is not None:
            raise ResourceNotFound("No such admin tool.", client_id=client_id)
        issued = operator_assertions.issue(
            db, instance, signed_in.operator, tool, operator_session_id=signed_in.session_id,
            second_factor_kind=signed_in.second_factor_kind if has_factor else None,
            second_factor_at=signed_in.second_factor_at if has_factor else None,
            origin=request_origin(request))
        return pages.render(request, "operator_token.html", me=signed_in, tool=tool,
                            issued=issued)
