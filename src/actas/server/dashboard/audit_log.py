"""The audit log, filterable, with the chain's verified or broken status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from actas.server import audit, audit_verification
from actas.server.dashboard import operator_sessions, pages
from actas.server.http.origins import instance_of

router = APIRouter()
PAGE_SIZE = 50


@router.get("/dashboard/audit")
def audit_page(request: Request,
               type: Annotated[str, Query(max_length=64)] = "",
               actor_sub: Annotated[str, Query(max_length=256)] = "",
               user_id: Annotated[str, Query(max_length=40)] = "",
               before: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
    instance = instance_of(request)
    with instance.transaction() as db:
        signed_in = operator_sessions.current(db, instance, request)
    with instance.snapshot() as db:
        rows = audit.list_events(db, audit.AuditQuery(
            types=[type] if type else (), actor_sub=actor_sub or None, user_id=user_id or None,
            before_seq=before, limit=PAGE_SIZE))
    # From the sealed checkpoint plus the newest events: never the whole chain here.
    chain = audit_verification.status(instance)
    return pages.render(request, "audit.html", me=signed_in, events=rows, chain=chain,
                        type=type, actor_sub=actor_sub, user_id=user_id,
                        next_before=rows[-1].seq if len(rows) == PAGE_SIZE else None)
