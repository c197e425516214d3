"""The mfa_token: 300 s, bound to its client, 5 codes at most, single use."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidMfaCode, InvalidMfaToken, InvalidRequest, WebAuthnFailed
from keyturn.mfa.challenge import MfaChallenges
from keyturn.mfa.memory import MemoryMfaChallengeStore
from keyturn.mfa.store import MfaChallenge

BROWSER = "pre-session-cookie-value"


async def right(challenge: MfaChallenge) -> Sequence[str]:
    return ("otp",)


async def wrong(challenge: MfaChallenge) -> Sequence[str]:
    raise InvalidMfaCode()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store() -> MemoryMfaChallengeStore:
    return MemoryMfaChallengeStore()


@pytest.fixture
def challenges(store: MemoryMfaChallengeStore, clock: FrozenClock) -> MfaChallenges:
    return MfaChallenges(store, clock)


async def issue(challenges: MfaChallenges) -> str:
    issued = await challenges.issue(
        "alice", methods=("totp", "recovery_code"), client_binding=BROWSER, payload='{"r":1}'
    )
    return issued.token


async def test_issue_returns_a_long_random_token_stored_hashed(
    challenges: MfaChallenges, store: MemoryMfaChallengeStore, clock: FrozenClock
) -> None:
    """The token carries >= 256 bits, is stored only as its SHA-256, expires in 300 s,
    and the answer lists the user's methods."""
    issued = await challenges.issue("alice", methods=("totp",), client_binding=BROWSER)
    assert len(issued.token) >= 43  # 32 bytes, base64url
    assert issued.token not in repr(issued)
    assert issued.methods == ("totp",)
    assert issued.expires_at == clock.now() + 300
    token_hash = hashlib.sha256(issued.token.encode()).hexdigest()
    record = await store.get(token_hash, clock.now())
    assert record is not None and record.user_id == "alice"
    assert issued.token not in repr(record)


async def test_a_right_code_finishes_the_sign_in_once(challenges: MfaChallenges) -> None:
    """A correct code yields the user, amr pwd+otp+mfa and the payload; the token is then spent."""
    token = await issue(challenges)
    done = await challenges.complete(token, client_binding=BROWSER, method="totp", check=right)
    assert (done.user_id, done.amr, done.payload) == ("alice", ("pwd", "otp", "mfa"), '{"r":1}')
    with pytest.raises(InvalidMfaToken):
        await challenges.complete(token, client_binding=BROWSER, method="totp", check=right)


async def test_the_token_expires_after_300_seconds(
    challenges: MfaChallenges, clock: FrozenClock
) -> None:
    """At 300 s the token is dead, even with the right code."""
    token = await issue(challenges)
    clock.advance(299)
    await challenges.peek(token, client_binding=BROWSER)
    clock.advance(1)
    with pytest.raises(InvalidMfaToken):
        await challenges.complete(token, client_binding=BROWSER, method="totp", check=right)


async def test_five_wrong_codes_kill_the_token(challenges: MfaChallenges) -> None:
    """Each wrong code says how many are left; after the fifth, even the right code fails."""
    token = await issue(challenges)
    left = []
    for _ in range(5):
        with pytest.raises(InvalidMfaCode) as caught:
            await challenges.complete(token, client_binding=BROWSER, method="totp", check=wrong)
        left.append(caught.value.attempts_left)
    assert left == [4, 3, 2, 1, 0]
    with pytest.raises(InvalidMfaToken):
        await challenges.complete(token, client_binding=BROWSER, method="totp", check=right)


async def test_a_failed_passkey_counts_as_a_wrong_code(challenges: MfaChallenges) -> None:
    """Failed WebAuthn assertions use up attempts too."""
    token = await challenges.issue("alice", methods=("webauthn",), client_binding=BROWSER)

    async def bad_passkey(challenge: MfaChallenge) -> Sequence[str]:
        raise WebAuthnFailed("signature")

    for _ in range(5):
        with pytest.raises(WebAuthnFailed):
            await challenges.complete(
                token.token, client_binding=BROWSER, method="webauthn", check=bad_passkey
            )
    with pytest.raises(InvalidMfaToken):
        await challenges.peek(token.token, client_binding=BROWSER)


async def test_another_client_cannot_use_the_token(challenges: MfaChallenges) -> None:
    """A stolen token presented with another client binding is refused, and does not
    use up the owner's attempts."""
    token = await issue(challenges)
    for _ in range(10):
        with pytest.raises(InvalidMfaToken):
            await challenges.complete(token, client_binding="attacker", method="totp", check=right)
    done = await challenges.complete(token, client_binding=BROWSER, method="totp", check=right)
    assert done.user_id == "alice"


async def test_only_offered_methods_are_accepted(challenges: MfaChallenges) -> None:
    """A method the user does not have is refused before any code is checked."""
    token = await issue(challenges)
    with pytest.raises(InvalidRequest):
        await challenges.complete(token, client_binding=BROWSER, method="webauthn", check=right)


async def test_unknown_and_oversized_tokens_are_refused(challenges: MfaChallenges) -> None:
    """A token never issued, an empty one and a huge one are all InvalidMfaToken."""
    for token in ("nope", "", "x" * 10_000):
        with pytest.raises(InvalidMfaToken):
            await challenges.complete(token, client_binding=BROWSER, method="totp", check=right)


async def test_parallel_guesses_are_bounded(
    challenges: MfaChallenges, store: MemoryMfaChallengeStore
) -> None:
    """Attempts are counted before the code is checked, so concurrent guesses
    cannot exceed five checks."""
    import asyncio

    token = await issue(challenges)
    checked = 0

    async def slow_wrong(challenge: MfaChallenge) -> Sequence[str]:
        nonlocal checked
        checked += 1
        await asyncio.sleep(0)
        raise InvalidMfaCode()

    results = await asyncio.gather(
        *(
            challenges.complete(token, client_binding=BROWSER, method="totp", check=slow_wrong)
            for _ in range(20)
        ),
        return_exceptions=True,
    )
    assert checked == 5
    assert sum(isinstance(r, InvalidMfaToken) for r in results) == 15


def test_limits_cannot_be_loosened(store: MemoryMfaChallengeStore, clock: FrozenClock) -> None:
    """A TTL over 300 s or more than 5 attempts is refused at construction."""
    with pytest.raises(ValueError):
        MfaChallenges(store, clock, ttl=301)
    with pytest.raises(ValueError):
        MfaChallenges(store, clock, max_attempts=6)


async def test_issue_needs_a_binding(challenges: MfaChallenges) -> None:
    """An unbound token cannot be made by accident."""
    with pytest.raises(ValueError):
        await challenges.issue("alice", methods=("totp",), client_binding="")
