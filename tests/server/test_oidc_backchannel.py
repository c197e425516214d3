"""Back-channel logout, black-box (SPEC "OpenID Connect", Back-Channel Logout 1.0):
ending a browser session POSTs a logout token to every client that received an
ID token in it, through the outbox (retried with backoff, audited, once with two
instances), and the session's refresh families end unless offline_access."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import RegisteredClient
from tests.server.logout_receiver import LogoutReceiver, logout_receiver
from tests.server.oidc_support import app, browser, oidc_client, sign_in_app, verified_claims
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    build_app,
    clock,
    keyturn_of,
    login,
    refresh,
)

from keyturn.clock import FrozenClock
from keyturn.oidc.backchannel import LOGOUT_EVENT

__all__ = ["app", "browser", "build_app", "clock"]


async def received(receiver: LogoutReceiver, count: int, *, within: float = 10.0) -> list[str]:
    """The tokens the receiver got, once it has ``count`` (or after ``within`` s)."""
    for _ in range(int(within / 0.05)):
        if len(receiver.tokens) >= count:
            break
        await asyncio.sleep(0.05)
    return list(receiver.tokens)


def audit_events(tmp_path: Path, event: str) -> list[dict[str, Any]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == event]


async def rp_with_receiver(app: FastAPI, receiver: LogoutReceiver) -> RegisteredClient:
    return await oidc_client(app, backchannel=receiver.uri)


@pytest.mark.parametrize("how", ["sign_out", "logout_all", "revoke_handle", "password"])
async def test_ending_the_session_posts_a_logout_token(
    app: FastAPI, browser: httpx.AsyncClient, tmp_path: Path, how: str, make_client: MakeClient
) -> None:
    """However the session ends (sign-out, sign-out everywhere, a revoke by handle,
    a password change in another browser), the RP receives a logout+jwt with iss, aud, iat,
    exp, jti, sub, sid (the ID token's), events and no nonce, verifiable by JWKS."""
    with logout_receiver() as receiver:
        client = await rp_with_receiver(app, receiver)
        tokens = await sign_in_app(browser, client, nonce="n1")
        _, id_claims = await verified_claims(browser, tokens["id_token"])
        if how == "sign_out":
            response = await browser.post("/auth/logout")
        elif how == "logout_all":
            response = await browser.post("/auth/logout-all")
        elif how == "revoke_handle":
            await keyturn_of(app).sessions.revoke_handle(id_claims["sub"], id_claims["sid"])
            response = httpx.Response(204)
        else:
            async with make_client(app=app, base_url=BASE) as other:
                other.headers["X-CSRF-Token"] = await login(other)
                response = await other.post(
                    "/auth/password",
                    json={"current_password": PASSWORD, "new_password": PASSWORD + " again"},
                )
        assert response.status_code == 204, response.text
        [token] = await received(receiver, 1)
    assert receiver.content_types == ["application/x-www-form-urlencoded"]
    header, claims = await verified_claims(browser, token)
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
    assert claims["iss"] == BASE and claims["aud"] == client.id
    assert (claims["sub"], claims["sid"]) == (id_claims["sub"], id_claims["sid"])
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert claims["exp"] > claims["iat"] and claims["jti"]
    assert "nonce" not in claims
    sent = [e for e in audit_events(tmp_path, "backchannel_logout") if e["outcome"] == "sent"]
    assert len(sent) == 1 and sent[0]["client_id"] == client.id


async def test_a_failed_delivery_is_retried_with_backoff(
    app: FastAPI, browser: httpx.AsyncClient, clock: FrozenClock, tmp_path: Path
) -> None:
    """A 503 from the RP is retried after the backoff (not before), then delivered;
    both attempts are audited; the sign-out itself answered at once."""
    with logout_receiver(503) as receiver:
        client = await rp_with_receiver(app, receiver)
        await sign_in_app(browser, client)
        assert (await browser.post("/auth/logout")).status_code == 204
        assert len(await received(receiver, 1)) == 1
        await asyncio.sleep(0.3)
        dispatcher = keyturn_of(app).outbox_dispatcher
        assert await dispatcher.run_once() == 0  # not due yet: the backoff holds it
        clock.advance(30)
        dispatcher.wake()
        assert len(await received(receiver, 2)) == 2
    outcomes = [e["outcome"] for e in audit_events(tmp_path, "backchannel_logout")]
    assert outcomes == ["queued", "failed", "sent"]


async def test_clients_without_an_id_token_in_the_session_are_not_told(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """An app signed in without openid (no ID token) gets no logout token."""
    with logout_receiver() as receiver:
        client = await rp_with_receiver(app, receiver)
        await sign_in_app(browser, client, scope="profile")
        assert (await browser.post("/auth/logout")).status_code == 204
        await asyncio.sleep(0.5)
    assert receiver.tokens == []


async def test_offline_access_outlives_the_session_other_families_do_not(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """Signing out ends the session's refresh families, except one granted
    offline_access, which still refreshes."""
    client = await oidc_client(app, confidential=False)
    online = await sign_in_app(browser, client, scope="openid")
    offline = await sign_in_app(browser, client, scope="openid offline_access")
    rotated = await refresh(browser, online["refresh_token"], client_id=client.id)
    assert rotated.status_code == 200  # the family works while the session lives
    assert (await browser.post("/auth/logout")).status_code == 204
    family_token = rotated.json()["refresh_token"]  # unused: refused only as ended
    assert (await refresh(browser, family_token, client_id=client.id)).status_code == 400
    answer = await refresh(browser, offline["refresh_token"], client_id=client.id)
    assert answer.status_code == 200, answer.text


async def test_two_instances_deliver_a_logout_token_once(
    build_app: Any, sqlite_url: str, make_client: MakeClient
) -> None:
    """Two instances on one database, both running dispatchers: a session ended on
    A reaches the RP exactly once."""
    first, second = build_app(sqlite_url), build_app(sqlite_url)
    with logout_receiver() as receiver:
        async with (
            make_client(app=first, base_url=BASE) as a,
            make_client(app=second, base_url=BASE) as b,
        ):
            await a.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
            a.headers["X-CSRF-Token"] = await login(a)
            client = await rp_with_receiver(first, receiver)
            await sign_in_app(a, client)
            assert (await a.post("/auth/logout")).status_code == 204
            keyturn_of(second).outbox_dispatcher.wake()
            await received(receiver, 1)
            await asyncio.gather(
                keyturn_of(first).outbox_dispatcher.run_once(),
                keyturn_of(second).outbox_dispatcher.run_once(),
            )
            await asyncio.sleep(0.5)
            assert (await b.get("/healthz")).status_code == 200
    assert len(receiver.tokens) == 1
