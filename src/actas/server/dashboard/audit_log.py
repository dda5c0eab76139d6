"""The audit log, filterable, with the chain's verified or broken status; people are shown
by name, with their ids beside."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session as Db
from starlette.responses import Response

from actas.server import audit, audit_verification, operators
from actas.server import ids as ids_module
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import AuditEvent, Operator, User
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
        names = _names(db, rows)
    # From the sealed checkpoint plus the newest events: never the whole chain here.
    chain = audit_verification.status(instance)
    return pages.render(request, "audit.html", me=signed_in, events=rows, chain=chain,
                        names=names,
                        type=type, actor_sub=actor_sub, user_id=user_id,
                        next_before=rows[-1].seq if len(rows) == PAGE_SIZE else None)


def _names(db: Db, rows: Sequence[AuditEvent]) -> dict[str, str]:
    """A person's name for every operator and user id the page shows (the acting
    operator, the user, whoever ended something): two lookups for the whole page."""
    ids: set[str] = set()
    for row in rows:
        ids.update(v for v in (row.actor_sub, row.user_id, (row.data or {}).get("by"))
                   if isinstance(v, str))
    names: dict[str, str] = {}
    operator_ids = [i for i in ids if i.startswith(f"{operators.OPERATOR}_")]
    for op in db.scalars(select(Operator).where(Operator.id.in_(operator_ids))):
        names[op.id] = op.name or op.email_address
    user_ids = [i for i in ids if i.startswith(f"{ids_module.USER}_")]
    for user in db.scalars(select(User).where(User.id.in_(user_ids))):
        full = " ".join(n for n in (user.first_name, user.last_name) if n)
        email = user.email_addresses[0].email_address if user.email_addresses else None
        names[user.id] = full or email or user.username or user.id
    return names
