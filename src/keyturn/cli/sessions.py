"""``keyturn session list|revoke|revoke-all``: the operator's view of sign-ins.

Changes are made in the store and published on the fan-out bus
(:mod:`keyturn.fanout.instance`): running servers drop the ended sessions within
milliseconds, and within the staleness bound (``--staleness-bound``) if the bus
is down.
"""

from __future__ import annotations

import click
from rich.table import Table

from keyturn.cli.console import stdout
from keyturn.cli.options import settings_options
from keyturn.cli.users import run_with_keyturn
from keyturn.clock import isoformat
from keyturn.errors import NotFound, UserNotFound
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.records import Session, User


@click.group()
def session() -> None:
    """List and end sign-ins."""


async def _user_by_email(keyturn: Keyturn, email: str) -> User:
    user = await keyturn.storage.users.get_by_email(email)
    if user is None:
        raise UserNotFound(f"no account for {email}")
    return user


@session.command("list")
@click.option("--user", "email", metavar="EMAIL", help="Only this account's sign-ins.")
@settings_options
def list_sessions(email: str | None, settings: Settings) -> None:
    """Show live sign-ins (newest last)."""

    async def action(keyturn: Keyturn) -> list[tuple[Session, str]]:
        now = keyturn.clock.now()
        if email is not None:
            user = await _user_by_email(keyturn, email)
            found = await keyturn.storage.sessions.list_for_user(user.id)
            emails = {user.id: user.email}
        else:
            found = await keyturn.storage.sessions.list_all()
            emails = {user.id: user.email for user in await keyturn.accounts.list()}
        return [(s, emails.get(s.user_id, s.user_id)) for s in found if not s.is_expired(now)]

    table = Table("id", "user", "kind", "created", "last seen", "expires", "ip", "device")
    for found, owner in run_with_keyturn(settings, action):
        table.add_row(
            found.handle,
            owner,
            "browser",
            isoformat(found.created_at),
            isoformat(found.last_seen_at),
            isoformat(found.ends_at),
            found.ip or "-",
            (found.user_agent or "-")[:40],
        )
    stdout.print(table)


@session.command("revoke")
@click.argument("session_id", metavar="ID")
@settings_options
def revoke(session_id: str, settings: Settings) -> None:
    """End one sign-in by the id shown in `keyturn session list`.

    Older ids may start with '-': give those after `--`
    (`keyturn session revoke -- -AbC...`)."""

    async def action(keyturn: Keyturn) -> None:
        found = await keyturn.storage.sessions.get_by_handle(session_id)
        if found is None:
            raise NotFound(f"no sign-in with id {session_id}")
        await keyturn.auth.revoke_session(found.user_id, session_id)

    run_with_keyturn(settings, action)
    stdout.print(f"revoked {session_id}")


@session.command("revoke-all")
@click.argument("email")
@settings_options
def revoke_all(email: str, settings: Settings) -> None:
    """End every sign-in of one account."""

    async def action(keyturn: Keyturn) -> int:
        user = await _user_by_email(keyturn, email)
        return await keyturn.auth.sign_out_everywhere(user.id)

    ended = run_with_keyturn(settings, action)
    stdout.print(f"ended {ended} sign-in{'s' if ended != 1 else ''} of {email}")
