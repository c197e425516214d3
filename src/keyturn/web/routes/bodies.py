"""The bodies of the JSON auth API, and how they are read.

Every ``/auth/*`` body is JSON and only JSON: :func:`json_body` refuses any other
``Content-Type`` with :class:`~keyturn.errors.UnsupportedMediaType` (415) before
reading a byte, so a cross-site HTML form or a "simple" ``fetch``
(``text/plain``) never reaches an endpoint (SEC-29). Fields are strict (a number
is not a string) and unknown ones are ignored.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from keyturn.errors import UnsupportedMediaType

__all__ = [
    "Credentials",
    "LoginBody",
    "PasswordChangeBody",
    "ReauthenticateBody",
    "json_body",
]

_Body = TypeVar("_Body", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Credentials(_Strict):
    """``POST /auth/register`` (and the base of sign-in)."""

    email: StrictStr
    password: StrictStr


class LoginBody(Credentials):
    """``POST /auth/login``."""

    remember: StrictBool = False


class ReauthenticateBody(_Strict):
    """``POST /auth/reauthenticate``."""

    password: StrictStr


class PasswordChangeBody(_Strict):
    """``POST /auth/password``."""

    current_password: StrictStr
    new_password: StrictStr


async def json_body(request: Request, model: type[_Body]) -> _Body:
    """Parse the body as ``model``, accepting ``application/json`` only.

    Raises:
        UnsupportedMediaType: the body is not declared as JSON (415).
        pydantic.ValidationError: malformed JSON or fields (400 invalid_request).
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("The request body must be application/json.")
    return model.model_validate_json(await request.body())
