"""The one exception root of actas, and every error it raises.

Each leaf has a stable snake_case ``code``. The server returns it in Clerk's
error envelope, ``{"errors": [{"code", "message", "long_message", "meta"}]}``,
with the class's ``http_status``; applications may match on it. Context
travels as ``meta`` (never a secret).

    ActasError                          actas_error            500
    ├── InvalidRequest                  invalid_request        400
    │   ├── MalformedRequestBody        malformed_request_body 400
    │   ├── FormParamInvalid            form_param_*           422
    │   ├── IdentifierExists            form_identifier_exists 422
    │   ├── SessionNotActive            session_not_active     400
    │   ├── NotImpersonating            session_not_impersonated 400
    │   ├── ActorTokenNotPending        actor_token_not_pending 400
    │   ├── AccessRequestNotPending     access_request_not_pending 400
    │   ├── AccessRequestNotNeeded      access_request_not_needed 400
    │   ├── ApprovalNotPending          approval_not_pending 400
    │   ├── WebhookUrlNotAllowed        webhook_url_not_allowed 422
    │   └── TicketRejected              ticket_*               400
    │       ├── TicketInvalid           ticket_invalid
    │       ├── TicketExpired           ticket_expired
    │       ├── TicketRevoked           ticket_revoked
    │       └── TicketAlreadyUsed       ticket_already_used
    ├── AuthenticationFailed            authentication_failed  401
    │   ├── SecretKeyMissing            authorization_header_missing
    │   ├── SecretKeyInvalid            authentication_invalid
    │   ├── InvalidCredentials          form_credentials_invalid 422
    │   ├── SignedOut                   signed_out
    │   └── TokenInvalid                token_*   (a session token was refused; .reason)
    │       ├── TokenMissing            token_missing              reason "missing"
    │       ├── TokenMalformed          token_malformed            reason "malformed"
    │       ├── TokenExpired            token_expired              reason "expired"
    │       ├── TokenNotYetValid        token_not_yet_valid        reason "not_yet_valid"
    │       ├── TokenSignatureInvalid   token_signature_invalid    reason "bad_signature"
    │       ├── TokenKeyUnknown         token_key_unknown          reason "unknown_key"
    │       ├── TokenIssuerInvalid      token_issuer_invalid       reason "wrong_issuer"
    │       └── TokenPartyUnauthorized  token_party_unauthorized   reason "unauthorized_party"
    ├── PermissionDenied                permission_denied      403
    │   ├── OriginNotAllowed            origin_invalid
    │   ├── NonSimpleRequestRequired    request_header_missing
    │   ├── UserBanned                  user_banned
    │   ├── ImpersonationApprovalRequired impersonation_approval_required (sent for approval)
    │   ├── ApprovalOfOwnRequest        approval_self
    │   ├── ImpersonatedSessionForbidden impersonated_session_forbidden
    │   │   └── ImpersonationReadOnly   impersonation_read_only  (a read-only impersonation)
    │   └── ImpersonationRefused        impersonation_*  (policy; each audited)
    │       ├── ImpersonationNotPermitted     impersonation_not_permitted
    │       ├── ImpersonationModeNotPermitted impersonation_mode_not_permitted
    │       ├── ImpersonationOfSelf           impersonation_self
    │       ├── ImpersonationTargetBanned     impersonation_target_banned
    │       ├── ImpersonationTargetNotFound   impersonation_target_not_found
    │       ├── ImpersonationTargetProtected  impersonation_target_protected
    │       ├── ImpersonationNested           impersonation_nested
    │       ├── ImpersonationConsentRequired  impersonation_consent_required
    │       ├── ImpersonationForbiddenByUser  impersonation_forbidden_by_user
    │       └── ImpersonationReasonRequired   impersonation_reason_required
    ├── ResourceNotFound                resource_not_found     404
    ├── RequestTooLarge                 request_body_too_large 413
    ├── TooManyRequests                 too_many_requests      429
    └── ConfigurationInvalid            configuration_invalid  (raised at start-up)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessRequestNotNeeded",
    "AccessRequestNotPending",
    "ActasError",
    "ActorTokenNotPending",
    "ApprovalNotPending",
    "ApprovalOfOwnRequest",
    "AuthenticationFailed",
    "ConfigurationInvalid",
    "FormParamInvalid",
    "IdentifierExists",
    "ImpersonatedSessionForbidden",
    "ImpersonationApprovalRequired",
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
    "WebhookUrlNotAllowed",
]


class ActasError(Exception):
    """Root of every actas error: a stable ``code``, a human message, context."""

    code: ClassVar[str] = "actas_error"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Something went wrong inside actas."

    def __init__(
        self,
        message: str | None = None,
        *,
        long_message: str | None = None,
        code: str | None = None,
        **meta: Any,
    ) -> None:
        self.message = message or self.default_message
        self.long_message = long_message or self.message
        if code is not None:
            self.code = code  # type: ignore[misc]  # a leaf may refine its code per instance
        self.meta: dict[str, Any] = meta
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The error as one entry of Clerk's ``errors`` array."""
        return {
            "code": self.code,
            "message": self.message,
            "long_message": self.long_message,
            "meta": self.meta,
        }


class InvalidRequest(ActasError):
    code = "invalid_request"
    http_status = 400
    default_message = "The request is invalid."


class MalformedRequestBody(InvalidRequest):
    code = "malformed_request_body"
    default_message = "The request body is not valid JSON."


class FormParamInvalid(InvalidRequest):
    """A parameter is missing, unknown, or has the wrong type or value.

    ``code`` is one of ``form_param_missing``, ``form_param_unknown``,
    ``form_param_format_invalid``, ``form_param_value_invalid``; ``meta`` names
    the parameter as ``param_name``.
    """

    code = "form_param_value_invalid"
    http_status = 422
    default_message = "A parameter is invalid."


class IdentifierExists(InvalidRequest):
    code = "form_identifier_exists"
    http_status = 422
    default_message = "That identifier is already taken."


class SessionNotActive(InvalidRequest):
    """The session ended, was revoked, expired or was abandoned; ``meta.status`` says which."""

    code = "session_not_active"
    default_message = "This session is no longer active."


class AuthenticationFailed(ActasError):
    code = "authentication_failed"
    http_status = 401
    default_message = "Authentication failed."


class SecretKeyMissing(AuthenticationFailed):
    code = "authorization_header_missing"
    default_message = "The Authorization header is missing."


class SecretKeyInvalid(AuthenticationFailed):
    code = "authentication_invalid"
    default_message = "The secret key is not valid."


class InvalidCredentials(AuthenticationFailed):
    # One code for "no such user" and "wrong password", so that sign-in
    # does not tell an attacker which email addresses have accounts. 422 like
    # Clerk's form errors: the form is wrong, the browser is not signed out.
    code = "form_credentials_invalid"
    http_status = 422
    default_message = "The email address or password is incorrect."


class SignedOut(AuthenticationFailed):
    code = "signed_out"
    default_message = "This browser is not signed in."


class PermissionDenied(ActasError):
    code = "permission_denied"
    http_status = 403
    default_message = "You are not allowed to do this."


class OriginNotAllowed(PermissionDenied):
    code = "origin_invalid"
    default_message = "The request's Origin is not one of the allowed origins."


class NonSimpleRequestRequired(PermissionDenied):
    code = "request_header_missing"
    default_message = (
        "State-changing requests must be sent with Content-Type: application/json."
    )


class UserBanned(PermissionDenied):
    code = "user_banned"
    default_message = "This account is banned."


class ResourceNotFound(ActasError):
    code = "resource_not_found"
    http_status = 404
    default_message = "Not found."


class RequestTooLarge(ActasError):
    code = "request_body_too_large"
    http_status = 413
    default_message = "The request body is too large."


class ConfigurationInvalid(ActasError):
    """A setting (environment variable or CLI flag) has a value actas cannot use."""

    code = "configuration_invalid"
    default_message = "The configuration is invalid."


class NotImpersonating(InvalidRequest):
    code = "session_not_impersonated"
    default_message = "This session is not an impersonation."


class AccessRequestNotPending(InvalidRequest):
    """The access request was already answered, withdrawn or lapsed; ``meta.status``
    says which."""

    code = "access_request_not_pending"
    default_message = "This access request is no longer waiting for an answer."


class AccessRequestNotNeeded(InvalidRequest):
    """The user's preference makes an access request pointless (``meta.preference``)."""

    code = "access_request_not_needed"
    default_message = "This user allows impersonation without being asked."


class ApprovalNotPending(InvalidRequest):
    """The approval request was already decided, used, withdrawn or expired
    (``meta.status``)."""

    code = "approval_not_pending"
    default_message = "This approval request is no longer waiting for a decision."


class ActorTokenNotPending(InvalidRequest):
    """Only a pending actor token can be revoked; ``meta.status`` says what it is."""

    code = "actor_token_not_pending"
    default_message = "Only a pending actor token can be revoked."


class WebhookUrlNotAllowed(InvalidRequest):
    """actas will not send webhooks to this URL; ``meta.reason`` says why.

    Only http(s) URLs without credentials whose host resolves to public
    addresses only, unless ``ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS`` allows
    loopback and private ones too (see ``actas.server.webhook_urls``).
    """

    code = "webhook_url_not_allowed"
    http_status = 422
    default_message = "actas does not send webhooks to this URL."


class TicketRejected(InvalidRequest):
    code = "ticket_rejected"
    default_message = "This sign-in link cannot be used."


class TicketInvalid(TicketRejected):
    code = "ticket_invalid"
    default_message = "This sign-in link is not valid."


class TicketExpired(TicketRejected):
    code = "ticket_expired"
    default_message = "This sign-in link has expired. Ask for a new one."


class TicketRevoked(TicketRejected):
    code = "ticket_revoked"
    default_message = "This sign-in link was revoked."


class TicketAlreadyUsed(TicketRejected):
    code = "ticket_already_used"
    default_message = "This sign-in link was already used; each link works once."


class ImpersonatedSessionForbidden(PermissionDenied):
    code = "impersonated_session_forbidden"
    default_message = (
        "This can't be done while impersonating a user. Stop impersonating and ask the user."
    )


class ImpersonationReadOnly(ImpersonatedSessionForbidden):
    """A change refused because the session is a read-only impersonation."""

    code = "impersonation_read_only"
    default_message = (
        "This impersonation is read-only: nothing in this account can be changed. "
        "Ask for a full impersonation if a change is needed.")


class ImpersonationApprovalRequired(PermissionDenied):
    """Policy wants a second operator's approval first; the request was sent for it
    (``meta.approval_id``, ``meta.why``). Not a refusal: start again once approved."""

    code = "impersonation_approval_required"
    default_message = ("This impersonation needs a second operator's approval; it was sent "
                       "for approval. Start it again once approved.")


class ApprovalOfOwnRequest(PermissionDenied):
    code = "approval_self"
    default_message = "You cannot approve your own request; another operator must."


class ImpersonationRefused(PermissionDenied):
    """The impersonation policy refused; every refusal is written to the audit log."""

    code = "impersonation_refused"
    default_message = "This impersonation is not allowed."


class ImpersonationNotPermitted(ImpersonationRefused):
    code = "impersonation_not_permitted"
    default_message = "Your role does not allow impersonating users."


class ImpersonationModeNotPermitted(ImpersonationRefused):
    code = "impersonation_mode_not_permitted"
    default_message = "Your role may start read-only impersonations only."


class ImpersonationOfSelf(ImpersonationRefused):
    code = "impersonation_self"
    default_message = "You cannot impersonate yourself."


class ImpersonationTargetBanned(ImpersonationRefused):
    code = "impersonation_target_banned"
    default_message = "This user is banned and cannot be impersonated."


class ImpersonationTargetNotFound(ImpersonationRefused):
    code = "impersonation_target_not_found"
    default_message = "This user does not exist or was deleted."


class ImpersonationTargetProtected(ImpersonationRefused):
    code = "impersonation_target_protected"
    default_message = (
        "This user is protected; impersonating them needs the impersonate:protected permission."
    )


class ImpersonationNested(ImpersonationRefused):
    code = "impersonation_nested"
    default_message = "You are already impersonating someone; nested impersonation is off."


class ImpersonationConsentRequired(ImpersonationRefused):
    """The user asks to be asked: no grant of theirs covers this impersonation."""

    code = "impersonation_consent_required"
    default_message = (
        "This user asks to be asked first: request access, and impersonate them once they "
        "grant it.")


class ImpersonationForbiddenByUser(ImpersonationRefused):
    """The user does not allow impersonation; only an override (owners) passes."""

    code = "impersonation_forbidden_by_user"
    default_message = (
        "This user does not allow impersonation. Only an owner may override that, with a "
        "reason, and the user is told.")


class ImpersonationReasonRequired(ImpersonationRefused):
    code = "impersonation_reason_required"
    default_message = "Give a reason for impersonating this user; it is recorded."


class TokenInvalid(AuthenticationFailed):
    """A session token was refused. ``reason`` is the short word an ``Auth`` reports."""

    code = "token_invalid"
    reason: ClassVar[str] = "invalid"
    default_message = "The session token is not valid."


class TokenMissing(TokenInvalid):
    code = "token_missing"
    reason = "missing"
    default_message = (
        "No session token: send Authorization: Bearer <token> or the __session cookie."
    )


class TokenMalformed(TokenInvalid):
    code = "token_malformed"
    reason = "malformed"
    default_message = "The session token is not a well-formed JWT."


class TokenExpired(TokenInvalid):
    code = "token_expired"
    reason = "expired"
    default_message = "The session token has expired."


class TokenNotYetValid(TokenInvalid):
    code = "token_not_yet_valid"
    reason = "not_yet_valid"
    default_message = "The session token is not valid yet (nbf or iat in the future)."


class TokenSignatureInvalid(TokenInvalid):
    code = "token_signature_invalid"
    reason = "bad_signature"
    default_message = "The session token's signature does not verify."


class TokenKeyUnknown(TokenInvalid):
    code = "token_key_unknown"
    reason = "unknown_key"
    default_message = "The session token was signed by a key this verifier does not know."


class TokenIssuerInvalid(TokenInvalid):
    code = "token_issuer_invalid"
    reason = "wrong_issuer"
    default_message = "The session token was issued by someone else."


class TokenPartyUnauthorized(TokenInvalid):
    code = "token_party_unauthorized"
    reason = "unauthorized_party"
    default_message = "The session token was issued to an origin that is not allowed."


class TooManyRequests(ActasError):
    """Too many failed attempts; ``meta.retry_after_seconds`` says when to try again."""

    code = "too_many_requests"
    http_status = 429
    default_message = "Too many failed attempts. Wait a few minutes and try again."
