"""TOTP (RFC 6238): vectors, the ±1 step window, replay refusal, sealed secrets."""

from __future__ import annotations

import base64
import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidMfaCode, NotFound
from keyturn.mfa.memory import MemoryTotpReplayStore, MemoryTotpStore
from keyturn.mfa.totp import (
    TotpManager,
    code_at,
    match_step,
    new_secret,
    provisioning_uri,
    qr_svg,
)

#: RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890", 8 digits, T0 = 0, X = 30.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
START = 1_800_000_000.0  # a multiple of 30: step boundaries are easy to reason about


class AesSealer:
    """What the key-encryption key does, in miniature: AES-256-GCM."""

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, None)

    def open(self, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], None)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def factors() -> MemoryTotpStore:
    return MemoryTotpStore()


@pytest.fixture
def manager(clock: FrozenClock, factors: MemoryTotpStore) -> TotpManager:
    return TotpManager(factors, MemoryTotpReplayStore(), AesSealer(), clock, issuer="Example Co")


async def enrolled(manager: TotpManager, clock: FrozenClock, user_id: str = "alice") -> str:
    """Enrol and confirm ``user_id``; return the secret. Leaves the clock one step on."""
    enrolment = await manager.begin_enrolment(user_id, account_name=f"{user_id}@example.test")
    await manager.confirm(user_id, code_at(enrolment.secret, int(clock.now()) // 30))
    clock.advance(30)
    return enrolment.secret


def fullwidth(text: str) -> str:
    """``text`` in full-width forms: digits that ``str.isdigit`` accepts but are not ASCII."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in text)


def wrong_code(secret: str, now: float) -> str:
    """A well-formed code that no step in the window accepts."""
    window = {code_at(secret, int(now) // 30 + delta) for delta in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(10) if f"{n:06d}" not in window)


@pytest.mark.parametrize(("unix_time", "code"), RFC_VECTORS)
def test_rfc6238_appendix_b_sha1_vectors(unix_time: int, code: str) -> None:
    """Our verification accepts the RFC's SHA-1 codes at their times, in their step."""
    assert match_step(RFC_SECRET, code, unix_time, digits=8, window=0) == unix_time // 30


def test_secret_is_160_bits_of_base32() -> None:
    """A new secret is 32 base32 characters (20 random bytes), different each time."""
    secret = new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret


def test_otpauth_uri_carries_issuer_label_and_parameters() -> None:
    """The URI names issuer and account and the secret; defaults imply SHA-1/6/30."""
    uri = provisioning_uri(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account_name="a@example.test", issuer="Example Co"
    )
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Example%20Co:a%40example.test"
    assert parse_qs(parts.query) == {
        "secret": ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"],
        "issuer": ["Example Co"],
    }


def test_qr_svg_is_self_contained() -> None:
    """The QR code is a single inline SVG with no script, link or external resource."""
    svg = qr_svg("otpauth://totp/Example:a?secret=JBSWY3DPEHPK3PXP&issuer=Example")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    lowered = svg.lower()
    for forbidden in ("<script", "href", "<image", "url(", "<?xml", "<foreignobject"):
        assert forbidden not in lowered
    assert "<path" in svg


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-60, False), (-30, True), (0, True), (30, True), (60, False)]
)
def test_window_is_one_step_either_way(offset: int, accepted: bool) -> None:
    """A code from the previous or next step is accepted (clock drift); two steps away is not."""
    secret = new_secret()
    now = START + 10
    code = code_at(secret, int(now + offset) // 30)
    step = match_step(secret, code, now)
    assert (step == int(now + offset) // 30) if accepted else step is None


def test_malformed_codes_never_match() -> None:
    """Wrong length, letters and empty input are refused without a match."""
    secret = new_secret()
    for code in ("", "12345", "1234567", "abcdef", fullwidth("123456")):
        assert match_step(secret, code, START) is None


async def test_enrolment_shows_the_secret_once_and_stores_it_sealed(
    manager: TotpManager, factors: MemoryTotpStore
) -> None:
    """The secret is returned to show; the store holds only ciphertext, and nothing is
    active until the first code confirms the enrolment."""
    enrolment = await manager.begin_enrolment("alice", account_name="alice@example.test")
    assert enrolment.secret in enrolment.otpauth_uri
    assert enrolment.secret not in repr(enrolment)
    pending = await factors.get_pending("alice")
    assert pending is not None
    assert enrolment.secret.encode() not in pending.sealed_secret
    assert not await manager.is_enabled("alice")


async def test_confirm_activates_and_a_wrong_code_does_not(
    manager: TotpManager, clock: FrozenClock
) -> None:
    """Enrolment is confirmed only by a correct code."""
    enrolment = await manager.begin_enrolment("alice", account_name="alice@example.test")
    with pytest.raises(InvalidMfaCode):
        await manager.confirm("alice", wrong_code(enrolment.secret, clock.now()))
    assert not await manager.is_enabled("alice")
    await manager.confirm("alice", code_at(enrolment.secret, int(clock.now()) // 30))
    assert await manager.is_enabled("alice")


async def test_confirm_needs_a_recent_enrolment(manager: TotpManager, clock: FrozenClock) -> None:
    """A shown secret can be confirmed only within the enrolment TTL."""
    with pytest.raises(NotFound):
        await manager.confirm("alice", "123456")
    enrolment = await manager.begin_enrolment("alice", account_name="alice@example.test")
    clock.advance(601)
    with pytest.raises(NotFound):
        await manager.confirm("alice", code_at(enrolment.secret, int(clock.now()) // 30))


async def test_verify_returns_the_matched_step(manager: TotpManager, clock: FrozenClock) -> None:
    """A correct code returns the time step it belongs to: here the next one (a phone
    clock running ahead), not the server's current step."""
    secret = await enrolled(manager, clock)
    current = int(clock.now()) // 30
    assert await manager.verify("alice", code_at(secret, current + 1)) == current + 1


async def test_a_code_is_accepted_once_even_within_its_step(
    manager: TotpManager, clock: FrozenClock
) -> None:
    """Replaying an accepted code fails, also seconds later in the same 30 s step."""
    secret = await enrolled(manager, clock)
    code = code_at(secret, int(clock.now()) // 30)
    await manager.verify("alice", code)
    clock.advance(10)
    with pytest.raises(InvalidMfaCode):
        await manager.verify("alice", code)


async def test_the_confirmation_code_cannot_be_replayed(
    manager: TotpManager, clock: FrozenClock
) -> None:
    """The code that confirmed the enrolment cannot then sign in."""
    enrolment = await manager.begin_enrolment("alice", account_name="alice@example.test")
    code = code_at(enrolment.secret, int(clock.now()) // 30)
    await manager.confirm("alice", code)
    with pytest.raises(InvalidMfaCode):
        await manager.verify("alice", code)


async def test_a_new_step_is_accepted_again(manager: TotpManager, clock: FrozenClock) -> None:
    """After one code is spent, the next step's code works."""
    secret = await enrolled(manager, clock)
    await manager.verify("alice", code_at(secret, int(clock.now()) // 30))
    clock.advance(30)
    assert await manager.verify("alice", code_at(secret, int(clock.now()) // 30))


async def test_replay_memory_is_per_user() -> None:
    """Two users whose codes share a step do not block each other."""
    replay = MemoryTotpReplayStore()
    assert await replay.claim("alice", 7, expires_at=300.0, now=0.0)
    assert await replay.claim("bob", 7, expires_at=300.0, now=0.0)
    assert not await replay.claim("alice", 7, expires_at=300.0, now=10.0)


async def test_replay_memory_forgets_steps_that_left_the_window(
    manager: TotpManager, clock: FrozenClock
) -> None:
    """Remembered steps are dropped once they can no longer be accepted, so the
    replay store does not grow without bound."""
    replay = MemoryTotpReplayStore()
    assert await replay.claim("alice", 100, expires_at=102 * 30.0, now=100 * 30.0)
    assert await replay.claim("alice", 200, expires_at=202 * 30.0, now=200 * 30.0)
    assert len(replay) == 1


async def test_a_sealed_secret_does_not_work_for_another_user(
    manager: TotpManager, factors: MemoryTotpStore, clock: FrozenClock
) -> None:
    """Copying alice's sealed secret into bob's record does not let alice's codes sign bob in."""
    secret = await enrolled(manager, clock)
    alice = await factors.get_active("alice")
    assert alice is not None
    await factors.set_pending(alice.__class__("bob", alice.sealed_secret, clock.now()))
    with pytest.raises(InvalidMfaCode):
        await manager.confirm("bob", code_at(secret, int(clock.now()) // 30))


async def test_re_enrolment_keeps_the_old_factor_until_confirmed(
    manager: TotpManager, clock: FrozenClock
) -> None:
    """Starting a new enrolment does not disable the active factor; confirming swaps it."""
    old = await enrolled(manager, clock)
    new = await manager.begin_enrolment("alice", account_name="alice@example.test")
    step = int(clock.now()) // 30
    assert await manager.verify("alice", code_at(old, step)) == step
    clock.advance(30)
    await manager.confirm("alice", code_at(new.secret, step + 1))
    clock.advance(30)
    with pytest.raises(InvalidMfaCode):
        await manager.verify("alice", code_at(old, step + 2))
    assert await manager.verify("alice", code_at(new.secret, step + 2)) == step + 2


async def test_remove_disables_the_factor(manager: TotpManager, clock: FrozenClock) -> None:
    """After removal no code is accepted."""
    secret = await enrolled(manager, clock)
    assert await manager.remove("alice")
    with pytest.raises(InvalidMfaCode):
        await manager.verify("alice", code_at(secret, int(clock.now()) // 30))
    assert not await manager.remove("alice")
