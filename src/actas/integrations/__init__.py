"""Framework integrations: Starlette/FastAPI, Flask and Django.

Each sets the request's ``Auth`` where that framework keeps such things
(``request.auth`` / ``request.state.auth``, ``g.auth``, ``request.auth``),
binds it to log records (``actas.AuthLogFilter``), and offers the guards in
the framework's idiom: ``require_auth`` and ``forbid_impersonation``.

Each also enforces read-only impersonation by default: in a session whose
token says ``act_mode: read_only``, any request but ``GET``, ``HEAD``,
``OPTIONS`` and ``TRACE`` is answered 403 ``impersonation_read_only`` before
the view runs, unless the view is marked ``@allow_in_read_only`` (a search
sent as POST, say; the mark covers every method of the view, so mark only
views that change nothing whatever the method). On Starlette a WebSocket of a
read-only impersonation is refused unless its endpoint is marked.
``forbid_impersonation`` still refuses every impersonation, full ones included.
Import the module for your framework; each imports only its own framework.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from actas._auth import Auth
from actas._errors import (
    ImpersonatedSessionForbidden,
    ImpersonationReadOnly,
    SignedOut,
    TokenInvalid,
)

__all__ = ["SAFE_METHODS", "allow_in_read_only"]

F = TypeVar("F", bound=Callable[..., Any])

# Methods that change nothing by HTTP's definition; every other one (POST, PUT, PATCH,
# DELETE, and any custom method: PURGE, WebDAV's MOVE…) is refused to read-only.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ALLOWED = "__actas_allow_in_read_only__"


def allow_in_read_only(view: F) -> F:
    """Mark a view (a function, or a Django class-based view) as changing nothing even
    though its method is unsafe, so a read-only impersonation may call it."""
    setattr(view, _ALLOWED, True)
    return view


def allowed_in_read_only(view: Any) -> bool:
    if getattr(view, _ALLOWED, False):
        return True
    view_class = getattr(view, "view_class", None)  # Django's View.as_view()
    return bool(view_class is not None and getattr(view_class, _ALLOWED, False))


def refuses(auth: Auth, method: str) -> bool:
    """Whether ``auth`` is a read-only impersonation and ``method`` may change state (the
    caller then looks for the route's ``allow_in_read_only`` mark). Any method but
    GET, HEAD, OPTIONS and TRACE, in any case."""
    return auth.actor is not None and auth.is_read_only and method.upper() not in SAFE_METHODS


def signed_out_error(reason: TokenInvalid | None) -> SignedOut:
    return SignedOut("Sign in to continue." if reason is None else
                     f"Sign in to continue ({reason.message})",
                     reason=reason.reason if reason is not None else "missing")


def impersonation_error() -> ImpersonatedSessionForbidden:
    return ImpersonatedSessionForbidden(
        "This action is not available while someone is acting as this user.")


def read_only_error(method: str) -> ImpersonationReadOnly:
    return ImpersonationReadOnly(
        f"This impersonation is read-only: the application refuses {method} requests in it.",
        method=method)
