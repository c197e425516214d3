"""``keyturn user mfa-reset EMAIL``: every second factor removed, audited, and one
clear line for an unknown address."""

from __future__ import annotations

import asyncio
import sqlite3

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


def _queued_mail(database_url: str) -> int:
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        [(count,)] = db.execute(
            "SELECT count(*) FROM outbox_jobs WHERE kind = 'mail' AND state = 'pending'"
        )
    return int(count)


def test_mfa_reset_queues_a_notice_to_the_owner(run: Run, database_url: str) -> None:
    """SPEC: mfa-reset is audited and a notice mailed. The CLI runs no dispatcher, so
    the notice waits in the database outbox for the server's to send it."""
    email = "notice@example.com"
    added = run(
        "user", "add", email, "--password-stdin", "--database-url", database_url, stdin=PASSWORD
    )
    assert added.exit_code == 0, added.stderr
    asyncio.run(_enrol(database_url, email))
    before = _queued_mail(database_url)
    reset = run("user", "mfa-reset", email, "--database-url", database_url)
    assert reset.exit_code == 0, reset.stderr
    assert _queued_mail(database_url) == before + 1


def test_mfa_reset_of_an_unknown_address_is_one_line(run: Run, database_url: str) -> None:
    """An unknown address exits non-zero with one line on stderr, no traceback."""
    missing = run("user", "mfa-reset", "nobody@example.com", "--database-url", database_url)
    assert missing.exit_code != 0
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
