"""E-mail verification, --require-verified-email, and e-mail change (#14)."""

from __future__ import annotations

import pytest
from tests.unit.recovery.conftest import PASSWORD, deliver, sent, token_in

from keyturn.clock import FrozenClock
from keyturn.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidVerificationToken,
)
from keyturn.mail.mailer import MemoryMailer
from keyturn.runtime import Keyturn

EMAIL = "alice@example.com"
NEW = "alice.new@example.com"


async def test_registration_mails_a_link_that_verifies_the_address_once(
    kt: Keyturn, mailer: MemoryMailer
) -> None:
    """A new account is unverified and gets a /verify-email link; following it
    verifies the address, and it works once."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    assert not user.email_verified
    await deliver(kt)
    [message] = sent(mailer, "Confirm your e-mail")
    assert (
        str(message["To"]) == EMAIL
        and "https://id.example/verify-email?token=" in message.as_string()
    )
    token = token_in(message)
    await kt.recovery.verify_email(token)
    stored = await kt.accounts.get(user.id)
    assert stored is not None and stored.email_verified
    with pytest.raises(InvalidVerificationToken):
        await kt.recovery.verify_email(token)


async def test_resend_replaces_the_link_and_stops_once_verified(
    kt: Keyturn, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    """Resend issues a new link (the first dies); a verified address gets none."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    await deliver(kt)
    first = token_in(sent(mailer, "Confirm your e-mail")[-1])
    clock.advance(1)
    await kt.recovery.resend_verification(user.id, ip="192.0.2.1")
    await deliver(kt)
    second = token_in(sent(mailer, "Confirm your e-mail")[-1])
    with pytest.raises(InvalidVerificationToken):
        await kt.recovery.verify_email(first)
    await kt.recovery.verify_email(second)
    await kt.recovery.resend_verification(user.id, ip="192.0.2.1")
    await deliver(kt)
    assert len(sent(mailer, "Confirm your e-mail")) == 2


async def test_verification_links_expire(
    kt: Keyturn, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    """--email-verify-ttl after the mail, the link is dead."""
    await kt.accounts.register(EMAIL, PASSWORD)
    await deliver(kt)
    token = token_in(sent(mailer, "Confirm your e-mail")[-1])
    clock.advance(kt.settings.email_verify_ttl)
    with pytest.raises(InvalidVerificationToken):
        await kt.recovery.verify_email(token)


async def test_require_verified_email_refuses_sign_in_after_the_password_check(
    kt: Keyturn, mailer: MemoryMailer
) -> None:
    """With --require-verified-email an unverified account with the right password
    is email_not_verified; a wrong password is still the generic failure; once
    verified, sign-in works."""
    kt.auth.settings = kt.settings.model_copy(update={"require_verified_email": True})
    await kt.accounts.register(EMAIL, PASSWORD)
    with pytest.raises(InvalidCredentials):
        await kt.auth.sign_in(EMAIL, "wrong password!", ip="192.0.2.1", user_agent=None)
    with pytest.raises(EmailNotVerified):
        await kt.auth.sign_in(EMAIL, PASSWORD, ip="192.0.2.1", user_agent=None)
    await deliver(kt)
    await kt.recovery.verify_email(token_in(sent(mailer, "Confirm your e-mail")[-1]))
    user, _ = await kt.auth.sign_in(EMAIL, PASSWORD, ip="192.0.2.1", user_agent=None)
    assert user.email_verified


async def test_an_email_change_takes_effect_from_the_new_address_link(
    kt: Keyturn, mailer: MemoryMailer
) -> None:
    """The link goes to the new address; following it moves the account (verified)
    and the old address gets a notice naming the new one."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    await kt.recovery.request_email_change(user.id, NEW, PASSWORD, ip="192.0.2.1")
    assert (await kt.accounts.get(user.id)).email == EMAIL  # type: ignore[union-attr]
    await deliver(kt)
    [confirm] = sent(mailer, "Confirm your new e-mail")
    assert str(confirm["To"]) == NEW
    assert "https://id.example/email/confirm?token=" in confirm.as_string()
    await kt.recovery.confirm_email_change(token_in(confirm))
    moved = await kt.accounts.users.get_by_email(NEW)
    assert moved is not None and moved.id == user.id and moved.email_verified
    await deliver(kt)
    [notice] = sent(mailer, "e-mail address of your")
    assert str(notice["To"]) == EMAIL and NEW in notice.as_string()


async def test_an_email_change_needs_the_password_and_ignores_taken_addresses(
    kt: Keyturn, mailer: MemoryMailer
) -> None:
    """A wrong password is refused; an address another account has gets no mail
    (and the same answer, so it cannot probe for accounts)."""
    user = await kt.accounts.register(EMAIL, PASSWORD)
    await kt.accounts.register("bob@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        await kt.recovery.request_email_change(user.id, NEW, "wrong password!", ip=None)
    await kt.recovery.request_email_change(user.id, "BOB@example.com", PASSWORD, ip=None)
    await deliver(kt)
    assert sent(mailer, "Confirm your new e-mail") == []
