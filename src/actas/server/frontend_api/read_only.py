"""Read-only impersonation, as the Frontend API enforces it.

A read-only impersonator sees the account and changes nothing: not the
user's profile or metadata (``PATCH /v1/me``), and no new session from the
same browser (a sign-up or password sign-in there would take the place of
the impersonation it is meant to be watching). Stopping the impersonation
and refreshing its token stay open. Every refusal is audited as
``impersonation.read_only_refused`` and answers 403 ``impersonation_read_only``.
The application's own routes are guarded by the SDK (``actas.integrations``).
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session as Db

from actas._errors import ImpersonationReadOnly
from actas.server import sessions
from actas.server.audit import Record
from actas.server.db.schema import Session as SessionRow
from actas.server.frontend_api.responses import current_client
from actas.server.http.origins import request_origin
from actas.server.instance import Instance
from actas.server.roles import FULL

REFUSED = "impersonation.read_only_refused"


def require_writable(instance: Instance, request: Request, session: SessionRow | None,
                     action: str) -> None:
    """Refuse (audited) ``action`` when ``session`` is a live read-only impersonation."""
    if session is None or session.actor is None or session.impersonation_mode == FULL \
            or sessions.effective_status(session, instance.now_ms()) != "active":
        return
    instance.record_alone(Record(
        type=REFUSED, actor_sub=session.actor_sub, user_id=session.user_id,
        session_id=session.id, actor_token_id=session.actor_token_id,
        origin=request_origin(request),
        data={"action": action, "actor": session.actor, "via": "frontend_api"}))
    raise ImpersonationReadOnly(f"Can't {action}: this impersonation is read-only.",
                                action=action)


def active_session(db: Db, instance: Instance, request: Request) -> SessionRow | None:
    """The browser's active session, if it has one (ended or lapsed ones count as none)."""
    client = current_client(db, instance, request)
    if client is None or client.last_active_session_id is None:
        return None
    return db.get(SessionRow, client.last_active_session_id)
