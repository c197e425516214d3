"""The two-step sign-in as every sign-in path uses it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from tests.unit.mfa.softauthn import SoftAuthenticator
from tests.unit.mfa.test_totp import AesSealer

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidGrant, InvalidMfaCode, InvalidRequest, MfaRequired
from keyturn.mfa.challenge import MfaChallenges
from keyturn.mfa.flow import SecondFactors, TwoStepSignIn
from keyturn.mfa.memory import (
    MemoryMfaChallengeStore,
    MemoryPasskeyStore,
    MemoryRecoveryCodeStore,
    MemoryTotpReplayStore,
    MemoryTotpStore,
    MemoryWebAuthnChallengeStore,
)
from keyturn.mfa.recovery import RecoveryCodes
from keyturn.mfa.totp import TotpManager, code_at
from keyturn.mfa.webauthn import Passkeys, PasskeyUser, RelyingParty

ORIGIN = "https://login.example.test"
BROWSER = "binding"


@dataclass
class World:
    clock: FrozenClock
    factors: SecondFactors
    flow: TwoStepSignIn


@pytest.fixture
def world() -> World:
    clock = FrozenClock(1_800_000_000.0)
    factors = SecondFactors(
        totp=TotpManager(
            MemoryTotpStore(), MemoryTotpReplayStore(), AesSealer(), clock, issuer="Example"
        ),
        recovery=RecoveryCodes(MemoryRecoveryCodeStore(), clock, hash_key=secrets.token_bytes(32)),
        passkeys=Passkeys(
            MemoryPasskeyStore(),
            MemoryWebAuthnChallengeStore(),
            clock,
            rp=RelyingParty.from_issuer(ORIGIN),
        ),
    )
    return World(
        clock, factors, TwoStepSignIn(factors, MfaChallenges(MemoryMfaChallengeStore(), clock))
    )


async def enrol_totp(world: World) -> tuple[str, list[str]]:
    enrolment = await world.factors.totp.begin_enrolment("alice", account_name="alice@example.test")
    await world.factors.totp.confirm(
        "alice", code_at(enrolment.secret, int(world.clock.now()) // 30)
    )
    codes = await world.factors.recovery.regenerate("alice")
    world.clock.advance(30)
    return enrolment.secret, codes


async def test_a_user_without_a_second_factor_signs_in_with_the_password(world: World) -> None:
    """No factor: no mfa_token, and the password grant lets the user through."""
    assert await world.flow.after_password("alice", client_binding=BROWSER) is None
    await world.flow.refuse_if_enrolled("alice")


async def test_totp_user_gets_an_mfa_token_then_a_multi_factor_sign_in(world: World) -> None:
    """A correct password yields an mfa_token listing totp and recovery codes; a TOTP
    code then finishes the sign-in with amr pwd+otp+mfa."""
    secret, _ = await enrol_totp(world)
    issued = await world.flow.after_password("alice", client_binding=BROWSER, payload="next=/")
    assert issued is not None
    assert issued.methods == ("totp", "recovery_code")
    code = code_at(secret, int(world.clock.now()) // 30)
    done = await world.flow.finish(issued.token, client_binding=BROWSER, code=code)
    assert (done.user_id, done.amr, done.method, done.payload) == (
        "alice",
        ("pwd", "otp", "mfa"),
        "totp",
        "next=/",
    )


async def test_a_recovery_code_finishes_the_sign_in(world: World) -> None:
    """A recovery code is accepted in place of the TOTP code, once."""
    _, codes = await enrol_totp(world)
    issued = await world.flow.after_password("alice", client_binding=BROWSER)
    assert issued is not None
    done = await world.flow.finish(issued.token, client_binding=BROWSER, recovery_code=codes[0])
    assert done.method == "recovery_code"
    assert await world.factors.recovery.remaining("alice") == 9


async def test_a_wrong_code_reports_the_attempts_left(world: World) -> None:
    """A wrong TOTP code is InvalidMfaCode with attempts_left, for the throttle and the page."""
    await enrol_totp(world)
    issued = await world.flow.after_password("alice", client_binding=BROWSER)
    assert issued is not None
    with pytest.raises(InvalidMfaCode) as caught:
        await world.flow.finish(issued.token, client_binding=BROWSER, code="abcdef")
    assert caught.value.attempts_left == 4


async def test_exactly_one_second_factor_is_taken(world: World) -> None:
    """Sending none, or two, second factors is a malformed request."""
    _, codes = await enrol_totp(world)
    issued = await world.flow.after_password("alice", client_binding=BROWSER)
    assert issued is not None
    with pytest.raises(InvalidRequest):
        await world.flow.finish(issued.token, client_binding=BROWSER)
    with pytest.raises(InvalidRequest):
        await world.flow.finish(
            issued.token, client_binding=BROWSER, code="123456", recovery_code=codes[0]
        )


async def test_a_passkey_is_a_second_factor(world: World) -> None:
    """With a passkey, the mfa_token offers webauthn; an assertion finishes the sign-in."""
    passkeys = world.factors.passkeys
    assert passkeys is not None
    authenticator = SoftAuthenticator(origin=ORIGIN, user_verification=False)
    options = await passkeys.registration_options(PasskeyUser("alice", "alice@example.test"))
    await passkeys.verify_registration("alice", authenticator.create(options))
    issued = await world.flow.after_password("alice", client_binding=BROWSER)
    assert issued is not None and issued.methods == ("webauthn",)
    request = await world.flow.webauthn_options(issued.token, client_binding=BROWSER)
    done = await world.flow.finish(
        issued.token, client_binding=BROWSER, webauthn=authenticator.get(request)
    )
    assert (done.amr, done.clone_warning) == (("pwd", "hwk", "mfa"), False)


async def test_the_password_grant_refuses_enrolled_users(world: World) -> None:
    """The password grant answers mfa_required, an invalid_grant, for a user with a factor."""
    await enrol_totp(world)
    with pytest.raises(MfaRequired) as caught:
        await world.flow.refuse_if_enrolled("alice")
    assert isinstance(caught.value, InvalidGrant)
    assert caught.value.code == "mfa_required"


async def test_mfa_reset_removes_every_factor(world: World) -> None:
    """After a reset the password alone signs the user in again."""
    await enrol_totp(world)
    await world.factors.reset("alice")
    assert await world.factors.methods("alice") == ()
    assert await world.flow.after_password("alice", client_binding=BROWSER) is None
