"""A TOTP code is accepted once across instances (#15): two Keyturn instances on
one database (and, with --redis-url, one Redis) share the replay guard, so a
code one instance accepted is refused by the other within its 30 s."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from keyturn.accounts.passwords import PasswordHasher
from keyturn.clock import FrozenClock
from keyturn.errors import InvalidMfaCode
from keyturn.runtime import Keyturn
from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"
KEK = "a" * 43 + "="


async def _replay_across_instances(settings: Settings, hasher: PasswordHasher) -> str:
    clock = FrozenClock(1_800_000_000.0)
    first = Keyturn(settings, clock=clock, hasher=hasher)
    second = Keyturn(settings, clock=clock, hasher=hasher)
    await first.start(migrate=True)
    await second.start()
    try:
        user = await first.accounts.register("replay@example.com", PASSWORD)
        enrolment = await first.mfa_factors.begin_totp(user)
        totp = pyotp.TOTP(enrolment.secret)
        await first.mfa_factors.confirm_totp(user, totp.at(clock.now()), ip=None)
        code = totp.at(clock.now() + 30)
        await first.mfa_auth.factors.totp.verify(user.id, code)
        with pytest.raises(InvalidMfaCode):
            await second.mfa_auth.factors.totp.verify(user.id, code)
        return type(second.mfa_auth.factors.totp._replay).__name__
    finally:
        await second.close()
        await first.close()


async def test_sqlite_instances_share_the_replay_guard(
    tmp_path: Path, fast_hasher: PasswordHasher
) -> None:
    """On one SQLite file, instance B refuses the code instance A accepted."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", key_encryption_key=KEK
    )
    assert await _replay_across_instances(settings, fast_hasher) == "SqlTotpReplayStore"


@pytest.mark.postgres
async def test_postgres_instances_share_the_replay_guard(
    postgres_database_url: str, fast_hasher: PasswordHasher
) -> None:
    """The same on PostgreSQL."""
    settings = Settings(database_url=postgres_database_url, key_encryption_key=KEK)
    assert await _replay_across_instances(settings, fast_hasher) == "SqlTotpReplayStore"


@pytest.mark.redis
async def test_redis_instances_share_the_replay_guard(
    tmp_path: Path, redis_url: str, fast_hasher: PasswordHasher
) -> None:
    """With --redis-url the used steps are kept in Redis, shared by both."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
        redis_url=redis_url,
        key_encryption_key=KEK,
    )
    assert await _replay_across_instances(settings, fast_hasher) == "RedisTotpReplayStore"
