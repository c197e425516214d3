"""``keyturn client add NAME [--confidential] [--scope SCOPE]... [--json]``."""

from __future__ import annotations

import json

import click

from keyturn.cli.console import stdout
from keyturn.cli.options import settings_options
from keyturn.cli.users import run_with_keyturn
from keyturn.oauth.clients import NewClient
from keyturn.runtime import Keyturn
from keyturn.settings import Settings


@click.group()
def client() -> None:
    """Manage OAuth clients."""


@client.command("add")
@click.argument("name")
@click.option(
    "--confidential",
    is_flag=True,
    help="Give the client a secret (servers, gateways, introspection callers).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope the client may ask for, besides the default scopes (repeatable; "
    "a space-separated list counts as several).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id", "client_secret"}.')
@settings_options
def add(
    name: str, confidential: bool, scopes: tuple[str, ...], as_json: bool, settings: Settings
) -> None:
    """Register a client, allowed the default scopes (--default-scopes) plus each
    --scope. A confidential client's secret is shown once, here only."""

    async def action(keyturn: Keyturn) -> NewClient:
        named = [value for given in scopes for value in given.split()]  # "a b" is two
        created = await keyturn.clients.add(name, confidential=confidential, scopes=named)
        keyturn.audit.record(
            "client_added",
            client_id=created.client.id,
            name=created.client.name,
            confidential=confidential,
            scopes=list(created.client.allowed_scopes or ()),
        )
        return created

    created = run_with_keyturn(settings, action)
    if as_json:
        click.echo(json.dumps(created.to_dict()))
        return
    stdout.print(f"client_id     {created.client.id}")
    stdout.print(f"scopes        {' '.join(created.client.allowed_scopes or ())}")
    if created.secret is not None:
        stdout.print(f"client_secret {created.secret}")
        stdout.print("Store the secret now: it is kept only as a hash and cannot be shown again.")
