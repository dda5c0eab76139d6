"""A customer-facing app protected by actas: what an impersonating support engineer sees.

The backend never calls actas per request: it verifies the session token
locally (``actas.integrations.fastapi``) and knows from ``auth.actor`` when
someone is acting as the user. "Delete my account" is guarded by
``forbid_impersonation``, so a support engineer can look but not destroy.
Changing the shipping address is an ordinary write: a full impersonation may
make it, a read-only one is refused by the SDK's middleware (403
``impersonation_read_only``) whatever the page's disabled button says.

    uvicorn --factory examples.customer_app.app:create_app   # with ACTAS_URL set
"""

from __future__ import annotations

import hashlib
import html
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

import actas
from actas.integrations.fastapi import forbid_impersonation, install, require_auth

STATIC = Path(__file__).with_name("static")


def _orders(user_id: str) -> list[dict[str, Any]]:
    """Demo data: a few orders that differ per user, so each user sees their own."""
    seed = hashlib.sha256(user_id.encode()).digest()
    items = ["Analytical Engine manual", "Punched cards (box)", "Brass gears", "Ink ribbon",
             "Difference Engine model", "Notebook"]
    return [{"id": f"ord_{seed[i]:03d}{i}", "item": items[seed[i] % len(items)],
             "total": f"{seed[i + 8] / 4 + 5:.2f}"} for i in range(3)]


class Address(BaseModel):
    address: str = Field(min_length=1, max_length=200)


def create_app(actas_url: str | None = None, app_url: str | None = None,
               secret_key: str | None = None) -> FastAPI:
    actas_url = (actas_url or os.environ.get("ACTAS_URL", "http://localhost:4000")).rstrip("/")
    app_url = (app_url or os.environ.get("APP_URL", "http://localhost:3000")).rstrip("/")
    verifier = actas.Verifier(issuer=actas_url,
                              jwks_url=f"{actas_url}/.well-known/jwks.json",
                              authorized_parties=[app_url])
    app = FastAPI(title="Customer app (actas demo)")
    # What impersonators do here is reported to actas (off the request path), when the
    # app has a Backend API secret key: the user then sees it in their access history.
    secret_key = secret_key or os.environ.get("ACTAS_SECRET_KEY")
    reporter = (actas.ActivityReporter(api_url=actas_url, secret_key=secret_key,
                                       flush_interval=0.5) if secret_key else None)
    app.state.reporter = reporter
    install(app, verifier=verifier, reporter=reporter)
    app.state.seen = []  # what the backend saw, newest last (the browser tests read it)
    app.state.addresses = {}  # user id -> shipping address (demo data, in memory)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        template = (STATIC / "index.html").read_text()
        return template.replace("{{ACTAS_URL}}", html.escape(actas_url, quote=True))

    @app.get("/api/me")
    def me(auth: Annotated[actas.Auth, Depends(require_auth)]) -> dict[str, Any]:
        seen = {"user_id": auth.user_id, "session_id": auth.session_id,
                "actor": dict(auth.actor.claims) if auth.actor else None}
        app.state.seen.append(seen)
        return {**seen, "orders": _orders(str(auth.user_id)),
                "shipping_address": app.state.addresses.get(auth.user_id, "12 St James's Square")}

    @app.post("/api/address")
    def change_address(body: Address, auth: Annotated[actas.Auth, Depends(require_auth)]
                       ) -> dict[str, Any]:
        # Refused before it gets here in a read-only impersonation (the middleware).
        app.state.addresses[auth.user_id] = body.address
        return {"shipping_address": body.address}

    @app.post("/api/account/delete")
    def delete_account(auth: Annotated[actas.Auth, Depends(forbid_impersonation)]
                       ) -> dict[str, Any]:
        # A real app would delete the account here (through actas's Backend API).
        return {"deleted": False, "message": "Demo: your account would now be deleted."}

    @app.get("/api/_seen", include_in_schema=False)
    def seen_by_backend() -> list[dict[str, Any]]:
        return list(app.state.seen)

    return app
