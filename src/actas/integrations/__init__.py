"""Framework integrations: Starlette/FastAPI, Flask and Django.

Each sets the request's ``Auth`` where that framework keeps such things
(``request.auth`` / ``request.state.auth``, ``g.auth``, ``request.auth``),
binds it to log records (``actas.AuthLogFilter``), and offers the two
guards in the framework's idiom: ``require_auth`` and
``forbid_impersonation``. Import the module for your framework; each imports
only its own framework.
"""

from actas._errors import ImpersonatedSessionForbidden, SignedOut, TokenInvalid

__all__: list[str] = []


def signed_out_error(reason: TokenInvalid | None) -> SignedOut:
    return SignedOut("Sign in to continue." if reason is None else
                     f"Sign in to continue ({reason.message})",
                     reason=reason.reason if reason is not None else "missing")


def impersonation_error() -> ImpersonatedSessionForbidden:
    return ImpersonatedSessionForbidden(
        "This action is not available while someone is acting as this user.")
