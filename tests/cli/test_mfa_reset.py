"""``keyturn user mfa-reset EMAIL``: every second factor removed, audited, and one
clear line for an unknown address."""

from __future__ import annotations

import asyncio

import pyotp
from tests.support import Run

from keyturn.runtime import Keyturn
from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"


async def _enrol(database_url: str, email: str) -> None:
    async with Keyturn(Settings(database_url=database_url)) as keyturn:
        user = await keyturn.storage.users.get_by_email(email)
        assert user is not None
        enrolment = await keyturn.mfa_factors.begin_totp(user)
        await keyturn.mfa_factors.confirm_totp(user, pyotp.TOTP(enrolment.secret).now(), ip=None)
        assert (await keyturn.mfa_factors.status(user.id)).enabled


async def _status(database_url: str, email: str) -> tuple[bool, int]:
    async with Keyturn(Settings(database_url=database_url)) as keyturn:
        user = await keyturn.storage.users.get_by_email(email)
        assert user is not None
        status = await keyturn.mfa_factors.status(user.id)
        return status.enabled, status.recovery_codes_left


def test_mfa_reset_removes_totp_and_recovery_codes(run: Run, database_url: str) -> None:
    """After mfa-reset the account has no factor and no recovery codes left."""
    email = "mfa@example.com"
    added = run(
        "user", "add", email, "--password-stdin", "--database-url", database_url, stdin=PASSWORD
    )
    assert added.exit_code == 0, added.stderr
    asyncio.run(_enrol(database_url, email))
    reset = run("user", "mfa-reset", "MFA@example.com", "--database-url", database_url)
    assert reset.exit_code == 0, reset.stderr
    assert f"removed every second factor of {email}" in reset.stdout
    assert asyncio.run(_status(database_url, email)) == (False, 0)


def test_mfa_reset_of_an_unknown_address_is_one_line(run: Run, database_url: str) -> None:
    """An unknown address exits non-zero with one line on stderr, no traceback."""
    missing = run("user", "mfa-reset", "nobody@example.com", "--database-url", database_url)
    assert missing.exit_code != 0
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
