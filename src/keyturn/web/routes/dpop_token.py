"""DPoP at ``/oauth/token`` (RFC 9449 section 5): the request's proof, checked once.

:func:`dpop_binding` verifies the ``DPoP`` header of a token request (method
``POST``, the public token URL, no ``ath``) and says how the grants bind what they
issue: the access token always, the refresh family only for a public client
(or keyturn's own first-party use without a client). Without a proof, public
clients are refused when ``--require-dpop`` is on; confidential clients may
always choose. Errors are :class:`~keyturn.errors.InvalidDpopProof` and
:class:`~keyturn.errors.UseDpopNonce`, rendered as 400 by
:func:`keyturn.web.errors.oauth_error_response`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from keyturn.errors import InvalidDpopProof
from keyturn.tokens.dpop_binding import DpopBinding
from keyturn.tokens.dpop_setup import public_origin, request_url
from keyturn.web.dependencies import get_keyturn

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

__all__ = ["dpop_binding"]


async def dpop_binding(
    request: Request, client_id: str | None
) -> tuple[DpopBinding | None, str | None]:
    """The binding for the grants (None: a bearer token) and the fresh nonce to
    send back in ``DPoP-Nonce`` (None: nothing to send).

    Raises:
        InvalidDpopProof: a bad proof; or none from a public client under
            ``--require-dpop``.
        UseDpopNonce: ``--dpop-nonce`` and the proof lacks the current nonce.
        StoreUnavailable: the replay cache or the client store cannot answer.
    """
    keyturn: Keyturn = get_keyturn(request)
    values = request.headers.getlist("dpop")
    if not values and not keyturn.settings.require_dpop:
        return None, None
    public = await _is_public(keyturn, client_id)
    if not values:
        if public:
            raise InvalidDpopProof("required")
        return None, None
    url = request_url(
        public_origin(keyturn.settings), request.scope.get("raw_path"), request.url.path
    )
    proof = await keyturn.dpop.verify(values, method=request.method, url=url)
    return DpopBinding(proof.jkt, bind_refresh=public), proof.fresh_nonce


async def _is_public(keyturn: Keyturn, client_id: str | None) -> bool:
    """Whether the caller is a public client (no credentials of its own)."""
    if client_id is None:
        return True
    record = await keyturn.clients.get(client_id)
    return record is None or not record.confidential
