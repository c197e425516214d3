"""The one place where errors become HTTP responses.

(Over 300 lines: the one place errors become HTTP (STYLE habit 4), so every
mapping and handler is here.)

Every JSON error body is ``{"error": code, "detail": text}``. ``code`` is the
stable :attr:`keyturn.errors.KeyturnError.code`; ``detail`` is safe human text.
Nothing else (tracebacks, library names, SQL, inputs) ever reaches the body:
unexpected exceptions are logged and answered with one generic 500.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from keyturn.dpop.proof import DEFAULT_ALGORITHMS
from keyturn.errors import (
    AlreadyExists,
    CsrfFailed,
    EmailTaken,
    Forbidden,
    HeadersTooLarge,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidClient,
    InvalidCredentials,
    InvalidDpopProof,
    InvalidDpopToken,
    InvalidEmail,
    InvalidRequest,
    InvalidToken,
    KeyturnError,
    MfaRequired,
    MultiFactorRequired,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    RedirectedAuthorizationError,
    StoreUnavailable,
    TooManyAttempts,
    UnsupportedMediaType,
    UseDpopNonce,
    UserNotFound,
    WeakPassword,
)

logger = logging.getLogger("keyturn.web")

#: KeyturnError class -> HTTP status. Looked up along the MRO, so a subclass
#: without an entry inherits its parent's status; unmapped errors are 500.
STATUS_BY_ERROR: Mapping[type[KeyturnError], int] = {
    InvalidRequest: 400,
    WeakPassword: 400,
    InvalidEmail: 400,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    HeadersTooLarge: 431,
    NotAuthenticated: 401,
    InvalidToken: 401,
    InvalidCredentials: 401,
    InvalidClient: 401,
    CsrfFailed: 403,
    Forbidden: 403,
    NotFound: 404,
    UserNotFound: 404,
    AlreadyExists: 409,
    EmailTaken: 409,
    TooManyAttempts: 429,
    StoreUnavailable: 503,
    # --- OAuth authorization code flow (wave 2, #12 part B): redirected at
    # /oauth/authorize; anywhere else (PAR) a plain 400.
    RedirectedAuthorizationError: 400,
}

#: Codes for framework HTTP errors that have no KeyturnError of their own.
_CODE_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    431: "headers_too_large",
    503: "service_unavailable",
}

INTERNAL_ERROR_DETAIL = "An internal error occurred."
_MAX_DETAIL = 200


def json_error(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A JSON error response ``{"error": code, "detail": detail, **extra}``."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def status_for(exc: KeyturnError) -> int:
    """The HTTP status for a keyturn error (500 when the class is unmapped)."""
    for cls in type(exc).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def error_response(exc: KeyturnError) -> JSONResponse:
    """Turn a keyturn error into its JSON response: status, body and headers.

    401s carry ``WWW-Authenticate: Bearer`` (``error="invalid_token"`` when a
    token was sent, RFC 6750; ``error="insufficient_user_authentication"`` and
    ``max_age`` for a sign-in too old, RFC 9470); ``insufficient_scope`` 403s
    carry ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``;
    429s carry ``Retry-After``. Errors without a mapping are logged and
    answered with a generic 500.
    """
    status = status_for(exc)
    if status == 500:
        logger.error("unmapped keyturn error %s", type(exc).__name__, exc_info=exc)
        return json_error(500, "internal_error", INTERNAL_ERROR_DETAIL)
    headers: dict[str, str] = {}
    if isinstance(exc, DPOP_ERRORS):
        headers.update(dpop_challenge(exc))
    elif isinstance(exc, InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif isinstance(exc, MultiFactorRequired):  # mfa (wave 2): RFC 9470 step-up
        headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_user_authentication", acr_values="{exc.acr_values}"'
        )
    elif isinstance(exc, InsufficientUserAuthentication):
        headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_user_authentication", max_age="{exc.max_age}"'
        )
    elif isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{exc.scope}"'
    elif status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return json_error(status, exc.code, exc.detail, headers=headers)


# --- DPoP (wave 2, #16): resource challenges (RFC 9449 section 7.1) ---

#: The errors answered with a ``DPoP`` challenge instead of ``Bearer``.
DPOP_ERRORS = (InvalidDpopProof, UseDpopNonce, InvalidDpopToken)
_DPOP_ALGS = " ".join(DEFAULT_ALGORITHMS)


def dpop_challenge(exc: KeyturnError) -> dict[str, str]:
    """``WWW-Authenticate: DPoP error="...", algs="..."`` for a refused DPoP
    request, and ``DPoP-Nonce`` with the fresh nonce for ``use_dpop_nonce``."""
    headers = {"WWW-Authenticate": f'DPoP error="{exc.code}", algs="{_DPOP_ALGS}"'}
    if isinstance(exc, UseDpopNonce):
        headers["DPoP-Nonce"] = exc.nonce
    return headers


#: What every ``/oauth/token`` and ``/oauth/*`` answer carries (RFC 6749 section 5.1).
OAUTH_NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(exc: KeyturnError) -> JSONResponse:
    """A keyturn error as an RFC 6749 section 5.2 error: ``{"error",
    "error_description"}`` with ``Cache-Control: no-store``.

    ``invalid_client`` is 401 with ``WWW-Authenticate: Basic``; a refused
    password (``invalid_credentials``) or an unusable account is the same
    ``invalid_grant`` as a bad refresh token; throttling keeps its 429 and
    ``Retry-After``; a store outage stays 503. Anything else unexpected is the
    generic 500.
    """
    if isinstance(exc, InvalidDpopProof | UseDpopNonce):  # RFC 9449 section 5: 400
        code, status, detail = exc.code, 400, exc.detail
    elif isinstance(exc, MfaRequired):  # mfa (wave 2): RFC 6749 has no code of its own
        code, status, detail = "invalid_grant", 400, MfaRequired.code
    elif isinstance(exc, InvalidCredentials | NotAuthenticated):
        code, status, detail = "invalid_grant", 400, "The grant is invalid, expired or revoked."
    else:
        code, status, detail = exc.code, status_for(exc), exc.detail
    headers = dict(OAUTH_NO_STORE)
    if isinstance(exc, InvalidClient):
        status = 401
        headers["WWW-Authenticate"] = 'Basic realm="keyturn"'
    elif status == 500:
        logger.error("unmapped keyturn error %s", type(exc).__name__, exc_info=exc)
        code, detail = "server_error", INTERNAL_ERROR_DETAIL
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, UseDpopNonce):
        headers["DPoP-Nonce"] = exc.nonce
    body = {"error": code, "error_description": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One short line naming the first invalid field, never echoing its value."""
    if not errors:
        return InvalidRequest.default_detail
    first = errors[0]
    if not isinstance(first, Mapping):
        return InvalidRequest.default_detail
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    location = [str(part) for part in first.get("loc", ()) if isinstance(part, str | int)]
    if location and location[0] in ("body", "query", "path", "header", "cookie", "form"):
        location = location[1:]
    field = ".".join(location)
    if kind == "missing":
        text = f"Field '{field}' is required." if field else "The request body is required."
    else:
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        text = f"Invalid field '{field}': {message}." if field else f"Invalid body: {message}."
    more = len(errors) - 1
    if more:
        text += f" ({more} more problem{'s' if more > 1 else ''})"
    return text[:_MAX_DETAIL]


def _code_for_status(status: int) -> str:
    code = _CODE_BY_STATUS.get(status)
    if code is not None:
        return code
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "invalid_request" if status < 500 else "internal_error"


async def _keyturn_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeyturnError)
    return error_response(exc)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    return json_error(400, "invalid_request", describe_validation_errors(exc.errors()))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status >= 500:
        return json_error(status, _code_for_status(status), INTERNAL_ERROR_DETAIL)
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Request failed"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    if detail == phrase:
        detail += "."
    return json_error(status, _code_for_status(status), detail[:_MAX_DETAIL], headers=headers)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    return unhandled_error_response(exc, method=request.method, path=request.url.path)


def unhandled_error_response(exc: BaseException, *, method: str, path: str) -> JSONResponse:
    """Log an unexpected exception and return the generic 500 response."""
    # %r keeps control characters in the path from forging log lines.
    logger.error("unhandled %s on %s %r", type(exc).__name__, method, path, exc_info=exc)
    return json_error(500, "internal_error", INTERNAL_ERROR_DETAIL)


Handler = Callable[[StarletteRequest, Exception], Any]


def _scoped(handler: Handler, previous: Handler | None, endpoints: Collection[object]) -> Handler:
    """``handler`` for requests routed to one of ``endpoints``; the app's own
    handler (``previous``) for every other request, or the exception re-raised
    when it had none (Starlette's default: a 500)."""

    async def scoped(request: StarletteRequest, exc: Exception) -> Response:
        if request.scope.get("endpoint") in endpoints:
            response: Response = await handler(request, exc)
            return response
        if previous is None:
            raise exc
        result = previous(request, exc)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    return scoped


def install_error_handlers(app: FastAPI, *, endpoints: Collection[object] | None = None) -> None:
    """Register keyturn's error handlers on ``app``.

    With ``endpoints=None`` (keyturn's own server) they answer for every request,
    unmatched paths and unexpected exceptions included. A host application
    passes keyturn's route endpoints instead: then keyturn errors are rendered
    keyturn's way wherever they are raised (a host route using
    :func:`keyturn.web.require` included), while validation and HTTP errors keep
    keyturn's format only on keyturn's routes and go to the host app's own
    handlers (FastAPI's defaults unless it set others) everywhere else.
    """
    if endpoints is None:
        app.add_exception_handler(KeyturnError, _keyturn_error)
        app.add_exception_handler(RequestValidationError, _request_validation_error)
        app.add_exception_handler(ValidationError, _request_validation_error)
        app.add_exception_handler(StarletteHTTPException, _http_exception)
        # Last resort: Starlette's ServerErrorMiddleware calls this (and re-raises)
        # only if something escapes keyturn's own catch-all middleware.
        app.add_exception_handler(Exception, _unhandled)
        return
    known = frozenset(endpoints)
    handlers: tuple[tuple[type[Exception], Handler], ...] = (
        (RequestValidationError, _request_validation_error),
        (ValidationError, _request_validation_error),
        (StarletteHTTPException, _http_exception),
    )
    if KeyturnError not in app.exception_handlers:
        app.add_exception_handler(KeyturnError, _keyturn_error)
    for error, handler in handlers:
        previous = app.exception_handlers.get(error)
        app.add_exception_handler(error, _scoped(handler, previous, known))
