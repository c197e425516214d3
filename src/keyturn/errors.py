"""One error tree for all of keyturn.

(Over 300 lines: the whole error tree in one file, so every stable ``code`` and
its parent are read together; each domain's errors are one section.)

Every error carries a stable ``code``: the exact string the HTTP API returns in
``{"error": code}``. The web layer maps classes to status codes in one place
(:mod:`keyturn.web.errors`); the core never thinks about HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the record type only; keyturn.oauth imports this module
    from keyturn.oauth.store import AuthorizationCode


class KeyturnError(Exception):
    """Base of every error keyturn raises on purpose.

    ``detail`` is human text that is safe to show to the caller: it never holds a
    password, a session ID or a token.
    """

    code: str = "internal_error"
    default_detail: str = "Something went wrong."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


# --- configuration and operations -------------------------------------------------


class ConfigurationError(KeyturnError):
    """A setting is missing or invalid; raised before anything is served."""

    code = "invalid_configuration"
    default_detail = "The configuration is invalid."


class DatabaseNotMigrated(ConfigurationError):
    """The database schema is older than this version of keyturn expects."""

    code = "database_not_migrated"
    default_detail = "The database is not migrated: run `keyturn migrate` first."


class StoreUnavailable(KeyturnError):
    """A store the request needs cannot be reached; we fail closed (503)."""

    code = "store_unavailable"
    default_detail = "A storage backend is unavailable; try again shortly."


# --- input --------------------------------------------------------------------------


class InvalidRequest(KeyturnError):
    """The request is malformed: bad JSON, wrong types, missing fields."""

    code = "invalid_request"
    default_detail = "The request is malformed."


class UnsupportedMediaType(InvalidRequest):
    """The request body is not of the one media type the endpoint accepts
    (``application/json`` for the JSON auth API): refused before it is read."""

    code = "unsupported_media_type"
    default_detail = "The request body has an unsupported media type."


class PayloadTooLarge(InvalidRequest):
    """The request body is larger than the configured limit."""

    code = "payload_too_large"
    default_detail = "The request body is too large."


class HeadersTooLarge(InvalidRequest):
    """The request line and headers are larger, or more, than the configured limits."""

    code = "headers_too_large"
    default_detail = "The request headers are too large."


class WeakPassword(InvalidRequest):
    """The password breaks the policy (too short, too long, or too common)."""

    code = "weak_password"
    default_detail = "The password is too weak."


class InvalidEmail(InvalidRequest):
    """The e-mail address is not a valid deliverable-looking address."""

    code = "invalid_email"
    default_detail = "The e-mail address is not valid."


# --- stores and accounts -----------------------------------------------------------


class AlreadyExists(KeyturnError):
    """A store already holds a record with this key (a signing key's ``kid``, a
    client's id): raised by every store, memory and SQL alike."""

    code = "already_exists"
    default_detail = "It already exists."


class EmailTaken(AlreadyExists):
    """An account with this e-mail address (compared case-insensitively) exists."""

    code = "email_taken"
    default_detail = "An account with this e-mail address already exists."


class UserNotFound(KeyturnError):
    """No account matches. Only for operator paths (CLI); sign-in never says this."""

    code = "user_not_found"
    default_detail = "No such user."


class InvalidCredentials(KeyturnError):
    """Wrong e-mail or password, or a disabled account: one answer for all three,
    so that the response never reveals whether an account exists."""

    code = "invalid_credentials"
    default_detail = "The e-mail address or password is incorrect."


class TooManyAttempts(KeyturnError):
    """Too many failed sign-ins for this account or client; wait ``retry_after`` s."""

    code = "too_many_attempts"
    default_detail = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


# --- authentication of requests ---------------------------------------------------


class NotAuthenticated(KeyturnError):
    """The request carries no valid credential."""

    code = "not_authenticated"
    default_detail = "Authentication required."


class InvalidToken(NotAuthenticated):
    """A bearer token was sent but is not acceptable. The detail is deliberately
    the same for every reason; the reason is only in ``reason`` for logs/CLI."""

    code = "invalid_token"
    default_detail = "The access token is invalid."

    def __init__(self, reason: str = "invalid") -> None:
        super().__init__()
        self.reason = reason


class CsrfFailed(KeyturnError):
    """A cookie-authenticated unsafe request lacked a valid CSRF token or came
    from another site."""

    code = "csrf_failed"
    default_detail = "CSRF check failed."


class Forbidden(KeyturnError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"
    default_detail = "You are not allowed to do this."


class InsufficientScope(Forbidden):
    """A bearer token lacks a scope the resource needs (RFC 6750 section 3.1);
    ``scope`` is what the resource needs, space-separated."""

    code = "insufficient_scope"
    default_detail = "The access token does not carry the scope this needs."

    def __init__(self, scope: str, detail: str | None = None) -> None:
        super().__init__(detail)
        self.scope = scope


class InsufficientUserAuthentication(NotAuthenticated):
    """The sign-in is older than the resource allows (RFC 9470): sign in again
    (or re-authenticate) within ``max_age`` seconds of the request."""

    code = "insufficient_user_authentication"
    default_detail = "A more recent sign-in is required."

    def __init__(self, max_age: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.max_age = max_age


class NotFound(KeyturnError):
    """The thing asked for does not exist (or is not the caller's)."""

    code = "not_found"
    default_detail = "Not found."


# --- OAuth 2.0 (RFC 6749 section 5.2 error codes) ----------------------------------


class InvalidGrant(InvalidRequest):
    """The refresh token (or password grant) is invalid, expired, revoked, used,
    or was issued to another client. One answer for all, so nothing is probed."""

    code = "invalid_grant"
    default_detail = "The grant is invalid, expired or revoked."


class InvalidClient(KeyturnError):
    """Client authentication failed: unknown client, wrong or missing secret."""

    code = "invalid_client"
    default_detail = "Client authentication failed."


class UnsupportedGrantType(InvalidRequest):
    """The ``grant_type`` is not one keyturn supports."""

    code = "unsupported_grant_type"
    default_detail = "The grant type is not supported."


class InvalidScope(InvalidRequest):
    """The requested ``scope`` is malformed, or asks for a value the caller may
    not have (outside the client's allowlist)."""

    code = "invalid_scope"
    default_detail = "The requested scope is invalid."


# --- mfa (wave 2) -------------------------------------------------------------------


class InvalidMfaCode(InvalidCredentials):
    """A second-factor code (TOTP or recovery code) is wrong, already used, or
    replayed. One answer for all, so a caller cannot tell a replay from a typo.
    ``attempts_left`` is how many more codes the ``mfa_token`` takes (None when
    the code was not checked against an ``mfa_token``)."""

    code = "invalid_mfa_code"
    default_detail = "The code is incorrect or was already used."

    def __init__(self, attempts_left: int | None = None, detail: str | None = None) -> None:
        super().__init__(detail)
        self.attempts_left = attempts_left


class InvalidMfaToken(NotAuthenticated):
    """The ``mfa_token`` of a two-step sign-in is unknown, expired, used, worn
    out by wrong codes, or presented by another client: sign in again."""

    code = "invalid_mfa_token"
    default_detail = "The sign-in attempt expired; sign in again."


class MfaRequired(InvalidGrant):
    """The account has a second factor, so a path that cannot ask for it (the
    password grant) refuses to sign it in."""

    code = "mfa_required"
    default_detail = "This account needs a second factor; sign in through the browser."


class WebAuthnFailed(InvalidCredentials):
    """A passkey registration or assertion failed verification. The detail is
    the same for every reason; ``reason`` is for logs and the audit trail only."""

    code = "webauthn_failed"
    default_detail = "The passkey could not be verified."

    def __init__(self, reason: str = "invalid") -> None:
        super().__init__()
        self.reason = reason


# --- oauth authorization (wave 2) ---
# The authorization endpoint has two kinds of failure (RFC 6749 section 4.1.2.1):
# ones that must never redirect (the client or its redirect URI cannot be trusted)
# and ones reported to the client by redirect. The parser in
# :mod:`keyturn.oauth.request` raises exactly one of the two families below.


class InvalidRedirectUri(InvalidRequest):
    """A redirect URI offered at client registration breaks the rules: not
    absolute, a fragment, a wildcard, userinfo, or ``http`` off the loopback
    literals (RFC 7591 section 3.2.2 uses this code for the same case)."""

    code = "invalid_redirect_uri"
    default_detail = "The redirect URI is not acceptable."


class UnsafeAuthorizationRequest(InvalidRequest):
    """Base of ``/oauth/authorize`` failures that MUST NOT redirect: the client
    or the redirect URI is unknown, missing, repeated or unregistered, so the
    user sees an error page from keyturn (RFC 6749 section 4.1.2.1)."""

    code = "invalid_request"
    default_detail = "The authorization request is invalid."


class UnknownAuthorizationClient(UnsafeAuthorizationRequest):
    """``client_id`` names no registered client."""

    code = "invalid_client"
    default_detail = "The client is not registered."


class UnregisteredRedirectUri(UnsafeAuthorizationRequest, InvalidRedirectUri):
    """``redirect_uri`` is not one the client registered (exact string match,
    RFC 9700 section 4.1.3, with the RFC 8252 loopback any-port rule)."""

    code = "invalid_redirect_uri"
    default_detail = "The redirect URI is not registered for this client."


class InvalidRequestUri(UnsafeAuthorizationRequest):
    """A PAR ``request_uri`` is unknown, expired, used, or pushed by another
    client (RFC 9126 section 4). It cannot redirect: the redirect URI is
    inside the pushed request that could not be trusted."""

    code = "invalid_request_uri"
    default_detail = "The request_uri is invalid, expired or already used."


class RedirectedAuthorizationError(KeyturnError):
    """Base of ``/oauth/authorize`` failures reported to the client by redirect
    with ``error``, ``error_description``, ``state`` and ``iss``
    (RFC 6749 section 4.1.2.1, RFC 9207).

    ``redirect_uri`` and ``state`` are the validated values to answer with;
    the parser sets them once the client and its redirect URI are trusted.
    """

    code = "invalid_request"
    default_detail = "The authorization request is invalid."

    def __init__(
        self,
        detail: str | None = None,
        *,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.redirect_uri = redirect_uri
        self.state = state


class AuthorizationInvalidRequest(RedirectedAuthorizationError, InvalidRequest):
    """A missing, repeated or malformed parameter (PKCE included), redirected."""

    code = "invalid_request"


class AuthorizationInvalidScope(RedirectedAuthorizationError, InvalidScope):
    """A malformed scope, or one the client may not ask for, redirected."""

    code = "invalid_scope"


class UnsupportedResponseType(RedirectedAuthorizationError, InvalidRequest):
    """``response_type`` is not ``code`` (the only one OAuth 2.1 keeps)."""

    code = "unsupported_response_type"
    default_detail = "Only response_type=code is supported."


class UnauthorizedClient(RedirectedAuthorizationError, InvalidRequest):
    """The client is not registered for the ``authorization_code`` grant."""

    code = "unauthorized_client"
    default_detail = "The client may not use the authorization code flow."


class InteractionRequired(RedirectedAuthorizationError):
    """``prompt=none`` but the user would have to see a page (OIDC Core 3.1.2.6)."""

    code = "interaction_required"
    default_detail = "User interaction is required."


class LoginRequired(InteractionRequired):
    """``prompt=none`` but nobody is signed in, or the sign-in is too old."""

    code = "login_required"
    default_detail = "The user must sign in."


class ConsentRequired(InteractionRequired):
    """``prompt=none`` but the user has not yet consented to these scopes."""

    code = "consent_required"
    default_detail = "The user must consent."


class AccessDenied(RedirectedAuthorizationError, Forbidden):
    """The user declined the consent screen."""

    code = "access_denied"
    default_detail = "The user denied the request."


class CodeRejected(InvalidGrant):
    """An authorization code cannot be redeemed. The body is the one
    ``invalid_grant`` answer for every reason; ``reason`` (``unknown``,
    ``expired``, ``client``, ``redirect_uri``, ``pkce``, ``replayed``) is for
    logs and tests only."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class CodeReplayed(CodeRejected):
    """An authorization code was presented again after its first redemption.

    ``grant`` is the stored record of the code (a
    :class:`keyturn.oauth.store.AuthorizationCode`), with the ``grant_id`` and
    the ``family_id`` the first redemption recorded, so the caller can revoke
    everything issued from it (RFC 6749 section 4.1.2, RFC 9700 section 4.2.4).
    """

    def __init__(self, grant: AuthorizationCode) -> None:
        super().__init__("replayed")
        self.grant = grant


# --- outbox and mail (wave 2) -----------------------------------------------------


class DeliveryError(KeyturnError):
    """A side effect queued in the outbox (a mail, a back-channel logout) could not
    be delivered. Raised by outbox handlers and mailers, never to an HTTP caller:
    the request that queued the job has already answered. ``detail`` is short and
    never holds a payload, a link or a credential (it is stored as the job's
    ``last_error``)."""

    code = "delivery_failed"
    default_detail = "The delivery failed."


class RetryableDeliveryError(DeliveryError):
    """The delivery may succeed later (SMTP 4xx, timeout, connection refused, TLS
    or authentication trouble): the outbox tries again after a backoff."""

    code = "delivery_retryable"
    default_detail = "The delivery failed for now; it will be retried."


class PermanentDeliveryError(DeliveryError):
    """The delivery can never succeed as queued (SMTP 5xx refusing the recipient,
    sender or content; an unreadable payload): the outbox marks the job dead."""

    code = "delivery_permanent"
    default_detail = "The delivery was refused for good."


# --- dpop (wave 2) ---


class InvalidDpopProof(NotAuthenticated):
    """A DPoP proof (RFC 9449) is missing where one is needed, or is not acceptable.

    Like :class:`InvalidToken`, the detail is the same for every reason; the reason
    (``typ``, ``signature``, ``htu``, ``replayed``, ...) is only in ``reason``, for logs.
    401 with ``WWW-Authenticate: DPoP error="invalid_dpop_proof"`` at a resource,
    400 ``{"error": "invalid_dpop_proof"}`` at the token endpoint (RFC 9449 section 5).
    """

    code = "invalid_dpop_proof"
    default_detail = "The DPoP proof is invalid."

    def __init__(self, reason: str = "invalid") -> None:
        super().__init__()
        self.reason = reason


class UseDpopNonce(NotAuthenticated):
    """The server demands its own nonce in DPoP proofs (RFC 9449 sections 8 and 9) and
    the proof carried none, or a stale or unknown one. ``nonce`` is the fresh value to
    send in the ``DPoP-Nonce`` response header (not a secret: every client sees it).

    A sibling of :class:`InvalidDpopProof`, not a subclass, so that code catching one
    never answers the other's way.
    """

    code = "use_dpop_nonce"
    default_detail = "A DPoP nonce from this server is required; retry with the new one."

    def __init__(self, nonce: str, reason: str = "nonce_missing") -> None:
        super().__init__()
        self.nonce = nonce
        self.reason = reason


# --- oauth clients (wave 2, #12) ---


class InvalidClientMetadata(InvalidRequest):
    """A value offered at client registration is not acceptable: an unknown grant
    type or ID-token algorithm, a grant the client's type cannot use
    (``client_credentials`` for a public client), or a bad back-channel logout
    URI (RFC 7591 section 3.2.2 uses this code for the same case). The detail is
    one line naming the value and the rule."""

    code = "invalid_client_metadata"
    default_detail = "The client metadata is not acceptable."


class GrantNotAllowed(InvalidRequest):
    """The authenticated client is not registered for this grant type: RFC 6749
    section 5.2 ``unauthorized_client`` at the token endpoint (400)."""

    code = "unauthorized_client"
    default_detail = "The client is not allowed to use this grant type."


# --- DPoP (wave 2, #16) ---


class InvalidDpopToken(InvalidToken):
    """An access token presented against its DPoP binding (RFC 9449 section 7): a
    bound token (``cnf.jkt``) sent as ``Bearer``, an unbound one sent as ``DPoP``, or
    any refused token sent with the ``DPoP`` scheme. The same ``invalid_token`` as
    every token failure; only the challenge differs: 401 with
    ``WWW-Authenticate: DPoP error="invalid_token"``.
    """


# --- mfa (wave 2): step-up ---


class MultiFactorRequired(InsufficientUserAuthentication):
    """The route needs a multi-factor sign-in (``require(mfa=True)``) and the
    caller signed in with one factor: sign in again with a second factor. The
    HTTP answer names ``acr_values`` (RFC 9470) instead of ``max_age``."""

    code = "insufficient_user_authentication"
    default_detail = "This needs a sign-in with a second factor."

    def __init__(self, acr_values: str, detail: str | None = None) -> None:
        super().__init__(0, detail)
        self.acr_values = acr_values
