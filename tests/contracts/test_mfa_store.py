"""The MFA store contracts (TOTP, replay, recovery codes, mfa_token challenges,
WebAuthn challenges, passkeys), run against the memory references, SQLite,
PostgreSQL and the SQL + Redis bundle (whose MFA stores are the SQL ones)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from tests.contracts.wave2_support import T0, add_user, stored_bytes

from keyturn.clock import FrozenClock
from keyturn.errors import UserNotFound
from keyturn.mfa.challenge import MfaChallenges
from keyturn.mfa.recovery import RecoveryCodes
from keyturn.mfa.store import MfaChallenge, PasskeyCredential, TotpFactor, WebAuthnChallenge
from keyturn.mfa.totp import TotpManager
from keyturn.outbox import AesGcmSealer
from keyturn.stores.protocols import Storage
from keyturn.stores.sql import SqlStorage
from keyturn.stores.sql.mfa_store import (
    SqlMfaChallengeStore,
    SqlTotpReplayStore,
    SqlWebAuthnChallengeStore,
)
from keyturn.stores.sql.schema import WAVE2_TABLES, users
from keyturn.stores.wave2 import Wave2Stores, wave2_stores

RACERS = 8


def _challenge(user_id: str, token_hash: str = "t" * 64, ttl: float = 300) -> MfaChallenge:
    return MfaChallenge(
        token_hash=token_hash,
        user_id=user_id,
        binding_hash="b" * 64,
        methods=("totp", "recovery_code"),
        amr=("pwd",),
        created_at=T0,
        expires_at=T0 + ttl,
        payload='{"remember": true}',
    )


def _passkey(user_id: str, cid: bytes, created_at: float = T0) -> PasskeyCredential:
    return PasskeyCredential(
        id=cid,
        user_id=user_id,
        public_key=b"\xa5\x01\x02cose",
        sign_count=3,
        name="Laptop",
        created_at=created_at,
        transports=("internal", "hybrid"),
        backup_eligible=True,
        aaguid="00000000-0000-0000-0000-000000000000",
        attachment="platform",
    )


async def test_totp_pending_then_activate_by_compare_and_set(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """A pending enrolment leaves the active factor alone until it is activated with
    the very secret that was checked; then it replaces the old factor."""
    user = await add_user(storage, "u1")
    await wave2.totp.set_pending(TotpFactor(user, b"old", T0))
    assert await wave2.totp.activate(user, b"old", T0 + 1)
    await wave2.totp.set_pending(TotpFactor(user, b"first", T0 + 2))
    await wave2.totp.set_pending(TotpFactor(user, b"new", T0 + 3))  # replaces "first"
    assert await wave2.totp.get_pending(user) == TotpFactor(user, b"new", T0 + 3)
    assert await wave2.totp.get_active(user) == TotpFactor(user, b"old", T0, T0 + 1)
    assert not await wave2.totp.activate(user, b"first", T0 + 4)
    assert await wave2.totp.activate(user, b"new", T0 + 5)
    assert await wave2.totp.get_active(user) == TotpFactor(user, b"new", T0 + 3, T0 + 5)
    assert await wave2.totp.get_pending(user) is None
    assert await wave2.totp.delete(user)
    assert not await wave2.totp.delete(user)
    assert await wave2.totp.get_active(user) is None


async def test_totp_activation_races_have_one_winner(storage: Storage, wave2: Wave2Stores) -> None:
    """Concurrent confirmations of one enrolment activate it exactly once."""
    user = await add_user(storage, "u1")
    await wave2.totp.set_pending(TotpFactor(user, b"sealed", T0))
    wins = await asyncio.gather(
        *(wave2.totp.activate(user, b"sealed", T0 + n) for n in range(RACERS))
    )
    assert wins.count(True) == 1


async def test_totp_step_is_accepted_once_until_it_expires(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """A (user, step) pair is claimed once, racers included; other steps and users
    are independent, and an expired claim no longer blocks."""
    alice, bob = await add_user(storage, "alice"), await add_user(storage, "bob")
    wins = await asyncio.gather(
        *(wave2.totp_replay.claim(alice, 100, T0 + 90, T0) for _ in range(RACERS))
    )
    assert wins.count(True) == 1
    assert not await wave2.totp_replay.claim(alice, 100, T0 + 90, T0 + 89)
    assert await wave2.totp_replay.claim(alice, 101, T0 + 90, T0)
    assert await wave2.totp_replay.claim(bob, 100, T0 + 90, T0)
    assert await wave2.totp_replay.claim(alice, 100, T0 + 200, T0 + 90)


async def test_recovery_codes_replace_consume_count(storage: Storage, wave2: Wave2Stores) -> None:
    """A new set replaces the old; each hash is consumed once, by one of any racers."""
    user, other = await add_user(storage, "u1"), await add_user(storage, "u2")
    await wave2.recovery_codes.replace(user, ["h-old"], T0)
    await wave2.recovery_codes.replace(user, ["h1", "h2", "h3"], T0 + 1)
    await wave2.recovery_codes.replace(other, ["h1"], T0)
    assert await wave2.recovery_codes.remaining(user) == 3
    assert not await wave2.recovery_codes.consume(user, "h-old")
    wins = await asyncio.gather(*(wave2.recovery_codes.consume(user, "h1") for _ in range(RACERS)))
    assert wins.count(True) == 1
    assert await wave2.recovery_codes.remaining(user) == 2
    assert await wave2.recovery_codes.remaining(other) == 1  # another user's set is apart
    await wave2.recovery_codes.delete(user)
    assert await wave2.recovery_codes.remaining(user) == 0
    assert not await wave2.recovery_codes.consume(user, "h2")


async def test_mfa_challenge_round_trip_expiry_and_single_use(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """A challenge comes back until it expires; consume spends it for one racer only."""
    user = await add_user(storage, "u1")
    challenge = _challenge(user)
    await wave2.mfa_challenges.add(challenge)
    assert await wave2.mfa_challenges.get(challenge.token_hash, T0 + 299) == challenge
    assert await wave2.mfa_challenges.get(challenge.token_hash, T0 + 300) is None
    assert not await wave2.mfa_challenges.consume(challenge.token_hash, T0 + 300)
    fresh = _challenge(user, "f" * 64)
    await wave2.mfa_challenges.add(fresh)
    wins = await asyncio.gather(
        *(wave2.mfa_challenges.consume(fresh.token_hash, T0 + 1) for _ in range(RACERS))
    )
    assert wins.count(True) == 1
    assert await wave2.mfa_challenges.get(fresh.token_hash, T0 + 1) is None


async def test_mfa_challenges_of_one_user_end_together(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """delete_for_user (password reset, MFA reset) ends that user's half-finished
    sign-ins and nobody else's."""
    alice, bob = await add_user(storage, "a1"), await add_user(storage, "b1")
    await wave2.mfa_challenges.add(_challenge(alice, "a" * 64))
    await wave2.mfa_challenges.add(_challenge(alice, "c" * 64))
    await wave2.mfa_challenges.add(_challenge(bob, "d" * 64))
    assert await wave2.mfa_challenges.delete_for_user(alice) == 2
    assert await wave2.mfa_challenges.get("a" * 64, T0 + 1) is None
    assert await wave2.mfa_challenges.get("c" * 64, T0 + 1) is None
    assert await wave2.mfa_challenges.get("d" * 64, T0 + 1) is not None


async def test_mfa_attempts_are_counted_atomically(storage: Storage, wave2: Wave2Stores) -> None:
    """Parallel guesses get exactly max_attempts tries between them; then the
    challenge is gone (so no code can be checked against it any more)."""
    user = await add_user(storage, "u1")
    challenge = _challenge(user)
    await wave2.mfa_challenges.add(challenge)
    claims = await asyncio.gather(
        *(wave2.mfa_challenges.claim_attempt(challenge.token_hash, T0, 5) for _ in range(12))
    )
    counted = sorted(claim.attempts for claim in claims if claim is not None)
    assert counted == [1, 2, 3, 4, 5]
    assert await wave2.mfa_challenges.claim_attempt(challenge.token_hash, T0, 5) is None
    assert await wave2.mfa_challenges.get(challenge.token_hash, T0) is None
    expired = _challenge(user, "e" * 64, ttl=10)
    await wave2.mfa_challenges.add(expired)
    assert await wave2.mfa_challenges.claim_attempt(expired.token_hash, T0 + 10, 5) is None
    await wave2.mfa_challenges.delete(expired.token_hash)  # absent: no error


async def test_webauthn_challenge_is_single_use(storage: Storage, wave2: Wave2Stores) -> None:
    """A ceremony challenge is returned by one consume of any racers; an expired one by none."""
    user = await add_user(storage, "u1")
    live = WebAuthnChallenge("c" * 64, "register", user, True, T0, T0 + 300)
    usernameless = WebAuthnChallenge("d" * 64, "authenticate", None, False, T0, T0 + 300)
    await wave2.webauthn_challenges.add(live)
    await wave2.webauthn_challenges.add(usernameless)
    results = await asyncio.gather(
        *(wave2.webauthn_challenges.consume(live.challenge_hash, T0 + 1) for _ in range(RACERS))
    )
    assert [result for result in results if result is not None] == [live]
    assert await wave2.webauthn_challenges.consume(usernameless.challenge_hash, T0 + 300) is None
    assert await wave2.webauthn_challenges.consume(usernameless.challenge_hash, T0) is None


async def test_passkeys_round_trip_and_ownership(storage: Storage, wave2: Wave2Stores) -> None:
    """Credentials come back whole, oldest first; an id is registered once; only the
    owner can remove one; use updates counter, time and backup state."""
    user, other = await add_user(storage, "u1"), await add_user(storage, "u2")
    second, first = _passkey(user, b"\x02id", T0 + 5), _passkey(user, b"\x00\x01id", T0)
    assert await wave2.passkeys.add(second)
    assert await wave2.passkeys.add(first)
    assert not await wave2.passkeys.add(_passkey(other, b"\x02id"))
    assert await wave2.passkeys.get(b"\x02id") == second
    assert await wave2.passkeys.list_for_user(user) == [first, second]
    await wave2.passkeys.record_use(b"\x02id", sign_count=9, used_at=T0 + 7, backed_up=True)
    used = await wave2.passkeys.get(b"\x02id")
    assert used is not None and (used.sign_count, used.last_used_at, used.backed_up) == (
        9,
        T0 + 7,
        True,
    )
    assert not await wave2.passkeys.delete(other, b"\x02id")
    assert await wave2.passkeys.delete(user, b"\x02id")
    assert await wave2.passkeys.delete_all(user) == 1
    assert await wave2.passkeys.list_for_user(user) == []


async def test_mfa_secrets_are_stored_hashed_or_sealed(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """Through the real cores: the TOTP secret, recovery codes and the mfa_token
    are nowhere in the stores (their hashes or sealed bytes are)."""
    user = await add_user(storage, "u1")
    clock = FrozenClock(T0)
    totp = TotpManager(
        wave2.totp, wave2.totp_replay, AesGcmSealer(bytes(32)), clock, issuer="id.example"
    )
    enrolment = await totp.begin_enrolment(user, account_name="u1@example.com")
    codes = await RecoveryCodes(wave2.recovery_codes, clock, hash_key=bytes(32)).regenerate(user)
    issued = await MfaChallenges(wave2.mfa_challenges, clock).issue(
        user, methods=("totp",), client_binding="binding-cookie-value"
    )
    held = await stored_bytes(storage)
    pending = await wave2.totp.get_pending(user)
    assert pending is not None and pending.sealed_secret in held
    for secret in (enrolment.secret, issued.token, "binding-cookie-value", *codes):
        assert secret.encode() not in held


async def test_user_delete_cascades_to_every_mfa_row(sql_storage: SqlStorage) -> None:
    """Deleting a user row deletes their factors, used steps, codes, challenges and
    passkeys; another user's rows stay."""
    stores = wave2_stores(sql_storage)
    for user in ("gone", "kept"):
        await add_user(sql_storage, user)
        await stores.totp.set_pending(TotpFactor(user, b"s", T0))
        await stores.totp.activate(user, b"s", T0)
        await stores.totp.set_pending(TotpFactor(user, b"s2", T0))
        await stores.totp_replay.claim(user, 1, T0 + 90, T0)
        await stores.recovery_codes.replace(user, ["h1"], T0)
        await stores.mfa_challenges.add(_challenge(user, user.ljust(64, "x")))
        await stores.webauthn_challenges.add(
            WebAuthnChallenge(user.ljust(64, "c"), "register", user, True, T0, T0 + 300)
        )
        await stores.passkeys.add(_passkey(user, user.encode()))
    async with sql_storage.engine.begin() as connection:
        await connection.execute(users.delete().where(users.c.id == "gone"))
    async with sql_storage.engine.connect() as connection:
        for table in WAVE2_TABLES:
            if "user_id" not in table.c or not table.name.startswith(("mfa", "webauthn")):
                continue
            owners = (await connection.execute(sa.select(table.c.user_id))).scalars().all()
            assert set(owners) == {"kept"}, table.name
    assert await stores.passkeys.get(b"gone") is None
    assert await stores.recovery_codes.remaining("kept") == 1


async def test_sql_purge_drops_only_expired_challenges_and_steps(sql_storage: SqlStorage) -> None:
    """The SQL stores' maintenance purge deletes expired mfa_token and WebAuthn
    challenges and used TOTP steps, and keeps live ones (expired rows are invisible
    but would otherwise stay on disk)."""
    stores = wave2_stores(sql_storage)
    user = await add_user(sql_storage, "u1")
    await stores.mfa_challenges.add(_challenge(user, "a" * 64, ttl=10))
    await stores.mfa_challenges.add(_challenge(user, "b" * 64, ttl=100))
    await stores.webauthn_challenges.add(
        WebAuthnChallenge("c" * 64, "authenticate", None, False, T0, T0 + 10)
    )
    await stores.totp_replay.claim(user, 1, T0 + 10, T0)
    await stores.totp_replay.claim(user, 2, T0 + 100, T0)
    assert isinstance(stores.mfa_challenges, SqlMfaChallengeStore)
    assert isinstance(stores.webauthn_challenges, SqlWebAuthnChallengeStore)
    assert isinstance(stores.totp_replay, SqlTotpReplayStore)
    assert await stores.mfa_challenges.purge(T0 + 10) == 1
    assert await stores.webauthn_challenges.purge(T0 + 10) == 1
    assert await stores.totp_replay.purge(T0 + 10) == 1
    assert await stores.mfa_challenges.get("b" * 64, T0 + 10) is not None
    assert not await stores.totp_replay.claim(user, 2, T0 + 100, T0 + 10)


async def test_sql_rows_for_an_unknown_user_are_refused(sql_storage: SqlStorage) -> None:
    """A row naming a user who does not exist raises UserNotFound (the foreign
    key), while a duplicate key for a real user is not mistaken for one."""
    stores = wave2_stores(sql_storage)
    with pytest.raises(UserNotFound):
        await stores.passkeys.add(_passkey("nobody", b"id"))
    with pytest.raises(UserNotFound):
        await stores.totp.set_pending(TotpFactor("nobody", b"s", T0))
    with pytest.raises(UserNotFound):
        await stores.mfa_challenges.add(_challenge("nobody"))
    user = await add_user(sql_storage, "u1")
    await stores.mfa_challenges.add(_challenge(user))
    with pytest.raises(sa_exc.IntegrityError):
        await stores.mfa_challenges.add(_challenge(user))
    await stores.webauthn_challenges.add(
        WebAuthnChallenge("c" * 64, "register", None, True, T0, T0 + 9)
    )
    with pytest.raises(sa_exc.IntegrityError):
        await stores.webauthn_challenges.add(
            WebAuthnChallenge("c" * 64, "register", None, True, T0, T0 + 9)
        )


@pytest.mark.redis
async def test_redis_totp_replay_is_shared_by_every_instance(redis_url: str) -> None:
    """With --redis-url the used TOTP steps live in Redis: a step claimed through one
    instance's connection is refused through another's, racers included, and the key
    expires with the step (Redis TTL from the caller's clock)."""
    from keyturn.stores.redis.connection import RedisConnection
    from keyturn.stores.redis.totp_replay import RedisTotpReplayStore

    first, second = RedisConnection(redis_url), RedisConnection(redis_url)
    try:
        one, other = RedisTotpReplayStore(first), RedisTotpReplayStore(second)
        user = f"user-{T0}"
        wins = await asyncio.gather(
            *(store.claim(user, 7, T0 + 90, T0) for store in [one, other] * (RACERS // 2))
        )
        assert wins.count(True) == 1
        assert not await other.claim(user, 7, T0 + 90, T0 + 30)
        assert await other.claim(user, 8, T0 + 120, T0 + 30)
        assert not await one.claim(user, 9, T0, T0)  # already past its window
        ttl = await first.client.pttl(f"keyturn:totp-used:{user}:7")
        assert 0 < ttl <= 90_000
        assert "redis" in repr(one).lower() and "@" not in repr(one)
    finally:
        await first.client.delete(*[f"keyturn:totp-used:{user}:{n}" for n in (7, 8)])
        await first.close()
        await second.close()
