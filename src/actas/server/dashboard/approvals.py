"""The approvals queue (four eyes): impersonations waiting for a second operator, who
approves or refuses each with a reason; and the latest decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from actas._errors import ActasError
from actas.server import operators
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import User
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import approvals

router = APIRouter()


@router.get("/dashboard/approvals")
def queue(request: Request) -> Response:
    return _page(request)


def _page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    instance = instance_of(request)
    now = instance.now_ms()
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        waiting = approvals.queue(db, now)
        decided = [r for r in approvals.recent(db) if r.status != "pending"][:20]
        user_ids = {r.user_id for r in (*waiting, *decided)}
        users = {u.id: u for u in db.scalars(select(User).where(User.id.in_(user_ids)))}
        names = operators.display_names(db)
        return pages.render(request, "approvals.html", status_code=status_code, me=signed_in,
                            waiting=waiting, decided=decided, users=users, names=names,
                            status_of=approvals.status_of, error=error,
                            notice=request.query_params.get("notice"),
                            rules=instance.settings.approval_required_for)


@router.post("/dashboard/approvals/{approval_id}/{decision}")
def decide(request: Request, approval_id: str, decision: str,
           csrf_token: Annotated[str, Form(max_length=128)],
           reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    if decision not in ("approve", "refuse"):
        return pages.render(request, "not_found.html", me=None, status_code=404)
    instance = instance_of(request)
    try:
        with instance.transaction() as db:
            signed_in = operator_sessions.current(db, instance, request)
            operator_sessions.check_csrf(instance, signed_in, csrf_token)
            approvals.decide(db, instance, approval_id=approval_id,
                             approver=signed_in.operator, approve=decision == "approve",
                             reason=reason, origin=request_origin(request))
    except ActasError as error:
        return _page(request, error=error.message, status_code=error.http_status)
    return pages.redirect(request, f"/dashboard/approvals?notice={decision}d")
