"""The auth service: sign-in with throttle, fixation defence and audit; sign-out;
password change; operator disable/enable; and its wiring in ``Keyturn``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from keyturn.accounts.auth import AuthService
from keyturn.accounts.passwords import PasswordHasher
from keyturn.audit import AUDIT_LOGGER
from keyturn.clock import FrozenClock
from keyturn.errors import (
    Forbidden,
    InvalidCredentials,
    NotAuthenticated,
    NotFound,
    TooManyAttempts,
)
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryStorage

EMAIL = "Alice@Example.org"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "tricycle umbrella mango"
IP = "192.0.2.10"
UA = "pytest-browser/1.0"


@pytest.fixture
async def keyturn(fast_hasher: PasswordHasher) -> AsyncIterator[Keyturn]:
    """A started Keyturn on memory storage and a frozen clock, with one account."""
    settings = Settings(max_sessions_per_user=3)
    async with Keyturn(
        settings, storage=MemoryStorage(), clock=FrozenClock(), hasher=fast_hasher
    ) as runtime:
        await runtime.accounts.register(EMAIL, PASSWORD)
        yield runtime


@pytest.fixture
def auth(keyturn: Keyturn) -> AuthService:
    """The auth service of that Keyturn."""
    return keyturn.auth


def events(caplog: pytest.LogCaptureFixture, name: str | None = None) -> list[dict[str, object]]:
    """The audit events recorded so far (optionally only those called ``name``)."""
    found = [
        json.loads(record.getMessage()) for record in caplog.records if record.name == AUDIT_LOGGER
    ]
    return [event for event in found if name is None or event["event"] == name]


def audit_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every audit line, joined."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER)


@pytest.fixture(autouse=True)
def capture_audit(caplog: pytest.LogCaptureFixture) -> None:
    """Record audit lines in every test."""
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)


# --- sign-in ------------------------------------------------------------------------------


async def test_sign_in_opens_a_session_and_audits_it(
    auth: AuthService, keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """A right password gives the user and a live session; the audit line has no secret."""
    user, issued = await auth.sign_in(EMAIL.upper(), PASSWORD, ip=IP, user_agent=UA)
    validated = await keyturn.sessions.validate(issued.secret)
    assert validated.user.id == user.id
    [event] = events(caplog, "sign_in")
    assert event["outcome"] == "ok"
    assert event["user_id"] == user.id
    assert event["session"] == issued.session.handle
    assert event["ip"] == IP and event["user_agent"] == UA
    text = audit_text(caplog)
    assert issued.secret not in text and issued.csrf_token not in text and PASSWORD not in text


async def test_sign_in_replaces_the_previous_session_id(
    auth: AuthService, keyturn: Keyturn
) -> None:
    """Signing in with an existing session ends it: a new ID at every login (fixation)."""
    _, first = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    _, second = await auth.sign_in(
        EMAIL, PASSWORD, ip=IP, user_agent=UA, replaces_secret=first.secret
    )
    assert second.secret != first.secret
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(first.secret)
    await keyturn.sessions.validate(second.secret)


async def test_planted_unknown_session_id_is_harmless(auth: AuthService) -> None:
    """A replaces_secret that is no session (planted or garbage) does not break sign-in."""
    _, issued = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA, replaces_secret="x" * 43)
    assert issued.secret != "x" * 43


async def test_wrong_password_and_unknown_account_fail_alike(
    auth: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    """Both raise InvalidCredentials with the same detail, audited without the typed input."""
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.sign_in(EMAIL, "not the password", ip=IP, user_agent=UA)
    with pytest.raises(InvalidCredentials) as unknown:
        await auth.sign_in("nobody@example.org", PASSWORD, ip=IP, user_agent=UA)
    assert wrong.value.detail == unknown.value.detail
    failed = events(caplog, "sign_in")
    assert [event["outcome"] for event in failed] == ["failed", "failed"]
    assert failed[0]["email_hash"] == auth.audit.email_hash(EMAIL)
    text = audit_text(caplog)
    assert "not the password" not in text and "nobody@example.org" not in text


async def test_ten_failures_throttle_even_the_right_password(
    auth: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    """After 10 failures the right password gets TooManyAttempts with ~the window to wait."""
    for _ in range(10):
        with pytest.raises(InvalidCredentials):
            await auth.sign_in(EMAIL, "wrong password!", ip=IP, user_agent=UA)
    with pytest.raises(TooManyAttempts) as caught:
        await auth.sign_in(EMAIL, PASSWORD, ip="198.51.100.1", user_agent=UA)
    assert 890 <= caught.value.retry_after <= 900
    assert events(caplog, "sign_in")[-1]["outcome"] == "throttled"


async def test_a_success_resets_the_account_count(auth: AuthService) -> None:
    """Nine failures, a success, then nine more failures still leave the account open."""
    for _ in range(9):
        with pytest.raises(InvalidCredentials):
            await auth.sign_in(EMAIL, "wrong password!", ip=IP, user_agent=UA)
    await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    for _ in range(9):
        with pytest.raises(InvalidCredentials):
            await auth.sign_in(EMAIL, "wrong password!", ip=IP, user_agent=UA)
    await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)


async def test_evictions_over_the_cap_are_audited(
    auth: AuthService, keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """The fourth sign-in with a cap of three evicts the oldest, and says so."""
    clock = keyturn.clock
    assert isinstance(clock, FrozenClock)
    issued = []
    for _ in range(4):
        issued.append((await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA))[1])
        clock.advance(1)
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(issued[0].secret)
    [evicted] = events(caplog, "session_evicted")
    assert evicted["session"] == issued[0].session.handle
    assert evicted["reason"] == "max_sessions_per_user"


# --- registration -----------------------------------------------------------------------


async def test_register_respects_allow_registration(
    auth: AuthService, fast_hasher: PasswordHasher
) -> None:
    """Open registration creates accounts; closed registration is Forbidden."""
    created = await auth.register("bob@example.org", PASSWORD)
    assert created.email == "bob@example.org"
    async with Keyturn(
        Settings(allow_registration=False), storage=MemoryStorage(), hasher=fast_hasher
    ) as closed:
        with pytest.raises(Forbidden):
            await closed.auth.register("carol@example.org", PASSWORD)


# --- sign-out ---------------------------------------------------------------------------


async def test_sign_out_ends_the_session(
    auth: AuthService, keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """sign_out deletes the session server-side and audits it; again is a no-op."""
    _, issued = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    await auth.sign_out(issued.secret, ip=IP, user_agent=UA)
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(issued.secret)
    await auth.sign_out(issued.secret, ip=IP, user_agent=UA)
    [event] = events(caplog, "sign_out")
    assert event["session"] == issued.session.handle


async def test_sign_out_everywhere_can_keep_the_current_session(
    auth: AuthService, keyturn: Keyturn
) -> None:
    """Every other session ends; the kept one stays valid."""
    user, current = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    _, other = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    assert await auth.sign_out_everywhere(user.id, keep_secret=current.secret) == 1
    await keyturn.sessions.validate(current.secret)
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(other.secret)


async def test_revoke_session_only_for_its_owner(auth: AuthService, keyturn: Keyturn) -> None:
    """A user can end their own session by handle, never another user's."""
    user, issued = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    with pytest.raises(NotFound):
        await auth.revoke_session("someone-else", issued.session.handle)
    await auth.revoke_session(user.id, issued.session.handle)
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(issued.secret)


# --- password change ------------------------------------------------------------------


async def test_change_password_rotates_current_and_ends_the_others(
    auth: AuthService, keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller gets a new session ID, every other session ends, the new password works."""
    _, current = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    _, other = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    renewed = await auth.change_password(current.secret, PASSWORD, NEW_PASSWORD, ip=IP)
    assert renewed.secret != current.secret
    assert renewed.session.handle == current.session.handle
    await keyturn.sessions.validate(renewed.secret)
    for dead in (current, other):
        with pytest.raises(NotAuthenticated):
            await keyturn.sessions.validate(dead.secret)
    with pytest.raises(InvalidCredentials):
        await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    await auth.sign_in(EMAIL, NEW_PASSWORD, ip=IP, user_agent=UA)
    [event] = [e for e in events(caplog, "password_changed") if e["outcome"] == "ok"]
    assert event["sessions_ended"] == 1
    text = audit_text(caplog)
    assert NEW_PASSWORD not in text and PASSWORD not in text and renewed.secret not in text


async def test_change_password_with_wrong_current_changes_nothing(
    auth: AuthService, keyturn: Keyturn
) -> None:
    """A wrong current password is InvalidCredentials; sessions and password stay."""
    _, current = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    with pytest.raises(InvalidCredentials):
        await auth.change_password(current.secret, "wrong password!", NEW_PASSWORD, ip=IP)
    await keyturn.sessions.validate(current.secret)
    await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)


async def test_change_password_needs_a_live_session(auth: AuthService) -> None:
    """A dead or made-up session cannot change a password."""
    with pytest.raises(NotAuthenticated):
        await auth.change_password("y" * 43, PASSWORD, NEW_PASSWORD)


# --- operator actions ------------------------------------------------------------------


async def test_disable_user_ends_every_session_and_blocks_sign_in(
    auth: AuthService, keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """Disabling ends all sessions at once (cached ones too); enabling allows sign-in again."""
    _, first = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    _, second = await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    await keyturn.sessions.validate(first.secret)  # now cached
    disabled = await auth.disable_user(EMAIL.lower())
    assert disabled.disabled
    for dead in (first, second):
        with pytest.raises(NotAuthenticated):
            await keyturn.sessions.validate(dead.secret)
    with pytest.raises(InvalidCredentials):
        await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    [event] = events(caplog, "user_disabled")
    assert event["sessions_ended"] == 2
    await auth.enable_user(EMAIL)
    await auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    assert len(events(caplog, "user_enabled")) == 1


# --- wiring in Keyturn -------------------------------------------------------------------


async def test_keyturn_reports_started_and_reuses_services(fast_hasher: PasswordHasher) -> None:
    """started is True between start() and close(); services are built once."""
    runtime = Keyturn(Settings(), storage=MemoryStorage(), hasher=fast_hasher)
    assert runtime.started is False
    await runtime.start()
    assert runtime.started is True
    assert runtime.auth is runtime.auth
    assert runtime.auth.sessions is runtime.sessions
    await runtime.close()
    assert runtime.started is False


async def test_sql_storage_gets_a_database_throttle(fast_hasher: PasswordHasher) -> None:
    """On SQL storage the throttle counts in the database, on Keyturn's clock."""
    from keyturn.stores.sql.throttle import SqlThrottleStorage

    clock = FrozenClock()
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    async with Keyturn(settings, clock=clock, hasher=fast_hasher) as runtime:
        assert isinstance(runtime.throttle.storage, SqlThrottleStorage)
        assert runtime.throttle.clock is clock
        await runtime.accounts.register(EMAIL, PASSWORD)
        for _ in range(10):
            with pytest.raises(InvalidCredentials):
                await runtime.auth.sign_in(EMAIL, "wrong password!", ip=IP, user_agent=UA)
        with pytest.raises(TooManyAttempts):
            await runtime.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
        clock.advance(settings.login_failure_window)
        await runtime.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
