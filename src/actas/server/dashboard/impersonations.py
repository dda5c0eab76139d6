"""Live impersonations: who, whom, why, time left; *End now*, and *End all* for owners;
and one impersonation in detail: who, whom, why, mode, limits, how it ended, what was
done in the application, and its audit events in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import or_, select
from starlette.responses import Response

from actas._errors import PermissionDenied, SessionNotActive
from actas.server import operators, sessions
from actas.server.dashboard import audit_log, operator_sessions, pages
from actas.server.db.schema import ActorToken, AuditEvent, User
from actas.server.db.schema import Session as SessionRow
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import activity, actor_tokens, ending

router = APIRouter()


@router.get("/dashboard/impersonations")
def live(request: Request) -> Response:
    instance = instance_of(request)
    now = instance.now_ms()
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        rows = sessions.list_sessions(db, sessions.SessionQuery(
            status="active", impersonated=True, limit=500), now)
        user_ids = {s.user_id for s in rows}
        people = {u.id: u for u in db.scalars(select(User).where(User.id.in_(user_ids)))}
        reasons = actor_tokens.reasons_of(db, rows)
        live_rows = [(s, people.get(s.user_id), reasons.get(s.id)) for s in rows]
        return pages.render(request, "impersonations.html", me=signed_in, rows=live_rows,
                            can_end_all=signed_in.operator.role == "owner",
                            may_end=operators.IMPERSONATE in signed_in.permissions,
                            notice=request.query_params.get("notice"))


@router.get("/dashboard/impersonations/{session_id}")
def detail(request: Request, session_id: str) -> Response:
    instance = instance_of(request)
    now = instance.now_ms()
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        row = db.get(SessionRow, session_id)
        if row is None or row.actor_sub is None:
            return pages.render(request, "not_found.html", me=signed_in, status_code=404)
        token = db.get(ActorToken, row.actor_token_id) if row.actor_token_id else None
        # Its ticket's events (created, accepted) and its session's, in chain order.
        mine = AuditEvent.session_id == row.id
        if row.actor_token_id:
            mine = or_(mine, AuditEvent.actor_token_id == row.actor_token_id)
        # Through the user's index: the audit log has none on sessions or tickets.
        events = db.scalars(select(AuditEvent).where(AuditEvent.user_id == row.user_id, mine)
                            .order_by(AuditEvent.seq).limit(500)).all()
        done = activity.of_sessions(db, [row.id]).get(row.id)
        names = audit_log.names_of(db, events)
        status = sessions.effective_status(row, now)
        return pages.render(
            request, "impersonation.html", me=signed_in, s=row, user=db.get(User, row.user_id),
            token=token, status=status, events=events, done=done, names=names,
            how_it_ended=how_it_ended(row, status, events, names),
            checked=second_factor_check(events),
            may_end=operators.IMPERSONATE in signed_in.permissions)


def second_factor_check(events: Sequence[AuditEvent]) -> dict[str, object] | None:
    """The impersonator's second-factor check before it started (which factor, when), as
    the ticket's audit event recorded it; ``None`` when there was none to make."""
    created = next((e for e in events if e.type == "actor_token.created"), None)
    check = (created.data or {}).get("second_factor") if created is not None else None
    return check if isinstance(check, dict) else None


_ENDED_BY = {"policy": "actas, because the policy no longer allowed it",
             "ban": "actas, because the user was banned",
             "password_change": "the user's password change",
             "user": "the user deleting their account",
             "backend_api": "the Backend API (a secret key)",
             "kill_switch": "the kill switch"}


def how_it_ended(row: SessionRow, status: str, events: Sequence[AuditEvent],
                 names: dict[str, str]) -> str | None:
    """One sentence a person reads: which limit it reached, or who ended it."""
    if status == "active":
        return None
    if status == "expired":
        return "It reached its hard limit."
    if status == "abandoned":
        return "It reached its idle limit: nothing used it for too long."
    if status == "ended":
        return "The impersonator stopped it (Stop impersonating)."
    by = next((e.data.get("ended_by") for e in reversed(events)
               if e.type == "session.revoked" and e.data), None)
    if isinstance(by, str):
        who = names.get(by) or _ENDED_BY.get(by, by)
        return f"Ended by {who}."
    return "Ended by someone other than the impersonator."


@router.post("/dashboard/impersonations/{session_id}/end")
def end_now(request: Request, session_id: str,
            csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        if operators.IMPERSONATE not in signed_in.permissions:
            raise PermissionDenied("Your role cannot end impersonations.")
        row = sessions.get(db, session_id, for_update=True)
        if row.actor is None:
            raise PermissionDenied("That session is not an impersonation.")
        try:
            sessions.end(db, instance, row, status="revoked", origin=request_origin(request),
                         by=signed_in.operator.id)
            notice = "ended"
        except SessionNotActive:
            notice = "already-ended"
    return pages.redirect(request, f"/dashboard/impersonations?notice={notice}")


@router.post("/dashboard/impersonations/end_all")
def end_all(request: Request, csrf_token: Annotated[str, Form(max_length=128)],
            confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    """The kill switch, in two steps: the first POST shows what it will end and asks;
    only the confirming POST (``confirm=yes``) ends anything."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        if signed_in.operator.role != "owner":
            raise PermissionDenied("Only owners can end every impersonation at once.")
        if confirm != "yes":
            live = sessions.list_sessions(db, sessions.SessionQuery(
                status="active", impersonated=True, limit=500), instance.now_ms())
            return pages.render(request, "end_all.html", me=signed_in, live=len(live))
        ending.end_all(db, instance, actor_sub=None, origin=request_origin(request),
                       by=signed_in.operator.id)
    return pages.redirect(request, "/dashboard/impersonations?notice=all-ended")
