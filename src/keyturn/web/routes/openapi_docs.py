"""What keyturn's routes document in ``/openapi.json``: request bodies, every
answer they give, error answers included, and how callers authenticate.

(Over 300 lines: one table of every documented answer, kept in one place so the
fuzz run's contract is read at once.)

The routes parse their bodies themselves (JSON only at ``/auth/*``, forms only at
``/oauth/*``), so FastAPI cannot infer the bodies; each route passes
``openapi_extra=`` and ``responses=`` built here instead. The fuzz run
(tests/fuzz) holds keyturn to this description: a status, header or body that is
not documented here is a failure.

Errors are ``{"error", "detail"}`` (:class:`ErrorBody`) everywhere except the
RFC 6749 answers of ``/oauth/*`` (:class:`OAuthErrorBody`). Some answers come
from the middleware, before any route: 413 (body too large), 431 (headers too
large) and 503 (a store down while resolving the caller) for every route, and
403 ``csrf_failed`` for cookie-authenticated unsafe requests; those are
always ``{"error", "detail"}``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from keyturn.web.routes.refresh_cookie import REFRESH_COOKIE_FIELD

if TYPE_CHECKING:
    from fastapi import FastAPI

    from keyturn.runtime import Keyturn

__all__ = [
    "BEARER_OR_SESSION",
    "ErrorBody",
    "OAuthErrorBody",
    "answer",
    "error_responses",
    "form_request",
    "install_openapi",
    "json_request",
    "oauth_responses",
]


class ErrorBody(BaseModel):
    """Every JSON error of keyturn: a stable machine ``error`` code and safe text."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


class OAuthErrorBody(BaseModel):
    """An RFC 6749 section 5.2 error."""

    model_config = ConfigDict(extra="allow")

    error: str
    error_description: str


#: Why each status happens, for the schema's descriptions.
_WHY: Mapping[int, str] = {
    400: "Malformed request (`invalid_request`), or refused input.",
    401: "No valid credential (`not_authenticated`, `invalid_token`), or wrong password.",
    403: "Cross-site or CSRF-less cookie request (`csrf_failed`), or not allowed.",
    404: "No such resource of the caller (`not_found`).",
    409: "The e-mail address is taken (`email_taken`).",
    413: "The body is larger than `max_body_bytes` (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    429: "Throttled (`too_many_attempts`); `Retry-After` says when to retry.",
    431: "The request headers are too large (`headers_too_large`).",
    503: "A store keyturn needs is unreachable (`store_unavailable`).",
}

#: Answers the middleware may give on any route, before the route runs.
_EVERYWHERE = (413, 431, 503)

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until a new attempt may succeed.",
        "schema": {"type": "string"},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750).",
        "schema": {"type": "string"},
    }
}


def _error(status: int, model: type[BaseModel], why: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": model, "description": why}
    if status == 401:
        answer["headers"] = _WWW_AUTHENTICATE
    elif status == 429:
        answer["headers"] = _RETRY_AFTER
    return answer


def _successes(success: Mapping[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {int(key.lstrip("_")): answer for key, answer in success.items()}


def error_responses(*statuses: int, **success: Any) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers errors as :class:`ErrorBody`:
    ``statuses`` and the middleware's 413, 431 and 503; ``success`` maps a
    status (as ``_200=...``) to its own answer, listed first."""
    answers = _successes(success)
    for status in sorted({*statuses, *_EVERYWHERE}):
        answers[status] = _error(status, ErrorBody, _WHY[status])
    return answers


def oauth_responses(*statuses: int, **success: Any) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for an ``/oauth/*`` route: RFC 6749 error bodies for its
    own ``statuses``, the middleware's 413 and 431 as :class:`ErrorBody`, and
    503 as either (the route's store, or the middleware's while it resolved a
    cookie the caller sent along)."""
    answers = _successes(success)
    for status in sorted({*statuses, 413, 431}):
        model = ErrorBody if status in (413, 431) else OAuthErrorBody
        answers[status] = _error(status, model, _WHY[status])
    either = [{"$ref": f"#/components/schemas/{m.__name__}"} for m in (OAuthErrorBody, ErrorBody)]
    answers[503] = {
        "description": _WHY[503],
        "content": {"application/json": {"schema": {"anyOf": either}}},
    }
    if 401 in answers:  # invalid_client: the Basic challenge
        answers[401] = {
            "model": OAuthErrorBody,
            "description": "Client authentication failed (`invalid_client`).",
            "headers": {
                "WWW-Authenticate": {
                    "description": "The Basic challenge.",
                    "schema": {"type": "string"},
                }
            },
        }
    return answers


def json_request(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra=`` for a route reading ``model`` from a JSON body."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def form_request(
    properties: Mapping[str, Mapping[str, Any]], *, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``openapi_extra=`` for an ``/oauth/*`` route reading an urlencoded form.

    Every field is a string. An empty one counts as absent (RFC 6749 section
    3.1): a required field is therefore non-empty, and an optional one with an
    ``enum`` may also be empty.
    """
    fields: dict[str, dict[str, Any]] = {}
    for name, schema in properties.items():
        field: dict[str, Any] = {"type": "string", **schema}
        if name in required:
            field["minLength"] = 1
        elif "enum" in field:
            field["enum"] = [*field["enum"], ""]
        fields[name] = field
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": fields, "required": list(required)}
                }
            },
        }
    }


#: ``openapi_extra`` security of a route taking a session cookie or a bearer token.
BEARER_OR_SESSION: dict[str, Any] = {"security": [{"session": []}, {"bearer": []}]}

#: The security schemes those names refer to (added by :func:`add_security_schemes`).
SECURITY_SCHEMES: dict[str, Any] = {
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-keyturn_session",
        "description": "The session cookie; unsafe methods also need `X-CSRF-Token`.",
    },
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


def add_security_schemes(schema: dict[str, Any]) -> dict[str, Any]:
    """Add :data:`SECURITY_SCHEMES` to a generated OpenAPI document."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    return schema


def answer(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A success answer: ``description``, and a JSON body of ``schema`` if any."""
    documented: dict[str, Any] = {"description": description}
    if schema is not None:
        documented["content"] = {"application/json": {"schema": dict(schema)}}
    return documented


def _object(
    required: Mapping[str, Any], optional: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_INTEGER = {"type": "integer"}

WHOAMI = _object(
    {
        "sub": _STRING,
        "email": _STRING,
        "email_verified": {"type": "boolean"},
        "roles": {"type": "array", "items": _STRING},
        "via": {"enum": ["session", "token"]},
        "session_id": _NULLABLE_STRING,
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
    }
)
REGISTERED = _object({"id": _STRING, "email": _STRING})
SIGNED_IN = _object(
    {
        "user": _object(
            {"id": _STRING, "email": _STRING, "roles": {"type": "array", "items": _STRING}}
        ),
        "csrf_token": _STRING,
    }
)
SIGN_INS = {
    "type": "array",
    "items": _object(
        {
            "id": _STRING,
            "kind": {"enum": ["browser", "token"]},
            "created_at": _TIME,
            "last_seen_at": _TIME,
            "expires_at": _TIME,
            "ip": _NULLABLE_STRING,
            "user_agent": _NULLABLE_STRING,
            "current": {"type": "boolean"},
        }
    ),
}
ACCESS_TOKEN = _object(
    {"access_token": _STRING, "token_type": {"enum": ["Bearer"]}, "expires_in": _INTEGER},
    {"refresh_token": _STRING, "scope": _STRING, "refresh_csrf": _STRING},
)
INTROSPECTION = _object({"active": {"type": "boolean"}})


def install_openapi(app: FastAPI, prefix: str, paths: Collection[str], keyturn: Keyturn) -> None:
    """Make ``app``'s ``/openapi.json`` describe keyturn's routes (at ``paths``,
    under ``prefix``) truthfully, for this ``keyturn``'s settings: the security
    schemes they name are added; FastAPI's automatic 422 is dropped from them
    (keyturn answers a validation error with 400); new passwords get the
    policy's length bounds and registration an e-mail ``format``; and without
    ``--refresh-cookie`` the form field of that name may not be ``true``."""
    generate = app.openapi
    ours = frozenset(paths)
    settings, policy = keyturn.settings, keyturn.policy
    password_bounds = {"minLength": policy.min_length, "maxLength": policy.max_length}
    constrained: dict[tuple[str, str], dict[str, Any]] = {
        (prefix + "/auth/register", "password"): password_bounds,
        (prefix + "/auth/register", "email"): {"format": "email"},
        (prefix + "/auth/password", "new_password"): password_bounds,
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # a fresh copy: editing it changes no route
            add_security_schemes(schema)
            for path, operations in schema.get("paths", {}).items():
                if path not in ours:
                    continue
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
                    for (where, name), bounds in constrained.items():
                        if where == path:
                            _body_field(operation, name).update(bounds)
                    field = _body_field(operation, REFRESH_COOKIE_FIELD)
                    if "enum" in field and not settings.refresh_cookie:
                        field["enum"] = [value for value in field["enum"] if value != "true"]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _body_field(operation: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema of body field ``name`` (a throw-away dict when there is none)."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        field = media.get("schema", {}).get("properties", {}).get(name)
        if isinstance(field, dict):
            return field
    return {}
