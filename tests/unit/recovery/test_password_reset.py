"""Password reset (SPEC "E-mail and account recovery"): single use, expiry, the
newer-request rule, password changes, and what a reset ends, on an injected clock."""

from __future__ import annotations

import pytest
from tests.unit.recovery.conftest import NEW_PASSWORD, PASSWORD, deliver, sent, token_in

from keyturn.clock import FrozenClock
from keyturn.errors import (
    InvalidCredentials,
    InvalidResetToken,
    NotAuthenticated,
    TooManyAttempts,
    WeakPassword,
)
from keyturn.mail.mailer import MemoryMailer
from keyturn.outbox.store import JobState
from keyturn.runtime import Keyturn

EMAIL = "alice@example.com"
RESET_SUBJECT = "Reset your"


async def reset_token(kt: Keyturn, mailer: MemoryMailer, email: str = EMAIL) -> str:
    await kt.recovery.request_password_reset(email, ip="192.0.2.1")
    await deliver(kt)
    return token_in(sent(mailer, RESET_SUBJECT)[-1])


async def test_a_reset_sets_the_password_and_ends_every_sign_in(
    kt: Keyturn, mailer: MemoryMailer
) -> None:
    """The mailed link sets the password; every session dies, access tokens issued
    before are cut off, the old password fails, the new one works, and a notice goes out."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    _, issued = await kt.auth.sign_in(EMAIL, PASSWORD, ip="192.0.2.1", user_agent=None)
    token = await reset_token(kt, mailer)
    link = [
        line for line in sent(mailer, RESET_SUBJECT)[0].as_string().splitlines() if "token=" in line
    ]
    assert link and link[0].strip().startswith("https://id.example/password/reset?token=")
    await kt.recovery.reset_password(token, NEW_PASSWORD, ip="192.0.2.9")
    with pytest.raises(NotAuthenticated):
        await kt.sessions.validate(issued.secret)
    assert kt.revocations.cutoff(user.id) is not None
    with pytest.raises(InvalidCredentials):
        await kt.accounts.authenticate(EMAIL, PASSWORD)
    assert (await kt.accounts.authenticate(EMAIL, NEW_PASSWORD)).id == user.id
    await deliver(kt)
    assert len(sent(mailer, "password was reset")) == 1


async def test_a_reset_token_works_once(kt: Keyturn, mailer: MemoryMailer) -> None:
    """Reusing a spent link is invalid_reset_token."""
    await kt.accounts.register(EMAIL, PASSWORD)
    token = await reset_token(kt, mailer)
    await kt.recovery.reset_password(token, NEW_PASSWORD, ip=None)
    with pytest.raises(InvalidResetToken):
        await kt.recovery.reset_password(token, "yet another passphrase", ip=None)


async def test_a_reset_token_expires_after_the_ttl(
    kt: Keyturn, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    """--password-reset-ttl (1800 s) after the mail, the link is dead."""
    await kt.accounts.register(EMAIL, PASSWORD)
    token = await reset_token(kt, mailer)
    clock.advance(kt.settings.password_reset_ttl)
    with pytest.raises(InvalidResetToken):
        await kt.recovery.reset_password(token, NEW_PASSWORD, ip=None)


async def test_a_newer_request_kills_the_older_link(
    kt: Keyturn, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    """Only the newest link works."""
    await kt.accounts.register(EMAIL, PASSWORD)
    older = await reset_token(kt, mailer)
    clock.advance(1)
    newer = await reset_token(kt, mailer)
    assert older != newer
    with pytest.raises(InvalidResetToken):
        await kt.recovery.reset_password(older, NEW_PASSWORD, ip=None)
    await kt.recovery.reset_password(newer, NEW_PASSWORD, ip=None)


async def test_a_password_change_kills_the_reset_link(kt: Keyturn, mailer: MemoryMailer) -> None:
    """Changing the password (signed in) ends outstanding reset links and mails a notice."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    token = await reset_token(kt, mailer)
    await kt.accounts.change_password(user.id, PASSWORD, NEW_PASSWORD)
    with pytest.raises(InvalidResetToken):
        await kt.recovery.reset_password(token, "yet another passphrase", ip=None)
    await deliver(kt)
    assert len(sent(mailer, "password was changed")) == 1


async def test_a_weak_password_does_not_spend_the_link(kt: Keyturn, mailer: MemoryMailer) -> None:
    """A password the policy refuses leaves the token usable."""
    await kt.accounts.register(EMAIL, PASSWORD)
    token = await reset_token(kt, mailer)
    with pytest.raises(WeakPassword):
        await kt.recovery.reset_password(token, "short", ip=None)
    await kt.recovery.reset_password(token, NEW_PASSWORD, ip=None)


async def test_malformed_and_unknown_tokens_are_refused_alike(kt: Keyturn) -> None:
    """Garbage, the wrong length and a well-formed stranger are one error."""
    for token in ("", "x" * 43, "not a token", "A" * 500):
        with pytest.raises(InvalidResetToken):
            await kt.recovery.reset_password(token, NEW_PASSWORD, ip=None)


async def test_an_unknown_address_queues_the_same_job_and_mails_nothing(
    kt: Keyturn, mailer: MemoryMailer
) -> None:
    """The request path does one and the same thing (one queued job) for a known and
    an unknown address; only the worker finds there is nobody to mail."""
    await kt.accounts.register(EMAIL, PASSWORD)
    await deliver(kt)
    mailer.sent.clear()
    outbox = kt.mail.outbox
    before = len(outbox._jobs)  # type: ignore[attr-defined]
    await kt.recovery.request_password_reset("nobody@example.com", ip="192.0.2.1")
    await kt.recovery.request_password_reset(EMAIL, ip="192.0.2.1")
    jobs = list(outbox._jobs.values())[before:]  # type: ignore[attr-defined]
    assert [job.kind for job in jobs] == ["password_reset_request"] * 2
    await deliver(kt)
    assert [str(message["To"]) for message in mailer.sent] == [EMAIL]
    for job in jobs:
        done = await outbox.get(job.id)
        assert done is not None and done.state is JobState.SENT


async def test_a_reset_clears_the_sign_in_throttle(kt: Keyturn, mailer: MemoryMailer) -> None:
    """An account locked by failed sign-ins can sign in right after a reset."""
    await kt.accounts.register(EMAIL, PASSWORD)
    for _ in range(kt.settings.login_max_account_failures):
        with pytest.raises(InvalidCredentials):
            await kt.auth.check_credentials(
                EMAIL, "wrong password!", ip="198.51.100.7", user_agent=None
            )
    with pytest.raises(TooManyAttempts):
        await kt.auth.check_credentials(EMAIL, PASSWORD, ip="198.51.100.8", user_agent=None)
    token = await reset_token(kt, mailer)
    await kt.recovery.reset_password(token, NEW_PASSWORD, ip=None)
    user = await kt.auth.check_credentials(EMAIL, NEW_PASSWORD, ip="198.51.100.8", user_agent=None)
    assert user.email == EMAIL


async def test_reset_hooks_run_with_the_user_id(kt: Keyturn, mailer: MemoryMailer) -> None:
    """The marked MFA hook (#15) hears of every reset, to end pending challenges."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    heard: list[str] = []

    async def hook(user_id: str) -> None:
        heard.append(user_id)

    kt.recovery.reset_hooks.append(hook)
    await kt.recovery.reset_password(await reset_token(kt, mailer), NEW_PASSWORD, ip=None)
    assert heard == [user.id]


async def test_requests_are_throttled_per_address(kt: Keyturn) -> None:
    """After --reset-max-per-address requests for one address (known or not), 429."""
    for _ in range(kt.settings.reset_max_per_address):
        await kt.recovery.request_password_reset("nobody@example.com", ip="192.0.2.1")
    with pytest.raises(TooManyAttempts):
        await kt.recovery.request_password_reset("NOBODY@example.com", ip="192.0.2.2")


async def test_a_reset_ends_a_half_finished_two_step_sign_in(
    kt: Keyturn, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    """An mfa_token earned with the old password cannot be finished after a reset
    (#15 with #14): the reset ends the user's pending two-step sign-ins."""
    import pyotp

    from keyturn.errors import InvalidMfaToken

    user = await kt.accounts.register(EMAIL, PASSWORD)
    enrolment = await kt.mfa_factors.begin_totp(user)
    totp = pyotp.TOTP(enrolment.secret)
    await kt.mfa_factors.confirm_totp(user, totp.at(clock.now()), ip=None)
    clock.advance(60)  # the next code is a new time step
    started = await kt.mfa_auth.sign_in(
        EMAIL,
        PASSWORD,
        remember=False,
        ip="192.0.2.1",
        user_agent=None,
        replaces_secret=None,
        client_binding="browser-1",
    )
    assert started.pending is not None
    await kt.recovery.reset_password(await reset_token(kt, mailer), NEW_PASSWORD, ip=None)
    with pytest.raises(InvalidMfaToken):
        await kt.mfa_auth.finish(
            started.pending.token,
            client_binding="browser-1",
            code=totp.at(clock.now()),
            ip="192.0.2.1",
            user_agent=None,
            replaces_secret=None,
        )
