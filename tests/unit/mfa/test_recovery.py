"""Recovery codes: 10 per set, readable, hashed, single use, regenerable."""

from __future__ import annotations

import re
import secrets

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidMfaCode
from keyturn.mfa.memory import MemoryRecoveryCodeStore
from keyturn.mfa.recovery import RECOVERY_CODE_BITS, RecoveryCodes, normalize_code

#: A code typed in full-width letters: looks right, is not the alphabet.
FULLWIDTH_CODE = "-".join(
    "".join(chr(ord(ch) + 0xFEE0) for ch in g) for g in ("abcd", "efgh", "jkmn")
)
CODE_RE = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){2}")


@pytest.fixture
def store() -> MemoryRecoveryCodeStore:
    return MemoryRecoveryCodeStore()


@pytest.fixture
def codes(store: MemoryRecoveryCodeStore) -> RecoveryCodes:
    return RecoveryCodes(store, FrozenClock(), hash_key=secrets.token_bytes(32))


async def test_a_set_is_ten_distinct_readable_codes(codes: RecoveryCodes) -> None:
    """A set is 10 different codes in groups of four, without look-alike letters,
    each carrying at least 50 bits."""
    issued = await codes.regenerate("alice")
    assert len(issued) == len(set(issued)) == 10
    for code in issued:
        assert re.fullmatch(
            r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}", code
        )
    assert RECOVERY_CODE_BITS >= 50
    assert await codes.remaining("alice") == 10


async def test_only_hashes_are_stored(codes: RecoveryCodes, store: MemoryRecoveryCodeStore) -> None:
    """The store holds 10 hashes and no code, in any spelling."""
    issued = await codes.regenerate("alice")
    stored = store.hashes("alice")
    assert len(stored) == 10
    for code in issued:
        assert code not in stored and normalize_code(code) not in stored
        assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in stored)


async def test_a_code_works_once(codes: RecoveryCodes) -> None:
    """A code signs in once; the second use fails and the count goes down by one."""
    issued = await codes.regenerate("alice")
    await codes.consume("alice", issued[3])
    assert await codes.remaining("alice") == 9
    with pytest.raises(InvalidMfaCode):
        await codes.consume("alice", issued[3])
    assert await codes.remaining("alice") == 9


async def test_typing_is_forgiven(codes: RecoveryCodes) -> None:
    """Upper case, spaces, missing dashes and look-alike letters (O for 0, I/L for 1) work."""
    issued = await codes.regenerate("alice")
    typed = issued[0].upper().replace("-", " ").replace("0", "O").replace("1", "I")
    await codes.consume("alice", typed)
    assert await codes.remaining("alice") == 9


async def test_regenerating_invalidates_the_old_set(codes: RecoveryCodes) -> None:
    """A new set replaces the old: every old code stops working."""
    old = await codes.regenerate("alice")
    new = await codes.regenerate("alice")
    assert not set(old) & set(new)
    for code in old:
        with pytest.raises(InvalidMfaCode):
            await codes.consume("alice", code)
    await codes.consume("alice", new[0])


async def test_codes_belong_to_their_user(codes: RecoveryCodes) -> None:
    """Alice's code does not work for Bob."""
    alice = await codes.regenerate("alice")
    await codes.regenerate("bob")
    with pytest.raises(InvalidMfaCode):
        await codes.consume("bob", alice[0])


async def test_garbage_is_refused(codes: RecoveryCodes) -> None:
    """Malformed or oversized input is a wrong code, not an error."""
    await codes.regenerate("alice")
    for typed in ("", "abcd", "x" * 10_000, FULLWIDTH_CODE):
        with pytest.raises(InvalidMfaCode):
            await codes.consume("alice", typed)


async def test_remove_deletes_the_set(codes: RecoveryCodes) -> None:
    """After removal (mfa-reset) no code is left."""
    issued = await codes.regenerate("alice")
    await codes.remove("alice")
    assert await codes.remaining("alice") == 0
    with pytest.raises(InvalidMfaCode):
        await codes.consume("alice", issued[0])


def test_the_hash_key_must_be_long() -> None:
    """A short HMAC key is refused at construction."""
    with pytest.raises(ValueError):
        RecoveryCodes(MemoryRecoveryCodeStore(), FrozenClock(), hash_key=b"short")
