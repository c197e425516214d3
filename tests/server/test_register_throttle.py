"""Registration is throttled per client address and in all, and a duplicate
costs no argon2 hash (#10 item 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import httpx
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE
from tests.server.test_pages import Form, form_token

from keyturn.accounts.passwords import PasswordHasher
from keyturn.runtime import Keyturn
from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"


class SpyHasher(PasswordHasher):
    """A cheap hasher that records each argon2 hash it is asked for."""

    def __init__(self) -> None:
        super().__init__(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
        self.hashes = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return await super().hash(password)

    async def verify_dummy(self, password: str) -> NoReturn:
        await super().verify_dummy(password)


def settings(**overrides: object) -> Settings:
    options: dict[str, object] = {
        "database_url": "sqlite+aiosqlite:///:memory:",
        "trusted_proxies": ["127.0.0.1"],
    }
    options.update(overrides)
    return Settings(**options)  # type: ignore[arg-type]


def from_client(address: str) -> dict[str, str]:
    """Headers making the (trusted) test proxy forward a request from ``address``."""
    return {"X-Forwarded-For": address}


async def register(
    client: httpx.AsyncClient, email: str, client_address: str = "198.51.100.1"
) -> httpx.Response:
    return await client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD},
        headers=from_client(client_address),
    )


async def test_json_registration_is_throttled_per_client(make_client: MakeClient) -> None:
    """#10 item 3: past --register-max-per-client attempts (whatever they answered),
    /auth/register is 429 too_many_attempts with Retry-After; another client still registers."""
    async with make_client(settings(register_max_per_client=3), base_url=BASE) as client:
        assert (await register(client, "a@example.com")).status_code == 201
        assert (await register(client, "a@example.com")).status_code == 409
        assert (await register(client, "not an address")).status_code == 400
        response = await register(client, "b@example.com")
        assert response.status_code == 429
        assert response.json()["error"] == "too_many_attempts"
        assert 0 < int(response.headers["retry-after"]) <= 3600
        assert (await register(client, "b@example.com", "198.51.100.2")).status_code == 201


async def test_json_registration_has_a_global_cap(make_client: MakeClient) -> None:
    """#10 item 3: --register-max-global bounds registrations from all clients together."""
    async with make_client(settings(register_max_global=3), base_url=BASE) as client:
        for number in range(3):
            response = await register(client, f"u{number}@example.com", f"198.51.100.{number}")
            assert response.status_code == 201
        response = await register(client, "late@example.com", "203.0.113.9")
        assert response.status_code == 429
        assert response.json()["error"] == "too_many_attempts"
        assert int(response.headers["retry-after"]) > 0


async def test_a_throttled_client_does_not_use_up_the_global_count(
    make_client: MakeClient,
) -> None:
    """#10 item 3: refused attempts of a client over its own limit leave everyone else's budget."""
    tight = settings(register_max_per_client=1, register_max_global=3)
    async with make_client(tight, base_url=BASE) as client:
        assert (await register(client, "a@example.com")).status_code == 201
        for _ in range(5):
            assert (await register(client, "x@example.com")).status_code == 429
        for number in (2, 3):
            response = await register(client, f"u{number}@example.com", f"198.51.100.{number}")
            assert response.status_code == 201


async def test_duplicate_json_registration_spends_no_hash(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn]
) -> None:
    """#10 item 3: a taken address is 409 email_taken without argon2 running."""
    spy = SpyHasher()
    chosen = settings()
    async with make_client(chosen, make_keyturn(chosen, hasher=spy), base_url=BASE) as client:
        assert (await register(client, "a@example.com")).status_code == 201
        assert spy.hashes == 1
        response = await register(client, "A@EXAMPLE.COM")
        assert response.status_code == 409 and response.json()["error"] == "email_taken"
        assert spy.hashes == 1


async def submit_register(
    client: httpx.AsyncClient, email: str, client_address: str = "198.51.100.1"
) -> httpx.Response:
    token = await form_token(client, "/register")
    return await client.post(
        "/register",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        headers=from_client(client_address),
    )


async def test_register_page_is_throttled_per_client(make_client: MakeClient) -> None:
    """#10 item 3: past the limit POST /register is a 429 form with Retry-After, and no account."""
    async with make_client(settings(register_max_per_client=2), base_url=BASE) as client:
        assert (await submit_register(client, "a@example.com")).status_code == 303
        client.cookies.clear()
        assert (await submit_register(client, "a@example.com")).status_code == 409
        response = await submit_register(client, "b@example.com")
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert "Too many registrations" in response.text
        assert Form(response.text).value("csrf_token")  # the form again, ready to retry
        login = await client.post(
            "/auth/login", json={"email": "b@example.com", "password": PASSWORD}
        )
        assert login.status_code == 401


async def test_duplicate_page_registration_spends_no_hash(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn]
) -> None:
    """#10 item 3: POST /register with a taken address is 409 without argon2 running."""
    spy = SpyHasher()
    chosen = settings()
    async with make_client(chosen, make_keyturn(chosen, hasher=spy), base_url=BASE) as client:
        assert (await register(client, "a@example.com")).status_code == 201
        response = await submit_register(client, "a@example.com")
        assert response.status_code == 409
        assert spy.hashes == 1


def test_registration_limits_have_documented_defaults() -> None:
    """#10 item 3: 10 attempts per client and 1000 in all per hour, out of the box."""
    defaults = Settings()
    assert defaults.register_max_per_client == 10
    assert defaults.register_max_global == 1000
    assert defaults.register_window == 3600
