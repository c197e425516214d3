"""Who is calling: the one answer every credential resolves to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Via = Literal["session", "token"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, whether it came with a session cookie or a
    bearer token.

    ``session_id`` is the public handle of the sign-in (browser session or
    refresh family) the credential belongs to: the ``id`` shown by
    ``GET /auth/sessions``, never the secret session ID itself.

    ``auth_time`` is when the user last proved who they are (POSIX seconds):
    the sign-in or re-authentication of a session, the sign-in behind a
    token (its ``auth_time`` claim). None when unknown (a token issued
    without the claim), which counts as not fresh.

    ``client_id`` is set when the caller is an OAuth client acting for itself
    (a ``client_credentials`` token): ``subject`` is then the client's id,
    there is no user (``email`` is empty) and no sign-in (``session_id`` is
    empty).
    ``amr`` lists the authentication methods of that sign-in; ``"mfa"`` in it
    is what ``require(mfa=True)`` asks for.
    """

    subject: str
    email: str
    roles: tuple[str, ...]
    via: Via
    session_id: str
    expires_at: float
    scopes: tuple[str, ...] = ()
    auth_time: float | None = None
    client_id: str | None = None
    #: How the user signed in (RFC 8176 ``amr``: ``pwd``, ``otp``, ``hwk``,
    #: ``swk``, ``mfa``); empty when unknown (a token issued without the claim).
    amr: tuple[str, ...] = ()
