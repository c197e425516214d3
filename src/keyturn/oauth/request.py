"""Parse and validate an authorization request (``GET /oauth/authorize``).

(Over 300 lines: one parser, every rule of an authorization request in the
order the RFCs check them.)

Input is the query as ``(name, value)`` pairs (so repeats are visible; a plain
``Mapping[str, str]`` is accepted too) and the client record, looked up through
a small callable. Output is an :class:`AuthorizationRequest`, or one of two
error families from :mod:`keyturn.errors` (RFC 6749 section 4.1.2.1):

* :class:`~keyturn.errors.UnsafeAuthorizationRequest`: the client or the
  redirect URI cannot be trusted (unknown client; missing, repeated or
  unregistered ``redirect_uri``; repeated ``client_id``). Never redirect:
  show keyturn's own error page.
* :class:`~keyturn.errors.RedirectedAuthorizationError`: anything else, with
  ``redirect_uri`` and ``state`` set, to hand to
  :func:`keyturn.oauth.response.error_redirect`.

Rules: a recognized parameter sent twice is ``invalid_request`` (RFC 6749
section 3.1); an empty value counts as absent; unknown parameters are ignored.
PKCE ``S256`` is required, ``prompt=none`` stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keyturn.errors import (
    AuthorizationInvalidRequest,
    AuthorizationInvalidScope,
    InvalidRequest,
    RedirectedAuthorizationError,
    UnauthorizedClient,
    UnknownAuthorizationClient,
    UnregisteredRedirectUri,
    UnsafeAuthorizationRequest,
    UnsupportedResponseType,
)
from keyturn.oauth.pkce import METHOD, check_challenge
from keyturn.oauth.redirects import match_redirect_uri

__all__ = [
    "PROMPTS",
    "AuthorizationClient",
    "AuthorizationRequest",
    "ClientLookup",
    "Params",
    "collect_params",
    "parse_authorization_request",
    "read_client_id",
    "validate_authorization_request",
]

#: ``prompt`` values keyturn understands (OIDC Core section 3.1.2.1).
PROMPTS = frozenset({"none", "login", "consent"})
#: What a request may carry; a repeat of any of these is ``invalid_request``.
_KNOWN = frozenset(
    {
        "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
        "code_challenge_method", "nonce", "prompt", "max_age", "login_hint", "request",
        "request_uri", "response_mode",
    }
)  # fmt: skip
_VSCHAR = re.compile(r"[\x20-\x7e]+")  # RFC 6749 Appendix A (state, nonce)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 section 3.3
_MAX_AGE = re.compile(r"[0-9]{1,10}")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")
_MAX_STATE = 2048
_MAX_NONCE = 512
_MAX_SCOPE = 1024
_MAX_HINT = 256

#: Query parameters: pairs in order (repeats visible), or a plain mapping.
Params = Mapping[str, str] | Iterable[tuple[str, str]]


class AuthorizationClient(Protocol):
    """What the parser needs to know of a client (the integration's client
    record satisfies this with plain attributes)."""

    @property
    def id(self) -> str: ...

    @property
    def redirect_uris(self) -> Sequence[str]: ...

    @property
    def allowed_scopes(self) -> Collection[str]: ...

    @property
    def grant_types(self) -> Collection[str]: ...


#: Looks a client up by id; None when no client has it.
ClientLookup = Callable[[str], Awaitable[AuthorizationClient | None]]


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request: every value checked and bound."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str
    nonce: str | None = None
    prompt: frozenset[str] = field(default_factory=frozenset)
    max_age: int | None = None
    login_hint: str | None = None

    @property
    def scope(self) -> str:
        """The scopes, space-separated, in request order."""
        return " ".join(self.scopes)

    def to_params(self) -> dict[str, str]:
        """The request as query parameters that validate to the same request
        (for a PAR record, or to come back to ``/oauth/authorize`` after sign-in)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": METHOD,
        }
        optional = {
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "prompt": " ".join(sorted(self.prompt)),
            "max_age": None if self.max_age is None else str(self.max_age),
            "login_hint": self.login_hint,
        }
        params.update({name: value for name, value in optional.items() if value})
        return params


def collect_params(params: Params) -> tuple[dict[str, str], frozenset[str]]:
    """``(first value of each name, names sent more than once)``; empty values
    count as absent (RFC 6749 section 3.1)."""
    pairs = params.items() if isinstance(params, Mapping) else params
    values: dict[str, str] = {}
    seen: set[str] = set()
    repeated: set[str] = set()
    for name, value in pairs:
        if name in seen:
            repeated.add(name)
        seen.add(name)
        if value and name not in values:
            values[name] = value
    return values, frozenset(repeated)


def read_client_id(params: Params) -> str:
    """The ``client_id`` to look up.

    Raises:
        UnsafeAuthorizationRequest: it is missing, repeated or malformed.
    """
    values, repeated = collect_params(params)
    return _client_id(values, repeated)


async def parse_authorization_request(params: Params, lookup: ClientLookup) -> AuthorizationRequest:
    """Validate ``params`` against the client ``lookup`` finds.

    Raises:
        UnsafeAuthorizationRequest: do not redirect (see the module docstring).
        RedirectedAuthorizationError: redirect the error to the client.
        StoreUnavailable: the lookup cannot reach its store.
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    return validate_authorization_request(pairs, await lookup(read_client_id(pairs)))


def validate_authorization_request(
    params: Params, client: AuthorizationClient | None
) -> AuthorizationRequest:
    """Validate ``params`` for ``client`` (None: ``client_id`` matched none).

    Raises:
        UnsafeAuthorizationRequest: do not redirect (see the module docstring).
        RedirectedAuthorizationError: redirect the error to the client.
    """
    values, repeated = collect_params(params)
    client_id = _client_id(values, repeated)
    if client is None or client.id != client_id:
        raise UnknownAuthorizationClient()
    if "redirect_uri" in repeated:
        raise UnsafeAuthorizationRequest("redirect_uri is repeated")
    requested = values.get("redirect_uri")
    if requested is None:
        raise UnsafeAuthorizationRequest("redirect_uri is required")
    redirect_uri = match_redirect_uri(requested, client.redirect_uris)
    if redirect_uri is None:
        raise UnregisteredRedirectUri()
    state = _state(values, repeated)
    try:
        return _validate_rest(values, repeated, client, redirect_uri, state)
    except RedirectedAuthorizationError as exc:
        exc.redirect_uri, exc.state = redirect_uri, state
        raise
    except InvalidRequest as exc:  # from a helper (PKCE): report it by redirect
        raise AuthorizationInvalidRequest(
            exc.detail, redirect_uri=redirect_uri, state=state
        ) from None


def _client_id(values: Mapping[str, str], repeated: Collection[str]) -> str:
    if "client_id" in repeated:
        raise UnsafeAuthorizationRequest("client_id is repeated")
    client_id = values.get("client_id")
    if client_id is None:
        raise UnsafeAuthorizationRequest("client_id is required")
    if _CLIENT_ID.fullmatch(client_id) is None:
        raise UnknownAuthorizationClient()
    return client_id


def _state(values: Mapping[str, str], repeated: Collection[str]) -> str | None:
    """The state to echo back: None if absent, repeated or malformed (an
    ambiguous or invalid value is never reflected)."""
    state = values.get("state")
    if state is None or "state" in repeated:
        return None
    if len(state) > _MAX_STATE or _VSCHAR.fullmatch(state) is None:
        return None
    return state


def _validate_rest(
    values: Mapping[str, str],
    repeated: frozenset[str],
    client: AuthorizationClient,
    redirect_uri: str,
    state: str | None,
) -> AuthorizationRequest:
    if repeated & _KNOWN:
        names = ", ".join(sorted(repeated & _KNOWN))
        raise AuthorizationInvalidRequest(f"parameters sent more than once: {names}")
    if "state" in values and state is None:
        raise AuthorizationInvalidRequest("state must be at most 2048 printable ASCII characters")
    response_type = values.get("response_type")
    if response_type is None:
        raise AuthorizationInvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType()
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient()
    if "request" in values:
        raise AuthorizationInvalidRequest("request objects are not supported; use PAR")
    if "request_uri" in values:
        raise AuthorizationInvalidRequest("request_uri must come from POST /oauth/par")
    if values.get("response_mode", "query") != "query":
        raise AuthorizationInvalidRequest("only response_mode=query is supported")
    challenge = check_challenge(values.get("code_challenge"), values.get("code_challenge_method"))
    return AuthorizationRequest(
        client_id=client.id,
        redirect_uri=redirect_uri,
        scopes=_scopes(values.get("scope"), client.allowed_scopes),
        state=state,
        code_challenge=challenge,
        nonce=_bounded(values.get("nonce"), "nonce", _MAX_NONCE),
        prompt=_prompt(values.get("prompt")),
        max_age=_max_age(values.get("max_age")),
        login_hint=_login_hint(values.get("login_hint")),
    )


def _scopes(scope: str | None, allowed: Collection[str]) -> tuple[str, ...]:
    if scope is None:
        return ()
    if len(scope) > _MAX_SCOPE:
        raise AuthorizationInvalidScope(f"scope is at most {_MAX_SCOPE} characters")
    values: dict[str, None] = {}
    for value in scope.split(" "):
        if not value:
            continue
        if _SCOPE_TOKEN.fullmatch(value) is None:
            raise AuthorizationInvalidScope("scope has characters RFC 6749 section 3.3 forbids")
        if value not in allowed:
            raise AuthorizationInvalidScope(f"the client may not ask for scope {value}")
        values[value] = None
    return tuple(values)


def _bounded(value: str | None, name: str, limit: int) -> str | None:
    if value is not None and (len(value) > limit or _VSCHAR.fullmatch(value) is None):
        raise AuthorizationInvalidRequest(f"{name} must be at most {limit} printable characters")
    return value


def _prompt(prompt: str | None) -> frozenset[str]:
    if prompt is None:
        return frozenset()
    values = frozenset(value for value in prompt.split(" ") if value)
    unknown = values - PROMPTS
    if unknown:
        raise AuthorizationInvalidRequest("prompt may be none, login or consent")
    if "none" in values and len(values) > 1:
        raise AuthorizationInvalidRequest("prompt=none cannot be combined with other values")
    return values


def _max_age(max_age: str | None) -> int | None:
    if max_age is None:
        return None
    if _MAX_AGE.fullmatch(max_age) is None:
        raise AuthorizationInvalidRequest("max_age must be a whole number of seconds")
    return int(max_age)


def _login_hint(hint: str | None) -> str | None:
    if hint is not None and (len(hint) > _MAX_HINT or not hint.isprintable()):
        raise AuthorizationInvalidRequest(
            f"login_hint must be at most {_MAX_HINT} printable characters"
        )
    return hint
