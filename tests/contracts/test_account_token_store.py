"""The AccountTokenStore contract (#14), run against the memory reference, SQLite,
PostgreSQL (and the SQL + Redis bundle, whose account tokens are the SQL ones)."""

from __future__ import annotations

import asyncio

from tests.contracts.wave2_support import T0, add_user, stored_bytes

from keyturn.recovery.service import hash_account_token
from keyturn.recovery.store import AccountToken, TokenPurpose
from keyturn.stores.protocols import Storage
from keyturn.stores.wave2 import Wave2Stores

RESET = TokenPurpose.PASSWORD_RESET
VERIFY = TokenPurpose.VERIFY_EMAIL
CHANGE = TokenPurpose.EMAIL_CHANGE


def token(user_id: str, purpose: TokenPurpose, secret: str, *, ttl: float = 60) -> AccountToken:
    return AccountToken(
        token_hash=hash_account_token(secret),
        user_id=user_id,
        purpose=purpose,
        created_at=T0,
        expires_at=T0 + ttl,
        new_email="new@example.com" if purpose is CHANGE else None,
    )


async def test_a_token_is_redeemed_once_and_only_for_its_purpose(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """Redeeming returns the stored record once; the wrong purpose finds nothing."""
    user = await add_user(storage, "u1")
    issued = token(user, CHANGE, "secret-a")
    await wave2.account_tokens.issue(issued)
    assert await wave2.account_tokens.redeem(issued.token_hash, RESET, now=T0) is None
    assert await wave2.account_tokens.redeem(issued.token_hash, CHANGE, now=T0) == issued
    assert await wave2.account_tokens.redeem(issued.token_hash, CHANGE, now=T0) is None


async def test_an_expired_token_does_not_redeem(storage: Storage, wave2: Wave2Stores) -> None:
    """At ``expires_at`` a token is dead, and the sweep deletes it."""
    user = await add_user(storage, "u1")
    issued = token(user, RESET, "secret-a", ttl=30)
    await wave2.account_tokens.issue(issued)
    assert await wave2.account_tokens.redeem(issued.token_hash, RESET, now=T0 + 30) is None
    assert await wave2.account_tokens.sweep(now=T0 + 30) == 1


async def test_a_newer_token_replaces_the_older_one_of_its_purpose(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """Issuing deletes the user's earlier token of that purpose, not other purposes
    or other users'."""
    first, second = await add_user(storage, "u1"), await add_user(storage, "u2")
    old, verify = token(first, RESET, "old"), token(first, VERIFY, "verify")
    others = token(second, RESET, "others")
    for issued in (old, verify, others):
        await wave2.account_tokens.issue(issued)
    new = token(first, RESET, "new")
    await wave2.account_tokens.issue(new)
    assert await wave2.account_tokens.redeem(old.token_hash, RESET, now=T0) is None
    assert await wave2.account_tokens.redeem(new.token_hash, RESET, now=T0) == new
    assert await wave2.account_tokens.redeem(verify.token_hash, VERIFY, now=T0) == verify
    assert await wave2.account_tokens.redeem(others.token_hash, RESET, now=T0) == others


async def test_revoke_user_deletes_only_the_named_purposes(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """A password change ends reset tokens only; the verification link survives."""
    user = await add_user(storage, "u1")
    reset, verify = token(user, RESET, "r"), token(user, VERIFY, "v")
    await wave2.account_tokens.issue(reset)
    await wave2.account_tokens.issue(verify)
    assert await wave2.account_tokens.revoke_user(user, frozenset({RESET})) == 1
    assert await wave2.account_tokens.redeem(reset.token_hash, RESET, now=T0) is None
    assert await wave2.account_tokens.redeem(verify.token_hash, VERIFY, now=T0) == verify


async def test_concurrent_redeems_have_one_winner(storage: Storage, wave2: Wave2Stores) -> None:
    """Ten racing redeems of one token: exactly one gets it (single use)."""
    user = await add_user(storage, "u1")
    issued = token(user, RESET, "race")
    await wave2.account_tokens.issue(issued)
    results = await asyncio.gather(
        *(wave2.account_tokens.redeem(issued.token_hash, RESET, now=T0) for _ in range(10))
    )
    assert [result for result in results if result is not None] == [issued]


async def test_the_store_never_holds_the_secret(storage: Storage, wave2: Wave2Stores) -> None:
    """Only the SHA-256 of a token is stored: the secret in the link is nowhere."""
    user = await add_user(storage, "u1")
    secret = "the-secret-in-the-link-abcdefghijklmnopqrstu"
    await wave2.account_tokens.issue(token(user, RESET, secret))
    assert secret.encode() not in await stored_bytes(storage)
