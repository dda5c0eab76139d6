"""actas: authentication and sessions with safe, audited user impersonation.

This is the application-side package: verify session tokens locally and
learn who is signed in, and who is acting as them::

    verifier = actas.Verifier(issuer="https://auth.example.com",
                              jwks_url="https://auth.example.com/.well-known/jwks.json")
    auth = actas.authenticate_request(request, verifier=verifier)
    if auth.is_impersonated:
        print(auth.actor.sub, "is acting as", auth.user_id)

Framework integrations live in ``actas.integrations``; the server in
``actas.server`` (installed with the ``server`` extra).
"""

from actas._activity import ActivityReporter
from actas._auth import Actor, Auth
from actas._errors import (
    AccessRequestNotNeeded,
    AccessRequestNotPending,
    ActasError,
    ActorTokenNotPending,
    AuthenticationFailed,
    ConfigurationInvalid,
    FormParamInvalid,
    IdentifierExists,
    ImpersonatedSessionForbidden,
    ImpersonationConsentRequired,
    ImpersonationForbiddenByUser,
    ImpersonationModeNotPermitted,
    ImpersonationNested,
    ImpersonationNotPermitted,
    ImpersonationOfSelf,
    ImpersonationReadOnly,
    ImpersonationReasonRequired,
    ImpersonationRefused,
    ImpersonationTargetBanned,
    ImpersonationTargetNotFound,
    ImpersonationTargetProtected,
    InvalidCredentials,
    InvalidRequest,
    MalformedRequestBody,
    NonSimpleRequestRequired,
    NotImpersonating,
    OriginNotAllowed,
    PermissionDenied,
    RequestTooLarge,
    ResourceNotFound,
    SecretKeyInvalid,
    SecretKeyMissing,
    SessionNotActive,
    SignedOut,
    TicketAlreadyUsed,
    TicketExpired,
    TicketInvalid,
    TicketRejected,
    TicketRevoked,
    TokenExpired,
    TokenInvalid,
    TokenIssuerInvalid,
    TokenKeyUnknown,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    TokenPartyUnauthorized,
    TokenSignatureInvalid,
    TooManyRequests,
    UserBanned,
)
from actas._logging import AuthLogFilter, bind_auth
from actas._requests import authenticate_request
from actas._verifier import Verifier

__all__ = [
    "AccessRequestNotNeeded",
    "AccessRequestNotPending",
    "ActasError",
    "ActivityReporter",
    "Actor",
    "ActorTokenNotPending",
    "Auth",
    "AuthLogFilter",
    "AuthenticationFailed",
    "ConfigurationInvalid",
    "FormParamInvalid",
    "IdentifierExists",
    "ImpersonatedSessionForbidden",
    "ImpersonationConsentRequired",
    "ImpersonationForbiddenByUser",
    "ImpersonationModeNotPermitted",
    "ImpersonationNested",
    "ImpersonationNotPermitted",
    "ImpersonationOfSelf",
    "ImpersonationReadOnly",
    "ImpersonationReasonRequired",
    "ImpersonationRefused",
    "ImpersonationTargetBanned",
    "ImpersonationTargetNotFound",
    "ImpersonationTargetProtected",
    "InvalidCredentials",
    "InvalidRequest",
    "MalformedRequestBody",
    "NonSimpleRequestRequired",
    "NotImpersonating",
    "OriginNotAllowed",
    "PermissionDenied",
    "RequestTooLarge",
    "ResourceNotFound",
    "SecretKeyInvalid",
    "SecretKeyMissing",
    "SessionNotActive",
    "SignedOut",
    "TicketAlreadyUsed",
    "TicketExpired",
    "TicketInvalid",
    "TicketRejected",
    "TicketRevoked",
    "TokenExpired",
    "TokenInvalid",
    "TokenIssuerInvalid",
    "TokenKeyUnknown",
    "TokenMalformed",
    "TokenMissing",
    "TokenNotYetValid",
    "TokenPartyUnauthorized",
    "TokenSignatureInvalid",
    "TooManyRequests",
    "UserBanned",
    "Verifier",
    "authenticate_request",
    "bind_auth",
]

__version__ = "0.1.0.dev0"
