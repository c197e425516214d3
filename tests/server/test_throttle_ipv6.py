"""Behind a trusted proxy, clients of one IPv6 /64 share the per-client sign-in
limit (#10 item 7)."""

from __future__ import annotations

import httpx
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE

from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"


async def login_from(client: httpx.AsyncClient, email: str, address: str) -> httpx.Response:
    return await client.post(
        "/auth/login",
        json={"email": email, "password": "wrong password!"},
        headers={"X-Forwarded-For": address},
    )


async def test_addresses_of_one_64_share_the_client_limit(make_client: MakeClient) -> None:
    """#10 item 7: failures forwarded from many addresses of one /64 count as one client:
    past --login-max-client-failures the next address of that /64 is 429, another /64 is not."""
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        trusted_proxies=["127.0.0.1"],
        login_max_client_failures=3,
    )
    async with make_client(settings, base_url=BASE) as client:
        for number in range(3):
            address = f"2001:db8:aa:bb::{number + 1:x}"
            response = await login_from(client, f"u{number}@example.com", address)
            assert response.status_code == 401
        throttled = await login_from(client, "fresh@example.com", "2001:db8:aa:bb:1:2:3:4")
        assert throttled.status_code == 429
        assert throttled.json()["error"] == "too_many_attempts"
        neighbour = await login_from(client, "fresh@example.com", "2001:db8:aa:bc::1")
        assert neighbour.status_code == 401
