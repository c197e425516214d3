"""Black-box tests of passkeys over HTTP: registration, passwordless sign-in,
passkey as a second factor, origin checks, the sign counter and removal.

A software authenticator (tests/unit/mfa/softauthn.py) plays the browser: it
signs what ``navigator.credentials`` would, in the ``toJSON()`` shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE
from tests.server.test_mfa import EMAIL, PASSWORD, SESSION, claims_of, login, signed_out
from tests.support import set_cookies
from tests.unit.mfa.softauthn import SoftAuthenticator

from keyturn.clock import FrozenClock
from keyturn.runtime import Keyturn
from keyturn.settings import Settings


@pytest.fixture
def settings() -> Settings:
    """The issuer is the test server: RP ID ``testserver``, origin ``https://testserver``."""
    return Settings(database_url="sqlite+aiosqlite:///:memory:", issuer=BASE)


@pytest.fixture
def keyturn(make_keyturn: Callable[..., Keyturn], settings: Settings) -> Keyturn:
    """The instance under test, on a frozen clock."""
    return make_keyturn(settings, clock=FrozenClock(1_800_000_000.0))


@pytest.fixture
async def client(
    make_client: MakeClient, settings: Settings, keyturn: Keyturn
) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in client."""
    async with make_client(settings, keyturn, base_url=BASE) as opened:
        await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        await login(opened)
        yield opened


async def register(client: httpx.AsyncClient, authenticator: SoftAuthenticator) -> httpx.Response:
    options = (await client.post("/auth/webauthn/register/options")).json()
    made = authenticator.create(options)
    return await client.post("/auth/webauthn/register", json={"credential": made, "name": "Laptop"})


async def test_creation_options_are_the_json_the_browser_parses(client: httpx.AsyncClient) -> None:
    """Registration options name the issuer host as RP ID, carry base64url challenge
    and user id, and prefer a discoverable credential (parseCreationOptionsFromJSON)."""
    options = (await client.post("/auth/webauthn/register/options")).json()
    assert options["rp"]["id"] == "testserver"
    assert isinstance(options["challenge"], str) and "=" not in options["challenge"]
    assert isinstance(options["user"]["id"], str)
    assert options["authenticatorSelection"]["residentKey"] == "preferred"


async def test_register_then_sign_in_without_a_password(client: httpx.AsyncClient) -> None:
    """A registered passkey is listed on /auth/mfa and signs in alone (discoverable,
    user verified): the session's amr is hwk + mfa."""
    authenticator = SoftAuthenticator(origin=BASE)
    added = await register(client, authenticator)
    assert added.status_code == 201, added.text
    listed = (await client.get("/auth/mfa")).json()["passkeys"]
    assert [item["name"] for item in listed] == ["Laptop"] and listed[0]["last_used_at"] is None
    await signed_out(client)
    options = (await client.post("/auth/webauthn/login/options")).json()
    assert "allowCredentials" not in options and options["userVerification"] == "required"
    signed = await client.post(
        "/auth/webauthn/login", json={"credential": authenticator.get(options)}
    )
    assert signed.status_code == 200, signed.text
    assert SESSION in set_cookies(signed)
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    claims = claims_of((await client.post("/auth/token")).json()["access_token"])
    assert claims["amr"] == ["hwk", "mfa"]
    assert (await client.get("/auth/mfa")).json()["passkeys"][0]["last_used_at"] is not None


async def test_passkey_as_second_factor(client: httpx.AsyncClient) -> None:
    """With a passkey, the password step offers webauthn; the assertion for the
    token's options finishes the sign-in with amr pwd + hwk + mfa."""
    authenticator = SoftAuthenticator(origin=BASE, user_verification=False)
    assert (await register(client, authenticator)).status_code == 201
    await signed_out(client)
    pending = (await login(client)).json()
    assert pending["methods"] == ["webauthn"]  # no recovery codes were asked for
    options = (
        await client.post("/auth/login/mfa/options", json={"mfa_token": pending["mfa_token"]})
    ).json()
    assert [c["id"] for c in options["allowCredentials"]]
    finished = await client.post(
        "/auth/login/mfa",
        json={"mfa_token": pending["mfa_token"], "webauthn": authenticator.get(options)},
    )
    assert finished.status_code == 200, finished.text
    client.headers["X-CSRF-Token"] = finished.json()["csrf_token"]
    claims = claims_of((await client.post("/auth/token")).json()["access_token"])
    assert claims["amr"] == ["pwd", "hwk", "mfa"]


async def test_an_assertion_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    """clientDataJSON from a phishing origin, or for another RP ID: 401 webauthn_failed."""
    authenticator = SoftAuthenticator(origin=BASE)
    await register(client, authenticator)
    await signed_out(client)
    for kwargs in ({"origin": "https://evil.example"}, {"rp_id": "evil.example"}):
        options = (await client.post("/auth/webauthn/login/options")).json()
        refused = await client.post(
            "/auth/webauthn/login", json={"credential": authenticator.get(options, **kwargs)}
        )
        assert refused.status_code == 401 and refused.json()["error"] == "webauthn_failed"


async def test_passwordless_needs_user_verification(client: httpx.AsyncClient) -> None:
    """A passkey alone must verify the user (UV): without it the sign-in is refused."""
    authenticator = SoftAuthenticator(origin=BASE, user_verification=False)
    await register(client, authenticator)
    await signed_out(client)
    options = (await client.post("/auth/webauthn/login/options")).json()
    refused = await client.post(
        "/auth/webauthn/login", json={"credential": authenticator.get(options)}
    )
    assert refused.status_code == 401


async def test_a_counter_that_goes_back_is_audited_as_a_clone_warning(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An assertion whose signature counter did not go up still signs in (default)
    but writes a passkey_clone_warning audit event."""
    authenticator = SoftAuthenticator(origin=BASE)
    await register(client, authenticator)
    await signed_out(client)
    options = (await client.post("/auth/webauthn/login/options")).json()
    await client.post(
        "/auth/webauthn/login", json={"credential": authenticator.get(options, sign_count=7)}
    )
    await signed_out(client)
    caplog.clear()
    options = (await client.post("/auth/webauthn/login/options")).json()
    cloned = await client.post(
        "/auth/webauthn/login", json={"credential": authenticator.get(options, sign_count=3)}
    )
    assert cloned.status_code == 200
    assert any("passkey_clone_warning" in record.getMessage() for record in caplog.records)


async def test_a_challenge_is_single_use(client: httpx.AsyncClient) -> None:
    """Replaying a successful assertion (same challenge) fails."""
    authenticator = SoftAuthenticator(origin=BASE)
    await register(client, authenticator)
    await signed_out(client)
    options = (await client.post("/auth/webauthn/login/options")).json()
    assertion = authenticator.get(options)
    assert (
        await client.post("/auth/webauthn/login", json={"credential": assertion})
    ).status_code == 200
    await signed_out(client)
    replay = await client.post("/auth/webauthn/login", json={"credential": assertion})
    assert replay.status_code == 401


async def test_removing_a_passkey(client: httpx.AsyncClient) -> None:
    """DELETE /auth/webauthn/credentials/{id} removes it (404 for another id), and
    the removed passkey no longer signs in."""
    authenticator = SoftAuthenticator(origin=BASE)
    await register(client, authenticator)
    passkey = (await client.get("/auth/mfa")).json()["passkeys"][0]["id"]
    assert (await client.delete("/auth/webauthn/credentials/AAAA")).status_code == 404
    assert (await client.delete(f"/auth/webauthn/credentials/{passkey}")).status_code == 204
    assert (await client.get("/auth/mfa")).json()["passkeys"] == []
    await signed_out(client)
    options = (await client.post("/auth/webauthn/login/options")).json()
    gone = await client.post(
        "/auth/webauthn/login", json={"credential": authenticator.get(options)}
    )
    assert gone.status_code == 401


async def test_garbage_credentials_are_a_4xx(client: httpx.AsyncClient) -> None:
    """Malformed registration and assertion bodies get 400/401, never a 500."""
    for path in ("/auth/webauthn/register", "/auth/webauthn/login"):
        for body in ({"credential": {}}, {"credential": {"id": 1, "response": "x"}}, {}):
            answer = await client.post(path, json=body)
            assert 400 <= answer.status_code < 500, (path, body, answer.text)
