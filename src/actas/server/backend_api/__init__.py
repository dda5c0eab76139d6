"""The Backend API (``/v1/…``, ``Authorization: Bearer sk_…``), in Clerk's shapes."""

from fastapi import APIRouter, Depends

from actas.server.backend_api import (
    access_requests,
    actor_tokens,
    audit_events,
    impersonations,
    jwks,
    sessions,
    users,
    webhooks,
)
from actas.server.backend_api.auth import require_secret_key
from actas.server.http.errors import ERROR_RESPONSES

router = APIRouter(dependencies=[Depends(require_secret_key)], responses=ERROR_RESPONSES)
router.include_router(users.router)
router.include_router(sessions.router)
router.include_router(jwks.router)
router.include_router(actor_tokens.router)
router.include_router(access_requests.router)
router.include_router(impersonations.router)
router.include_router(audit_events.router)
router.include_router(webhooks.router)

__all__ = ["router"]
