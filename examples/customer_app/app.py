"""A customer-facing app protected by actas: what an impersonating support engineer sees.

The backend never calls actas per request: it verifies the session token
locally (``actas.integrations.fastapi``) and knows from ``auth.actor`` when
someone is acting as the user. "Delete my account" is guarded by
``forbid_impersonation``, so a support engineer can look but not destroy.

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


def create_app(actas_url: str | None = None, app_url: str | None = None) -> FastAPI:
    actas_url = (actas_url or os.environ.get("ACTAS_URL", "http://localhost:4000")).rstrip("/")
    app_url = (app_url or os.environ.get("APP_URL", "http://localhost:3000")).rstrip("/")
    verifier = actas.Verifier(issuer=actas_url,
                              jwks_url=f"{actas_url}/.well-known/jwks.json",
                              authorized_parties=[app_url])
    app = FastAPI(title="Customer app (actas demo)")
    install(app, verifier=verifier)
    app.state.seen = []  # what the backend saw, newest last (the browser tests read it)
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
        return {**seen, "orders": _orders(str(auth.user_id))}

    @app.post("/api/account/delete")
    def delete_account(auth: Annotated[actas.Auth, Depends(forbid_impersonation)]
                       ) -> dict[str, Any]:
        # A real app would delete the account here (through actas's Backend API).
        return {"deleted": False, "message": "Demo: your account would now be deleted."}

    @app.get("/api/_seen", include_in_schema=False)
    def seen_by_backend() -> list[dict[str, Any]]:
        return list(app.state.seen)

    return app
