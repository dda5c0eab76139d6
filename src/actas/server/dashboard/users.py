"""Users: search and page through them, look at one, and impersonate them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from actas._errors import (
    ActasError,
    ImpersonationApprovalRequired,
    ImpersonationRefused,
    PermissionDenied,
    ResourceNotFound,
)
from actas.server import operator_factors, operators, sessions, users
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import Session as SessionRow
from actas.server.db.schema import User
from actas.server.frontend_api import read_only
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import (
    access_requests,
    activity,
    actor_tokens,
    approvals,
    consent,
    policy,
)
from actas.server.impersonation.policy import Requester
from actas.server.roles import READ_ONLY, Mode

router = APIRouter()
PAGE_SIZE = 25


@router.get("/dashboard")
def home(request: Request) -> Response:
    return pages.redirect(request, "/dashboard/users")


@router.get("/dashboard/users")
def list_users(request: Request,
               q: Annotated[str, Query(max_length=256)] = "",
               page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        offset = (page - 1) * PAGE_SIZE
        rows = list(users.search(db, q, limit=PAGE_SIZE + 1, offset=offset) if q.strip()
                    else users.list_users(db, users.UserQuery(limit=PAGE_SIZE + 1,
                                                              offset=offset)))
        return pages.render(request, "users.html", me=signed_in, users=rows[:PAGE_SIZE],
                            q=q, page=page, has_next=len(rows) > PAGE_SIZE,
                            is_protected=lambda u: policy.is_protected(db, u,
                                                                       instance.settings))


def _user_page(request: Request, user_id: str, *, error: str | None = None,
               reason: str = "", mode: str = READ_ONLY, status_code: int = 200,
               nested: SessionRow | None = None) -> Response:
    instance = instance_of(request)
    now = instance.now_ms()
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        try:
            user = users.get(db, user_id)
        except ResourceNotFound:
            return pages.render(request, "not_found.html", me=signed_in, status_code=404)
        rows = sessions.list_sessions(db, sessions.SessionQuery(user_id=user.id, limit=50), now)
        reasons = actor_tokens.reasons_of(db, rows)
        done = activity.of_sessions(db, [s.id for s in rows if s.actor is not None])
        protected = policy.is_protected(db, user, instance.settings)
        me_sub = signed_in.operator.id
        preference = consent.preference_of(user, instance.settings)
        asked = access_requests.of_user(db, user.id)
        return pages.render(
            request, "user.html", status_code=status_code, me=signed_in, user=user,
            cannot=_cannot_impersonate(signed_in.permissions, user, protected),
            preference=preference, access_requests=asked, grant_status=consent.grant_status,
            my_grant=consent.covering_grant(db, user_id=user.id, actor_sub=me_sub,
                                            mode=READ_ONLY, now_ms=now),
            my_pending=next((r for r in asked if r.requested_by_sub == me_sub
                             and consent.grant_status(r, now) == "pending"), None),
            may_override=operators.IMPERSONATE_OVERRIDE in signed_in.permissions,
            notice=request.query_params.get("notice"),
            approval_waiting=approvals.waiting(db, operator_id=me_sub, user_id=user.id,
                                               now_ms=now),
            approval_ready=approvals.usable(db, operator_id=me_sub, user_id=user.id,
                                            mode=READ_ONLY, session_max_duration=0, now_ms=now),
            operator_names=operators.display_names(db),
            sessions=[(s, sessions.effective_status(s, now), reasons.get(s.id)) for s in rows],
            protected=protected,
            require_reason=instance.settings.require_reason, error=error, reason=reason,
            mode=mode, activity=done, nested=nested,
            may_full=signed_in.operator.role in instance.settings.full_impersonation_roles,
            max_minutes=instance.settings.impersonation_max_duration // 60,
            step_up_minutes=instance.settings.step_up_minutes,
            step_up_due=operator_sessions.step_up_due(db, instance, signed_in))


def _cannot_impersonate(permissions: frozenset[str], user: User, protected: bool) -> str | None:
    """Why the signed-in operator's request could only be refused, said before they fill
    in the form (the policy still decides when they submit it)."""
    if operators.IMPERSONATE not in permissions:
        return "Your role cannot impersonate users."
    if user.banned:
        return "This user is banned and cannot be impersonated."
    if protected and operators.IMPERSONATE_PROTECTED not in permissions:
        return ("This user is protected: impersonating them needs the impersonate:protected "
                "permission (owners).")
    return None


@router.get("/dashboard/users/{user_id}")
def show_user(request: Request, user_id: str) -> Response:
    return _user_page(request, user_id)


@router.post("/dashboard/users/{user_id}/impersonate")
def impersonate(request: Request, user_id: str,
                csrf_token: Annotated[str, Form(max_length=128)],
                reason: Annotated[str, Form(max_length=1000)] = "",
                minutes: Annotated[int, Form(ge=1, le=24 * 60)] = 30,
                mode: Annotated[Mode, Form()] = READ_ONLY,
                override: Annotated[str, Form(max_length=8)] = "") -> Response:
    """Ask for an actor token as the signed-in operator; on success, open the application.
    ``override=yes`` passes a user's "never" (or "ask" without a grant), for owners."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        has_factor = operator_factors.has_any(db, signed_in.operator.id)
        due = operator_sessions.step_up_due(db, instance, signed_in)
        watching = read_only.active_session(db, instance, request)
        if watching is not None and (watching.actor_sub is None or sessions.effective_status(
                watching, instance.now_ms()) != "active"):
            watching = None
    if due:  # a second-factor check within ACTAS_STEP_UP_MINUTES first; then the form
        return pages.redirect(request,
                              operator_sessions.step_up_page(f"/dashboard/users/{user_id}"))
    if watching is not None and not instance.settings.allow_nested_impersonation:
        # Said here, before a ticket is issued that the browser would refuse to redeem.
        return _user_page(request, user_id, reason=reason, mode=mode, status_code=409,
                          nested=watching)
    operator = signed_in.operator
    actor = {"sub": operator.id, "email": operator.email_address,
             "name": operator.name or operator.email_address}
    try:
        issued = actor_tokens.create(
            instance, requester=Requester.of_operator(operator), user_id=user_id, actor=actor,
            reason=reason, origin=request_origin(request), expires_in=60,
            session_max_duration=min(minutes * 60, instance.settings.impersonation_max_duration),
            mode=mode, override=override == "yes",
            step_up={"kind": signed_in.second_factor_kind, "at": signed_in.second_factor_at}
            if has_factor else None)
    except ImpersonationApprovalRequired:
        return pages.redirect(request, f"/dashboard/users/{user_id}?notice=approval")
    except ImpersonationRefused as refusal:
        return _user_page(request, user_id, error=refusal.message, reason=reason, mode=mode,
                          status_code=403)
    except ActasError as error:  # e.g. a duration over the cap
        return _user_page(request, user_id, error=error.message, reason=reason, mode=mode,
                          status_code=error.http_status)
    return pages.redirect(request, issued.url)


@router.post("/dashboard/users/{user_id}/access_requests")
def request_access(request: Request, user_id: str,
                   csrf_token: Annotated[str, Form(max_length=128)],
                   reason: Annotated[str, Form(max_length=1000)] = "",
                   minutes: Annotated[int, Form(ge=1, le=24 * 60)] = 30,
                   mode: Annotated[Mode, Form()] = READ_ONLY) -> Response:
    """Ask a user who asks to be asked; they answer in the application (or by email)."""
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
    operator = signed_in.operator
    actor = {"sub": operator.id, "email": operator.email_address,
             "name": operator.name or operator.email_address}
    try:
        access_requests.request(
            instance, requester=Requester.of_operator(operator), user_id=user_id, actor=actor,
            reason=reason, mode=mode, session_max_duration=minutes * 60,
            origin=request_origin(request))
    except ActasError as error:
        return _user_page(request, user_id, error=error.message, reason=reason, mode=mode,
                          status_code=error.http_status)
    return pages.redirect(request, f"/dashboard/users/{user_id}?notice=asked")


@router.post("/dashboard/access_requests/{request_id}/withdraw")
def withdraw_access_request(request: Request, request_id: str,
                            csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        row = access_requests.get(db, request_id)
        if row.requested_by_sub != signed_in.operator.id and \
                signed_in.operator.role != "owner":
            raise PermissionDenied("Only who asked (or an owner) can withdraw a request.")
        access_requests.withdraw(db, instance, request_id=request_id,
                                 by=signed_in.operator.id, origin=request_origin(request))
        user_id = row.user_id
    return pages.redirect(request, f"/dashboard/users/{user_id}?notice=withdrawn")
