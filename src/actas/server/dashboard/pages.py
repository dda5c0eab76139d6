"""Rendering dashboard pages: Jinja2 templates, autoescaped, with strict security headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from actas.server.http.origins import instance_of

_HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True,
                   lstrip_blocks=True)


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def relative(ms: int, now: int) -> str:
    """"3 min ago", "in 2 h": how a person reads a time near now. The absolute time
    stays beside it (see ``ago``); the dashboard's script keeps both current."""
    delta = (now - ms) // 1000
    future, seconds = delta < 0, abs(delta)
    if seconds < 45:
        return "just now" if not future else "in a few seconds"
    unit, size = next(((u, s) for u, s in (("d", 86400), ("h", 3600)) if seconds >= s),
                      ("min", 60))  # 45 s and up reads as a minute
    amount = max(1, seconds // size)  # whole units passed, as the page's script counts
    if unit == "d" and amount > 30:
        return _when(ms)[:10]
    return f"in {amount} {unit}" if future else f"{amount} {unit} ago"


@pass_context
def _ago(context: Context, ms: int | None) -> Markup:
    """A ``<time>`` that reads "3 min ago" with the exact UTC time on hover and to
    assistive technology; the page's script refreshes the words."""
    if ms is None:
        return Markup("—")
    now = context.get("now")
    words = relative(ms, now) if isinstance(now, int) else _when(ms)
    return Markup('<time class="ago" datetime="{}" data-ms="{}" title="{}">{}</time>').format(
        iso(ms), ms, _when(ms), words)


def _initials(name: str | None) -> str:
    words = [w for w in (name or "").replace("@", " ").replace(".", " ").split() if w]
    letters = "".join(w[0] for w in words[:2]).upper()
    return letters or "?"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    seconds = max(0, ms // 1000)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60}:{seconds % 60:02d}"


_env.filters["when"] = _when
_env.filters["duration"] = _duration
_env.filters["ago"] = _ago
_env.filters["iso"] = iso
_env.filters["initials"] = _initials


def security_headers(request: Request, response: Response) -> Response:
    settings = instance_of(request).settings
    landing = urlsplit(settings.landing_url)
    # form-action also governs where a form's redirects may go: the
    # impersonate form ends at the application, so its origin is allowed.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        f"form-action 'self' {landing.scheme}://{landing.netloc}; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(request: Request, template: str, *, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    instance = instance_of(request)
    context.setdefault("now", instance.now_ms())
    context.setdefault("approvals_on", bool(instance.settings.approval_required_for))
    html = _env.get_template(template).render(request=request, **context)
    return security_headers(request, HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def redirect(request: Request, url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    security_headers(request, response)
    return response
