"""Backend API: the audit log, and verifying its chain."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from actas.server import audit
from actas.server.http.origins import instance_of
from actas.server.resources import AuditEventObject, audit_event_object

router = APIRouter(tags=["Audit log"])


class AuditEventPage(BaseModel):
    data: list[AuditEventObject]
    next_cursor: str | None


class ChainVerification(BaseModel):
    object: Literal["audit_chain_verification"] = "audit_chain_verification"
    ok: bool
    events: int
    head_hash: str
    broken_seq: int | None
    broken_id: str | None
    problem: str | None


@router.get("/v1/audit_events", response_model=AuditEventPage,
            summary="List audit events, newest first (cursor-paginated)")
def list_audit_events(
    request: Request,
    actor_sub: Annotated[str | None, Query(max_length=256)] = None,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
    type: Annotated[list[str] | None, Query(max_length=64)] = None,
    occurred_after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    occurred_before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$",
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditEventPage:
    instance = instance_of(request)
    q = audit.AuditQuery(actor_sub=actor_sub, user_id=user_id, types=type or (),
                         occurred_after=occurred_after, occurred_before=occurred_before,
                         before_seq=int(cursor) if cursor else None, limit=limit)
    with instance.snapshot() as db:
        rows = audit.list_events(db, q)
    more = len(rows) == limit
    return AuditEventPage(data=[audit_event_object(r) for r in rows],
                          next_cursor=str(rows[-1].seq) if more and rows else None)


@router.get("/v1/audit_events/verify", response_model=ChainVerification,
            summary="Verify the audit chain; name the first broken event")
def verify(request: Request) -> ChainVerification:
    instance = instance_of(request)
    with instance.snapshot() as db:  # reads everything, locks nothing
        result = instance.audit.verify(db)
    return ChainVerification(ok=result.ok, events=result.events, head_hash=result.head_hash,
                             broken_seq=result.broken_seq, broken_id=result.broken_id,
                             problem=result.problem)
