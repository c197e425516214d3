"""The authorization endpoint's decisions (``GET|POST /oauth/authorize``), framework-free.

:class:`AuthorizationEndpoint` ties the code-flow cores together in the order
RFC 6749 section 4.1 and OIDC Core section 3.1.2 check them:

1. :meth:`~AuthorizationEndpoint.load`: the request from the query, or from a
   pushed request (``request_uri``, RFC 9126 section 4), validated against the
   client (:func:`keyturn.oauth.request.validate_authorization_request`);
2. :meth:`~AuthorizationEndpoint.decide` on the browser session: sign in first
   (nobody signed in, ``prompt=login``, or a sign-in older than ``max_age``),
   ask for consent (a third-party client whose grant does not cover the
   scopes, or ``prompt=consent``), or issue a code. With ``prompt=none`` a page
   is never shown: ``login_required`` / ``consent_required`` instead;
3. :meth:`~AuthorizationEndpoint.approve` / :meth:`~AuthorizationEndpoint.deny`
   for the consent form's answer.

The HTTP layer turns the outcomes into pages and redirects. A ``prompt=login``
request is satisfied by a sign-in made *after* keyturn sent the browser to the
sign-in page: the way back carries a
:class:`~keyturn.oauth.fresh_login.FreshLoginMarker`, so a reload of the same
URL cannot skip the fresh sign-in, and nothing is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from keyturn.clock import Clock
from keyturn.errors import (
    AccessDenied,
    ConsentRequired,
    InvalidRequestUri,
    LoginRequired,
    RedirectedAuthorizationError,
    UnknownAuthorizationClient,
)
from keyturn.oauth.codes import AuthorizationCodes
from keyturn.oauth.consent import Consents
from keyturn.oauth.flow_client import FlowClient
from keyturn.oauth.par import PushedRequests
from keyturn.oauth.request import (
    AuthorizationRequest,
    Params,
    collect_params,
    read_client_id,
    validate_authorization_request,
)
from keyturn.oauth.response import redirect_for_error, success_redirect

__all__ = [
    "AuthorizationEndpoint",
    "LoadedRequest",
    "NeedsConsent",
    "NeedsLogin",
    "Outcome",
    "Redirect",
    "SignedIn",
]


#: Looks a client up by id; None when no client has it.
FlowClientLookup = Callable[[str], Awaitable[FlowClient | None]]


@dataclass(frozen=True)
class SignedIn:
    """The browser session the request runs on: its user, public handle, and
    when the user last proved who they are."""

    user_id: str
    session_id: str
    auth_time: float
    amr: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedRequest:
    """A validated request, its client, and the ``request_uri`` it came from."""

    request: AuthorizationRequest
    client: FlowClient
    request_uri: str | None = None

    def to_params(self) -> dict[str, str]:
        """Query parameters that load this request again (the way back from
        ``/login``, the consent form's hidden fields)."""
        if self.request_uri is not None:
            return {"client_id": self.client.id, "request_uri": self.request_uri}
        return self.request.to_params()


@dataclass(frozen=True)
class NeedsLogin:
    """Send the browser to sign in, then back to the request."""

    loaded: LoadedRequest
    login_hint: str | None
    #: True for ``prompt=login``: the way back must carry a fresh-login marker.
    fresh: bool


@dataclass(frozen=True)
class NeedsConsent:
    """Show the consent page for ``scopes`` (every requested scope, in order;
    ``new`` are those not granted before)."""

    loaded: LoadedRequest
    scopes: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class Redirect:
    """Send the browser to the client: ``url`` carries the code or the error."""

    url: str


Outcome = NeedsLogin | NeedsConsent | Redirect


class AuthorizationEndpoint:
    """The decisions of ``/oauth/authorize`` (see the module doc).

    Args:
        lookup: finds a client by id.
        codes: issues authorization codes.
        consents: what users allowed third-party clients.
        pushed: PAR requests.
        issuer: the ``iss`` of every authorization response (RFC 9207).
        clock: the time ``max_age`` is measured by.
    """

    def __init__(
        self,
        *,
        lookup: FlowClientLookup,
        codes: AuthorizationCodes,
        consents: Consents,
        pushed: PushedRequests,
        issuer: str,
        clock: Clock,
    ) -> None:
        self.lookup = lookup
        self.codes = codes
        self.consents = consents
        self.pushed = pushed
        self.issuer = issuer
        self.clock = clock

    async def load(self, params: Params) -> LoadedRequest:
        """The validated request behind ``params`` (a query or a form).

        Raises:
            UnsafeAuthorizationRequest: unknown client, bad redirect URI, or an
                unusable ``request_uri``: show an error page, never redirect.
            RedirectedAuthorizationError: any other invalid parameter.
            StoreUnavailable: a store cannot be reached.
        """
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
        values, repeated = collect_params(pairs)
        client_id = read_client_id(pairs)
        client = await self.lookup(client_id)
        if client is None:
            raise UnknownAuthorizationClient()
        if "request_uri" in repeated:
            raise InvalidRequestUri()
        request_uri = values.get("request_uri")
        if request_uri is None:
            return LoadedRequest(validate_authorization_request(pairs, client), client)
        pushed = await self.pushed.load(request_uri, client_id)
        return LoadedRequest(validate_authorization_request(pushed, client), client, request_uri)

    async def decide(
        self, loaded: LoadedRequest, signed_in: SignedIn | None, *, fresh_since: float | None = None
    ) -> Outcome:
        """What to do with a request on this browser session.

        ``fresh_since`` is the time of a genuine fresh-login marker on the
        request (:class:`FreshLoginMarker`), or None.

        Raises:
            LoginRequired: ``prompt=none`` and a sign-in would be needed.
            ConsentRequired: ``prompt=none`` and consent would be needed.
            StoreUnavailable: a store cannot be reached.
        """
        request = loaded.request
        silent = "none" in request.prompt
        if signed_in is None or self._needs_login(request, signed_in, fresh_since):
            if silent:
                raise LoginRequired(redirect_uri=request.redirect_uri, state=request.state)
            return NeedsLogin(loaded, request.login_hint, fresh="login" in request.prompt)
        client = loaded.client
        if not client.first_party:
            new = await self.consents.missing(signed_in.user_id, client.id, request.scopes)
            granted = await self.consents.covered(signed_in.user_id, client.id, request.scopes)
            if "consent" in request.prompt or not granted:
                if silent:
                    raise ConsentRequired(redirect_uri=request.redirect_uri, state=request.state)
                return NeedsConsent(loaded, request.scopes, new)
        return Redirect(await self.issue(loaded, signed_in))

    def _needs_login(
        self, request: AuthorizationRequest, signed_in: SignedIn, fresh_since: float | None
    ) -> bool:
        if "login" in request.prompt and (fresh_since is None or signed_in.auth_time < fresh_since):
            return True
        if request.max_age is not None:
            return self.clock.now() - signed_in.auth_time > request.max_age
        return False

    async def approve(self, loaded: LoadedRequest, signed_in: SignedIn) -> str:
        """The user allowed the request on the consent page: remember it and
        return the redirect with the code.

        Raises:
            InvalidRequestUri: the pushed request was used meanwhile.
            StoreUnavailable: a store cannot be reached.
        """
        request = loaded.request
        await self.consents.grant(signed_in.user_id, loaded.client.id, request.scopes)
        return await self.issue(loaded, signed_in)

    async def deny(self, loaded: LoadedRequest) -> str:
        """The user declined: the ``access_denied`` redirect (the pushed
        request is used up too).

        Raises:
            StoreUnavailable: a store cannot be reached.
        """
        if loaded.request_uri is not None:
            # Used meanwhile: the answer is a denial all the same.
            with contextlib.suppress(InvalidRequestUri):
                await self.pushed.consume(loaded.request_uri, loaded.client.id)
        request = loaded.request
        return self.error_url(AccessDenied(redirect_uri=request.redirect_uri, state=request.state))

    async def issue(self, loaded: LoadedRequest, signed_in: SignedIn) -> str:
        """Issue a code bound to the request and the session; the success redirect.

        Raises:
            InvalidRequestUri: the pushed request was used meanwhile (single use).
            StoreUnavailable: a store cannot be reached.
        """
        request = loaded.request
        if loaded.request_uri is not None:  # use it up first: one code per push
            await self.pushed.consume(loaded.request_uri, loaded.client.id)
        issued = await self.codes.issue(
            client_id=loaded.client.id,
            user_id=signed_in.user_id,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            scopes=request.scopes,
            session_id=signed_in.session_id,
            auth_time=signed_in.auth_time,
            nonce=request.nonce,
            amr=signed_in.amr,
        )
        return success_redirect(
            request.redirect_uri, code=issued.code, state=request.state, issuer=self.issuer
        )

    def error_url(self, error: RedirectedAuthorizationError) -> str:
        """The redirect that reports ``error`` to the client (with ``iss``)."""
        return redirect_for_error(error, issuer=self.issuer)
