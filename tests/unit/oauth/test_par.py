"""Pushed authorization requests (RFC 9126): request_uri format, expiry,
client binding and single use."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.oauth.support import FakeClient, good_params

from keyturn.clock import FrozenClock
from keyturn.errors import (
    AuthorizationInvalidScope,
    ConfigurationError,
    InvalidRequest,
    InvalidRequestUri,
    UnregisteredRedirectUri,
    UnsafeAuthorizationRequest,
)
from keyturn.oauth.memory import MemoryPushedRequestStore
from keyturn.oauth.par import REQUEST_URI_PREFIX, PushedRequests, hash_request_uri
from keyturn.oauth.request import validate_authorization_request
from keyturn.oauth.store import PushedRequest


def make_par(clock: FrozenClock, ttl: int = 60) -> tuple[PushedRequests, MemoryPushedRequestStore]:
    """PushedRequests over a memory store."""
    store = MemoryPushedRequestStore()
    return PushedRequests(store, clock, ttl=ttl), store


async def test_push_returns_a_urn_request_uri_and_expires_in(
    clock: FrozenClock, client: FakeClient
) -> None:
    """201 body: request_uri = urn:ietf:params:oauth:request_uri:<256 bits>, expires_in 60."""
    par, store = make_par(clock)
    pushed = await par.push(client, good_params())
    assert pushed.request_uri.startswith(REQUEST_URI_PREFIX)
    assert len(pushed.request_uri) == len(REQUEST_URI_PREFIX) + 43
    assert pushed.to_dict() == {"request_uri": pushed.request_uri, "expires_in": 60}
    assert await store.get(pushed.request_uri) is None  # stored by hash only
    assert await store.get(hash_request_uri(pushed.request_uri)) is not None


async def test_loaded_params_validate_to_the_pushed_request(
    clock: FrozenClock, client: FakeClient
) -> None:
    """What /authorize loads validates to exactly what was pushed."""
    par, _ = make_par(clock)
    params = good_params(nonce="n", prompt="consent")
    pushed = await par.push(client, params)
    loaded = await par.load(pushed.request_uri, "spa")
    assert validate_authorization_request(loaded, client) == validate_authorization_request(
        params, client
    )


async def test_push_without_client_id_uses_the_authenticated_client(
    clock: FrozenClock, client: FakeClient
) -> None:
    """The authenticated client is the client_id when the body omits it."""
    par, _ = make_par(clock)
    params = good_params()
    del params["client_id"]
    pushed = await par.push(client, params)
    assert (await par.load(pushed.request_uri, "spa"))["client_id"] == "spa"


async def test_request_uri_expires_after_60_seconds(clock: FrozenClock, client: FakeClient) -> None:
    """Usable at 59 s, invalid_request_uri at 60 s."""
    par, _ = make_par(clock)
    pushed = await par.push(client, good_params())
    clock.advance(59)
    await par.load(pushed.request_uri, "spa")
    clock.advance(1)
    with pytest.raises(InvalidRequestUri) as caught:
        await par.load(pushed.request_uri, "spa")
    assert caught.value.code == "invalid_request_uri"


async def test_request_uri_is_bound_to_the_pushing_client(
    clock: FrozenClock, client: FakeClient
) -> None:
    """Another client_id at /authorize cannot use the request_uri."""
    par, _ = make_par(clock)
    pushed = await par.push(client, good_params())
    with pytest.raises(InvalidRequestUri):
        await par.load(pushed.request_uri, "other")
    with pytest.raises(InvalidRequestUri):
        await par.consume(pushed.request_uri, "other")


async def test_request_uri_is_single_use(clock: FrozenClock, client: FakeClient) -> None:
    """Reloads before the response are fine; after consume nothing works."""
    par, _ = make_par(clock)
    pushed = await par.push(client, good_params())
    await par.load(pushed.request_uri, "spa")
    await par.load(pushed.request_uri, "spa")
    await par.consume(pushed.request_uri, "spa")
    with pytest.raises(InvalidRequestUri):
        await par.load(pushed.request_uri, "spa")
    with pytest.raises(InvalidRequestUri):
        await par.consume(pushed.request_uri, "spa")


class InterleavingPushedRequestStore(MemoryPushedRequestStore):
    """Yields after every read, so parallel consumes all see an unused request."""

    async def get(self, request_uri_hash: str) -> PushedRequest | None:
        request = await super().get(request_uri_hash)
        await asyncio.sleep(0)  # a yield, not a wait
        return request


async def test_concurrent_consumes_have_one_winner(clock: FrozenClock, client: FakeClient) -> None:
    """Parallel uses of one request_uri: exactly one succeeds, even when all
    read it before any consumes it."""
    par = PushedRequests(InterleavingPushedRequestStore(), clock)
    pushed = await par.push(client, good_params())
    results = await asyncio.gather(
        *(par.consume(pushed.request_uri, "spa") for _ in range(5)), return_exceptions=True
    )
    assert sum(result is None for result in results) == 1


@pytest.mark.parametrize(
    "request_uri",
    ["", "urn:ietf:params:oauth:request_uri:", REQUEST_URI_PREFIX + "A" * 43, "https://x/r"],
)
async def test_unknown_or_malformed_request_uri_is_refused(
    clock: FrozenClock, request_uri: str
) -> None:
    """A request_uri keyturn never issued is invalid_request_uri (no redirect)."""
    par, _ = make_par(clock)
    with pytest.raises(InvalidRequestUri) as caught:
        await par.load(request_uri, "spa")
    assert isinstance(caught.value, UnsafeAuthorizationRequest)


async def test_push_refuses_a_nested_request_uri(clock: FrozenClock, client: FakeClient) -> None:
    """RFC 9126 2.1: a pushed request must not itself carry request_uri."""
    par, _ = make_par(clock)
    with pytest.raises(InvalidRequest, match="request_uri"):
        await par.push(client, good_params(request_uri=REQUEST_URI_PREFIX + "x"))


async def test_push_refuses_another_clients_id(clock: FrozenClock, client: FakeClient) -> None:
    """The body's client_id must be the authenticated client."""
    par, _ = make_par(clock)
    with pytest.raises(InvalidRequest, match="client_id"):
        await par.push(client, good_params(client_id="other"))


async def test_push_validates_like_authorize(clock: FrozenClock, client: FakeClient) -> None:
    """Bad scope or unregistered redirect URI fail at push time, nothing stored."""
    par, store = make_par(clock)
    with pytest.raises(AuthorizationInvalidScope):
        await par.push(client, good_params(scope="admin"))
    with pytest.raises(UnregisteredRedirectUri):
        await par.push(client, good_params(redirect_uri="https://evil.example/cb"))
    assert await store.purge(float("inf")) == 0


@pytest.mark.parametrize("ttl", [0, 601])
def test_par_ttl_out_of_range_is_a_configuration_error(clock: FrozenClock, ttl: int) -> None:
    """The request_uri lifetime stays within RFC 9126's 5-600 s guidance (max 600)."""
    with pytest.raises(ConfigurationError):
        make_par(clock, ttl=ttl)


async def test_purge_deletes_expired_requests(clock: FrozenClock, client: FakeClient) -> None:
    """Expired pushed requests are cleaned up."""
    par, _ = make_par(clock)
    await par.push(client, good_params())
    assert await par.purge() == 0
    clock.advance(61)
    assert await par.purge() == 1
