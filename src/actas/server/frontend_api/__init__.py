"""The Frontend API: what browsers call, authenticated by the ``__client`` cookie."""

from fastapi import APIRouter

from actas.server.frontend_api import (
    access,
    browser_client,
    client,
    me,
    sign_ins,
    sign_ups,
    tickets,
    well_known,
)
from actas.server.http.errors import ERROR_RESPONSES

router = APIRouter()
for json_api in (sign_ups, sign_ins, client, me, access, well_known):
    router.include_router(json_api.router, responses=ERROR_RESPONSES)
# A page a person opens: its errors are HTML, documented on the route itself.
router.include_router(tickets.router)
# The browser client itself, so that running actas never needs npm.
router.include_router(browser_client.router)

__all__ = ["router"]
