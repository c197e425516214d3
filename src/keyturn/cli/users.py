"""``keyturn user add|list|disable|enable|import``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import typing
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from keyturn.accounts.user_import import ImportRecord, parse_import_lines
from keyturn.cli.console import fail, note, stdout
from keyturn.cli.options import settings_options
from keyturn.clock import isoformat
from keyturn.errors import EmailTaken, InvalidRequest
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


@user.command("mfa-reset")
@click.argument("email")
@settings_options
def mfa_reset(email: str, settings: Settings) -> None:
    """Remove every second factor of an account (authenticator app, recovery
    codes, passkeys): it signs in with the password alone again. Audited."""

    async def action(keyturn: Keyturn) -> str:
        from keyturn.accounts.emails import normalize_email
        from keyturn.errors import InvalidEmail, UserNotFound

        address = email
        with contextlib.suppress(InvalidEmail):
            address = normalize_email(email)
        found = await keyturn.storage.users.get_by_email(address)
        if found is None:
            raise UserNotFound()
        await keyturn.mfa_factors.reset(found)
        return found.email

    stdout.print(f"removed every second factor of {run_with_keyturn(settings, action)}")


#: Files with at least this many accounts get a progress bar (on a terminal).
PROGRESS_THRESHOLD = 200
#: At most this many invalid lines are listed one by one.
MAX_LISTED_ERRORS = 20


@user.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@settings_options
def import_users(file: typing.TextIO, settings: Settings) -> None:
    """Import accounts with existing password hashes from a JSON-lines FILE ('-' for stdin).

    Each line: {"email": …, "password_hash": …, "roles": [...]} (roles optional).
    bcrypt ($2a$, $2b$, $2y$), Django PBKDF2 (pbkdf2_sha256$…) and argon2 hashes are
    accepted; they become argon2id at each user's next sign-in. Every line is
    checked first, and nothing is imported if one is invalid. Addresses that
    already have an account are skipped.
    """
    try:
        records, errors, repeated = parse_import_lines(file)
    except UnicodeDecodeError:
        fail(f"{file.name}: not UTF-8 text; nothing imported")
    for error in errors[:MAX_LISTED_ERRORS]:
        note(f"line {error.line}: {error.reason}")
    if errors:
        more = len(errors) - MAX_LISTED_ERRORS
        if more > 0:
            note(f"... and {more} more invalid lines")
        fail(f"{file.name}: {len(errors)} invalid line(s); nothing imported")
    for record in repeated:
        note(f"line {record.line}: {record.email} appears earlier in the file, skipped")
    imported, existing = run_with_keyturn(settings, lambda kt: _import_records(kt, records))
    formats: dict[str, int] = {}
    for record in imported:
        formats[record.hash_format] = formats.get(record.hash_format, 0) + 1
    by_format = ", ".join(f"{name}: {count}" for name, count in sorted(formats.items()))
    skipped = len(existing) + len(repeated)
    stdout.print(
        f"imported {len(imported)} account(s)"
        + (f" ({by_format})" if by_format else "")
        + f", skipped {skipped} duplicate(s)"
    )


async def _import_records(
    keyturn: Keyturn, records: list[ImportRecord]
) -> tuple[list[ImportRecord], list[ImportRecord]]:
    """Store each record; ``(imported, already_existing)``."""
    imported: list[ImportRecord] = []
    existing: list[ImportRecord] = []
    console = Console(stderr=True)
    show = console.is_terminal and len(records) >= PROGRESS_THRESHOLD
    columns = (
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not show, transient=True) as progress:
        task = progress.add_task("import", total=len(records))
        for record in records:
            try:
                await keyturn.accounts.import_user(
                    record.email, record.password_hash, roles=record.roles
                )
            except EmailTaken:
                existing.append(record)
                progress.console.print(
                    f"keyturn: line {record.line}: {record.email} already has an account, skipped",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
            else:
                imported.append(record)
            progress.advance(task)
    keyturn.audit.record(
        "users_imported",
        imported=len(imported),
        skipped=len(existing),
    )
    return imported, existing
