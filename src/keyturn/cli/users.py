"""``keyturn user add|list|disable|enable``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from rich.table import Table

from keyturn.cli.console import stdout
from keyturn.cli.options import settings_options
from keyturn.clock import isoformat
from keyturn.errors import InvalidRequest
from keyturn.runtime import Keyturn
from keyturn.settings import Settings

T = TypeVar("T")


def run_with_keyturn(settings: Settings, action: Callable[[Keyturn], Awaitable[T]]) -> T:
    """Open keyturn's stores, run ``action``, close them again."""

    async def runner() -> T:
        async with Keyturn(settings) as keyturn:
            return await action(keyturn)

    return asyncio.run(runner())


def read_password(from_stdin: bool) -> str:
    """The new password: one line from stdin, or asked twice on the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise InvalidRequest("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise InvalidRequest("no terminal to ask for the password: use --password-stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def user() -> None:
    """Manage accounts."""


@user.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="Grant a role (repeatable).")
@settings_options
def add(email: str, password_stdin: bool, roles: tuple[str, ...], settings: Settings) -> None:
    """Create an account (asks for the password twice unless --password-stdin)."""
    password = read_password(password_stdin)

    async def action(keyturn: Keyturn) -> str:
        created = await keyturn.accounts.register(email, password, roles=roles)
        return created.email

    stdout.print(f"created {run_with_keyturn(settings, action)}")


@user.command("list")
@settings_options
def list_users(settings: Settings) -> None:
    """Show every account."""
    users = run_with_keyturn(settings, lambda keyturn: keyturn.accounts.list())
    table = Table("email", "id", "roles", "status", "created")
    for account in users:
        table.add_row(
            account.email,
            account.id,
            ",".join(account.roles) or "-",
            "disabled" if account.disabled else "active",
            isoformat(account.created_at),
        )
    stdout.print(table)


def _set_disabled(email: str, disabled: bool, settings: Settings) -> None:
    async def action(keyturn: Keyturn) -> str:
        # Through the auth service, so disabling also ends the user's sessions
        # and both actions are audited.
        if disabled:
            changed = await keyturn.auth.disable_user(email)
        else:
            changed = await keyturn.auth.enable_user(email)
        return changed.email

    changed_email = run_with_keyturn(settings, action)
    stdout.print(f"{'disabled' if disabled else 'enabled'} {changed_email}")


@user.command("disable")
@click.argument("email")
@settings_options
def disable(email: str, settings: Settings) -> None:
    """Disable an account: it can no longer sign in, and its sessions end."""
    _set_disabled(email, True, settings)


@user.command("enable")
@click.argument("email")
@settings_options
def enable(email: str, settings: Settings) -> None:
    """Enable a disabled account again."""
    _set_disabled(email, False, settings)
