"""``keyturn key list|rotate``: the signing keys in the database.

A rotation is written to the database and published on the fan-out bus
(:mod:`keyturn.fanout.instance`): running servers re-read the keys within milliseconds,
within the staleness bound (``--staleness-bound``) if the bus is down, and at
once when a token names a ``kid`` they have not seen yet.
"""

from __future__ import annotations

import click
from rich.table import Table

from keyturn.cli.console import note, stdout
from keyturn.cli.options import settings_options
from keyturn.cli.users import run_with_keyturn
from keyturn.clock import isoformat
from keyturn.keys.records import SigningKey
from keyturn.keys.rotation import key_state
from keyturn.runtime import Keyturn
from keyturn.settings import Settings, SigningAlgorithm


def _announce_generated_kek(keyturn: Keyturn) -> None:
    if keyturn.generated_kek_file is not None:
        note(f"generated a key-encryption key in {keyturn.generated_kek_file}; back it up")


@click.group()
def key() -> None:
    """List and rotate token signing keys."""


@key.command("list")
@settings_options
def list_keys(settings: Settings) -> None:
    """Show every signing key, newest first, and whether it still signs or verifies."""

    async def action(keyturn: Keyturn) -> tuple[list[SigningKey], float, float]:
        _announce_generated_kek(keyturn)
        return await keyturn.keys.list(), keyturn.clock.now(), keyturn.keys.window

    keys, now, window = run_with_keyturn(settings, action)
    table = Table("kid", "alg", "created", "retired", "state")
    for record in keys:
        table.add_row(
            record.kid,
            record.alg,
            isoformat(record.created_at),
            "-" if record.retired_at is None else isoformat(record.retired_at),
            key_state(record, now=now, window=window),
        )
    stdout.print(table)


@key.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(["EdDSA", "ES256", "RS256"]),
    default=None,
    help="Algorithm of the new key (default: --signing-alg).",
)
@settings_options
def rotate(alg: SigningAlgorithm | None, settings: Settings) -> None:
    """Make a new key sign at once; old keys verify until their last token expires."""

    async def action(keyturn: Keyturn) -> SigningKey:
        _announce_generated_kek(keyturn)
        previous = keyturn.keys.ring.signing_key.kid
        new = await keyturn.keys.rotate(alg)
        keyturn.audit.record("key_rotated", kid=new.kid, alg=new.alg, previous_kid=previous)
        return new

    new = run_with_keyturn(settings, action)
    stdout.print(new.kid)
