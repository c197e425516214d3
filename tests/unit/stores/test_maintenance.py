"""Periodic sweeping of expired sessions and throttle rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keyturn.accounts.passwords import PasswordHasher
from keyturn.clock import FrozenClock
from keyturn.errors import StoreUnavailable
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.maintenance import sweep_forever, sweep_once

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def keyturn(tmp_path: Path, fast_hasher: PasswordHasher) -> Keyturn:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    runtime = Keyturn(settings, clock=FrozenClock(), hasher=fast_hasher)
    await runtime.start()
    return runtime


async def test_sweep_removes_expired_sessions_and_keeps_live_ones(keyturn: Keyturn) -> None:
    """An idle-expired session row is deleted by the sweep; a fresh one stays."""
    clock = keyturn.clock
    assert isinstance(clock, FrozenClock)
    await keyturn.accounts.register("a@example.com", PASSWORD)
    await keyturn.auth.sign_in("a@example.com", PASSWORD, ip="192.0.2.1", user_agent=None)
    clock.advance(keyturn.settings.session_idle_timeout + 1)
    _, fresh = await keyturn.auth.sign_in(
        "a@example.com", PASSWORD, ip="192.0.2.1", user_agent=None
    )
    removed = await sweep_once(keyturn)
    assert removed["sessions"] == 1
    remaining = await keyturn.storage.sessions.list_all()
    assert [s.handle for s in remaining] == [fresh.session.handle]
    await keyturn.close()


async def test_sweep_removes_expired_throttle_rows(keyturn: Keyturn) -> None:
    """Failure counters past their window are deleted by the sweep."""
    clock = keyturn.clock
    assert isinstance(clock, FrozenClock)
    await keyturn.throttle.record_failure("someone", "192.0.2.9")
    clock.advance(keyturn.settings.login_failure_window + 1)
    removed = await sweep_once(keyturn)
    assert removed["throttle"] >= 1
    await keyturn.close()


async def test_sweep_deletes_keys_long_retired_but_keeps_verifying_ones(keyturn: Keyturn) -> None:
    """A key retired more than a day past its verification window is deleted;
    the signing key and a just-retired key stay."""
    clock = keyturn.clock
    assert isinstance(clock, FrozenClock)
    first = keyturn.keys.ring.signing_key.kid
    await keyturn.keys.rotate()
    clock.advance(keyturn.keys.window + 86_400 + 1)
    second = keyturn.keys.ring.signing_key.kid
    await keyturn.keys.rotate()
    removed = await sweep_once(keyturn)
    assert removed["keys"] == 1
    remaining = {key.kid for key in await keyturn.storage.keys.list()}
    assert first not in remaining
    assert second in remaining
    await keyturn.close()


async def test_sweep_loop_survives_an_unreachable_store(
    keyturn: Keyturn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing sweep is logged and retried; the loop keeps running until cancelled."""
    attempts = 0

    async def unreachable() -> int:
        nonlocal attempts
        attempts += 1
        raise StoreUnavailable("database down")

    monkeypatch.setattr(keyturn.sessions, "sweep", unreachable)
    task = asyncio.create_task(sweep_forever(keyturn, interval=0.01))
    await asyncio.sleep(0.2)
    assert not task.done()
    assert attempts >= 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await keyturn.close()


async def test_sweep_purges_old_codes_and_pushed_requests(keyturn: Keyturn) -> None:
    """Authorization codes past their replay window and expired PAR requests are
    deleted by the sweep; a fresh code stays redeemable."""
    from keyturn.oauth.flow_client import FlowClient
    from keyturn.oauth.pkce import s256_challenge

    clock = keyturn.clock
    assert isinstance(clock, FrozenClock)
    user = await keyturn.accounts.register("a@example.com", PASSWORD)
    challenge = s256_challenge("v" * 43)
    issue = {
        "client_id": "c",
        "user_id": user.id,
        "redirect_uri": "https://app.example/cb",
        "code_challenge": challenge,
        "scopes": ("openid",),
        "session_id": "s" * 16,
        "auth_time": clock.now(),
    }
    await keyturn.authorization_codes.issue(**issue)  # type: ignore[arg-type]
    client = FlowClient(
        "c", "C", False, True, ("https://app.example/cb",), {"openid"}, {"authorization_code"}
    )
    params = {
        "response_type": "code",
        "client_id": "c",
        "redirect_uri": "https://app.example/cb",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    await keyturn.authorization.pushed.push(client, params)
    clock.advance(keyturn.settings.code_replay_window + 61)
    fresh = await keyturn.authorization_codes.issue(**issue)  # type: ignore[arg-type]
    removed = await sweep_once(keyturn)
    assert removed["oauth"] == 2
    assert await keyturn.authorization_codes.store.get(fresh.record.code_hash) is not None


async def test_sweep_removes_expired_mfa_challenges_and_spent_totp_steps(
    keyturn: Keyturn,
) -> None:
    """Dead mfa_tokens and TOTP steps past their window are deleted; live ones stay."""
    from keyturn.mfa.store import MfaChallenge
    from keyturn.stores.records import User
    from keyturn.stores.wave2 import wave2_stores

    now = keyturn.clock.now()
    await keyturn.storage.users.add(User("u1", "u1@example.com", "$argon2id$x", now))
    stores = wave2_stores(keyturn.storage)
    for token_hash, expires_at in (("a" * 64, now - 1), ("b" * 64, now + 300)):
        await stores.mfa_challenges.add(
            MfaChallenge(token_hash, "u1", "c" * 64, ("totp",), ("pwd",), now - 10, expires_at)
        )
    assert await stores.totp_replay.claim("u1", 2, now + 60, now - 60)
    assert await stores.totp_replay.claim("u1", 1, now - 1, now - 60)
    removed = await sweep_once(keyturn)
    assert removed["mfa"] == 2
    assert await stores.mfa_challenges.get("b" * 64, now) is not None
    assert not await stores.totp_replay.claim("u1", 2, now + 60, now)
    await keyturn.close()


async def test_sweep_empties_the_caches_of_idle_sessions_and_expired_tokens(
    tmp_path: Path, fast_hasher: PasswordHasher
) -> None:
    """An instance's in-process caches do not keep what no request can use without a
    store read: after the sessions' trust and the token's exp have run out, one sweep
    leaves the caches empty, and the session still works (re-read from the store)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", revocation_mode="strict"
    )
    clock = FrozenClock()
    keyturn = Keyturn(settings, clock=clock, hasher=fast_hasher)
    await keyturn.start()
    user = await keyturn.accounts.register("a@example.com", PASSWORD)
    _, issued = await keyturn.auth.sign_in(
        "a@example.com", PASSWORD, ip="192.0.2.1", user_agent=None
    )
    token, _ = keyturn.token_issuer.issue(user.id, sid=issued.session.handle)
    await keyturn.sessions.validate(issued.secret)
    await keyturn.bearer.authenticate(token)
    verified = keyturn.token_verifier.cache
    assert verified is not None
    assert (len(keyturn.sessions.cache), len(verified)) == (1, 1)
    assert (await sweep_once(keyturn))["caches"] == 0  # all of it still in use

    clock.advance(settings.access_token_ttl + 1)  # past exp and every trust limit
    assert (await sweep_once(keyturn))["caches"] == 3  # session, token, user
    assert (len(keyturn.sessions.cache), len(verified)) == (0, 0)
    assert (await keyturn.sessions.validate(issued.secret)).user.id == user.id
    await keyturn.close()
