"""Operator sign-in and sign-out (argon2id, rate-limited), and the stylesheet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import func, select
from starlette.responses import Response

from actas._errors import InvalidCredentials
from actas.server.audit import Record
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import AuditEvent, Operator
from actas.server.http.origins import instance_of, request_origin

router = APIRouter()

FAILED = "operator.sign_in_failed"
WINDOW_MS = 15 * 60 * 1000
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20


@router.get("/dashboard/dashboard.css")
def stylesheet() -> Response:
    return Response(pages.stylesheet(), media_type="text/css",
                    headers={"Cache-Control": "public, max-age=300"})


@router.get("/dashboard/sign_in")
def sign_in_form(request: Request) -> Response:
    return pages.render(request, "sign_in.html", error=None, email="")


@router.post("/dashboard/sign_in")
def sign_in(request: Request, email: Annotated[str, Form(max_length=320)],
            password: Annotated[str, Form(max_length=1024)]) -> Response:
    instance = instance_of(request)
    origin = request_origin(request)
    email = email.strip().lower()
    now = instance.now_ms()
    with instance.transaction() as db:
        recent = select(func.count()).select_from(AuditEvent).where(
            AuditEvent.type == FAILED, AuditEvent.occurred_at > now - WINDOW_MS)
        by_email = db.scalar(recent.where(AuditEvent.actor_sub == email)) or 0
        by_address = db.scalar(recent.where(AuditEvent.ip_address == origin.ip_address)) or 0
        if by_email >= MAX_FAILURES_PER_EMAIL or by_address >= MAX_FAILURES_PER_ADDRESS:
            return pages.render(request, "sign_in.html", status_code=429, email=email,
                                error="Too many failed sign-ins. Wait 15 minutes and try "
                                      "again, or ask an owner to check your account.")
        operator = db.scalar(select(Operator).where(Operator.email_address == email))
        try:
            instance.passwords.verify(operator.password_hash if operator else None, password)
            if operator is None or operator.disabled:
                raise InvalidCredentials()
        except InvalidCredentials:
            failed = True
        else:
            failed = False
            response = pages.redirect(request, "/dashboard/users")
            operator_sessions.start(db, instance, operator, response)
            instance.record(db, Record(type="operator.signed_in", actor_sub=operator.id,
                                       origin=origin, data={"email": email}))
            return response
    assert failed
    instance.record_alone(Record(type=FAILED, actor_sub=email, origin=origin))
    return pages.render(request, "sign_in.html", status_code=401, email=email,
                        error="That email address and password do not match an operator.")


@router.post("/dashboard/sign_out")
def sign_out(request: Request, csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    response = pages.redirect(request, "/dashboard/sign_in")
    with instance.transaction() as db:
        try:
            signed_in = operator_sessions.current(db, instance, request)
        except operator_sessions.NotSignedIn:
            return response
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        operator_sessions.end(db, instance, signed_in, response)
        instance.record(db, Record(type="operator.signed_out", actor_sub=signed_in.operator.id,
                                   origin=request_origin(request)))
    return response
