"""actas: authentication and sessions with safe, audited user impersonation.

This is the application-side package. The server lives in ``actas.server``
(installed with the ``server`` extra).
"""

from actas._errors import (
    ActasError,
    AuthenticationFailed,
    ConfigurationInvalid,
    FormParamInvalid,
    IdentifierExists,
    InvalidCredentials,
    InvalidRequest,
    MalformedRequestBody,
    NonSimpleRequestRequired,
    OriginNotAllowed,
    PermissionDenied,
    RequestTooLarge,
    ResourceNotFound,
    SecretKeyInvalid,
    SecretKeyMissing,
    SessionNotActive,
    SignedOut,
    UserBanned,
)

__all__ = [
    "ActasError",
    "AuthenticationFailed",
    "ConfigurationInvalid",
    "FormParamInvalid",
    "IdentifierExists",
    "InvalidCredentials",
    "InvalidRequest",
    "MalformedRequestBody",
    "NonSimpleRequestRequired",
    "OriginNotAllowed",
    "PermissionDenied",
    "RequestTooLarge",
    "ResourceNotFound",
    "SecretKeyInvalid",
    "SecretKeyMissing",
    "SessionNotActive",
    "SignedOut",
    "UserBanned",
]

__version__ = "0.1.0.dev0"
