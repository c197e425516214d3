"""The per-account lockout holds however the address is spelled (#10 item 1).

email-validator maps full-width letters and the ideographic full stop to ASCII,
so ``alice@e`` + U+FF58 (a full-width x) + ``ample.com`` finds the account
``alice@example.com``; the sign-in throttle must count it as the same account
on every sign-in path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from tests.server.test_pages import submit_login
from tests.server.token_support import (
    BASE,
    MakeClient,
    build_app,
    clock,
    password_grant,
)

__all__ = ["build_app", "clock"]

ALICE = "alice@example.com"
PASSWORD = "correct horse battery staple"
WRONG = "wrong password!"
#: Spellings email-validator resolves to ALICE: a full-width x, an ideographic dot.
SPELLINGS = ["alice@e\uff58ample.com", "alice@example\u3002com"]

SignIn = Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]


async def json_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


async def page_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await submit_login(client, email=email, password=password)


async def grant_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await password_grant(client, email, password)


PATHS = {"json": json_login, "page": page_login, "password_grant": grant_login}
#: What a failed (not throttled) attempt answers on each path.
FAILED = {"json": 401, "page": 401, "password_grant": 400}


@pytest.fixture
async def client(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a SQLite app with the account alice@example.com."""
    async with make_client(app=build_app(sqlite_url), base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": ALICE, "password": PASSWORD})
        assert response.status_code == 201
        yield opened


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("path", sorted(PATHS))
async def test_other_spelling_signs_in_to_the_same_account(
    client: httpx.AsyncClient, path: str, spelling: str
) -> None:
    """#10 item 1: each spelling really finds alice's account (the lockout test means something)."""
    response = await PATHS[path](client, spelling, PASSWORD)
    assert response.status_code in (200, 303), response.text


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("path", sorted(PATHS))
async def test_lockout_is_not_bypassed_by_another_spelling(
    client: httpx.AsyncClient, path: str, spelling: str
) -> None:
    """#10 item 1: after 10 failures for alice@example.com the right password typed
    with a full-width letter or an ideographic dot is 429 too, on every sign-in path."""
    sign_in = PATHS[path]
    for _ in range(10):
        assert (await sign_in(client, ALICE, WRONG)).status_code == FAILED[path]
    response = await sign_in(client, spelling, PASSWORD)
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_spellings_share_one_count_of_guesses(client: httpx.AsyncClient, path: str) -> None:
    """#10 item 1: guesses spread over several spellings add up to one account's ten."""
    sign_in = PATHS[path]
    spellings = [ALICE, *SPELLINGS, "ALICE@EXAMPLE.COM"]
    for attempt in range(10):
        response = await sign_in(client, spellings[attempt % len(spellings)], WRONG)
        assert response.status_code == FAILED[path]
    assert (await sign_in(client, ALICE, PASSWORD)).status_code == 429
