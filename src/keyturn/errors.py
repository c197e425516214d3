"""One error tree for all of keyturn.

Every error carries a stable ``code``: the exact string the HTTP API returns in
``{"error": code}``. The web layer maps classes to status codes in one place
(:mod:`keyturn.web.errors`); the core never thinks about HTTP.
"""

from __future__ import annotations


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


# --- accounts ---------------------------------------------------------------------


class EmailTaken(KeyturnError):
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
