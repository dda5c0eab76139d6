"""The Frontend API: what browsers call, authenticated by the ``__client`` cookie."""

from fastapi import APIRouter

from actas.server.frontend_api import client, sign_ins, sign_ups, well_known
from actas.server.http.errors import ERROR_RESPONSES

router = APIRouter(responses=ERROR_RESPONSES)
router.include_router(sign_ups.router)
router.include_router(sign_ins.router)
router.include_router(client.router)
router.include_router(well_known.router)

__all__ = ["router"]
