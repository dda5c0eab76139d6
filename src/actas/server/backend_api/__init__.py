"""The Backend API (``/v1/…``, ``Authorization: Bearer sk_…``), in Clerk's shapes."""

from fastapi import APIRouter, Depends

from actas.server.backend_api import jwks, sessions, users
from actas.server.backend_api.auth import require_secret_key
from actas.server.http.errors import ERROR_RESPONSES

router = APIRouter(dependencies=[Depends(require_secret_key)], responses=ERROR_RESPONSES)
router.include_router(users.router)
router.include_router(sessions.router)
router.include_router(jwks.router)

__all__ = ["router"]
