"""``keyturn client add | list | show | remove`` (SPEC "Clients").

``add`` registers a client: public unless ``--confidential`` (then a secret is
shown once), grants ``authorization_code`` and ``refresh_token`` unless
``--grant`` names others, scopes the default scopes plus each ``--scope``.
Nothing here prints a secret except ``add``, once.
"""

from __future__ import annotations

import json
from typing import Any

import click

from keyturn.cli.console import fail, note, stdout
from keyturn.cli.options import settings_options
from keyturn.cli.users import run_with_keyturn
from keyturn.oauth.clients import NewClient
from keyturn.oauth.registration import GRANT_TYPES, ID_TOKEN_ALGS
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.records import Client


@click.group()
def client() -> None:
    """Manage OAuth clients."""


def describe(found: Client) -> dict[str, Any]:
    """A client as ``show --json`` prints it: every field but the secret's hash.
    ``allowed_scopes`` and ``grant_types`` are null for a client registered before
    they existed (the default scopes, and the wave-1 password and refresh grants)."""
    return {
        "client_id": found.id,
        "name": found.name,
        "type": "confidential" if found.confidential else "public",
        "first_party": found.first_party,
        "redirect_uris": list(found.redirect_uris),
        "post_logout_redirect_uris": list(found.post_logout_redirect_uris),
        "grant_types": None if found.registered_grants is None else list(found.grant_types),
        "allowed_scopes": (
            None if found.registered_scopes is None else list(found.registered_scopes)
        ),
        "backchannel_logout_uri": found.backchannel_logout_uri,
        "id_token_alg": found.id_token_alg,
        "created_at": found.created_at,
    }


@client.command("add")
@click.argument("name")
@click.option(
    "--confidential/--public",
    default=False,
    help="A confidential client gets a secret (servers, gateways); a public one "
    "(SPA, mobile, CLI app) has none. Default: public.",
)
@click.option("--first-party", is_flag=True, help="Skip the consent screen (keyturn's own apps).")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    metavar="URI",
    help="A redirect URI, matched exactly (repeatable; https, or http on 127.0.0.1 / [::1]).",
)
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    metavar="URI",
    help="Where RP-initiated logout may return to (repeatable).",
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice(GRANT_TYPES),
    help="A grant the client may use (repeatable). Default: authorization_code and refresh_token.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope the client may ask for, besides the default scopes (repeatable; "
    "a space-separated list counts as several).",
)
@click.option("--backchannel-logout-uri", metavar="URI", help="OIDC back-channel logout URI.")
@click.option(
    "--id-token-alg",
    type=click.Choice(ID_TOKEN_ALGS),
    help="Sign this client's ID tokens with this algorithm (default: the signing key's).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id", "client_secret"}.')
@settings_options
def add(
    name: str,
    confidential: bool,
    first_party: bool,
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    grants: tuple[str, ...],
    scopes: tuple[str, ...],
    backchannel_logout_uri: str | None,
    id_token_alg: str | None,
    as_json: bool,
    settings: Settings,
) -> None:
    """Register a client, allowed the default scopes (--default-scopes) plus each
    --scope. A confidential client's secret is shown once, here only."""

    async def action(keyturn: Keyturn) -> NewClient:
        named = [value for given in scopes for value in given.split()]  # "a b" is two
        created = await keyturn.clients.add(
            name,
            confidential=confidential,
            scopes=named,
            first_party=first_party,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            grant_types=grants or None,
            backchannel_logout_uri=backchannel_logout_uri,
            id_token_alg=id_token_alg,
        )
        added = created.client
        keyturn.audit.record(
            "client_added",
            client_id=added.id,
            name=added.name,
            confidential=confidential,
            first_party=first_party,
            grant_types=list(added.grant_types),
            scopes=list(added.allowed_scopes),
            redirect_uris=list(added.redirect_uris),
        )
        return created

    created = run_with_keyturn(settings, action)
    added = created.client
    if "authorization_code" in added.grant_types and not added.redirect_uris:
        note("this client has no --redirect-uri, so it cannot use /oauth/authorize yet")
    if as_json:
        click.echo(json.dumps(created.to_dict()))
        return
    stdout.print(f"client_id     {added.id}")
    stdout.print(f"type          {'confidential' if added.confidential else 'public'}")
    stdout.print(f"grants        {' '.join(added.grant_types)}")
    stdout.print(f"scopes        {' '.join(added.allowed_scopes)}")
    if created.secret is not None:
        stdout.print(f"client_secret {created.secret}")
        stdout.print("Store the secret now: it is kept only as a hash and cannot be shown again.")


@client.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (as show --json).")
@settings_options
def list_clients(as_json: bool, settings: Settings) -> None:
    """Every client, oldest first: id, type, grants and name."""

    async def action(keyturn: Keyturn) -> list[Client]:
        return await keyturn.clients.list()

    found = run_with_keyturn(settings, action)
    if as_json:
        click.echo(json.dumps([describe(each) for each in found]))
        return
    for each in found:
        kind = "confidential" if each.confidential else "public"
        party = " first-party" if each.first_party else ""
        stdout.print(f"{each.id}  {kind}{party}  {','.join(each.grant_types)}  {each.name}")


@client.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print the client as a JSON object.")
@settings_options
def show(client_id: str, as_json: bool, settings: Settings) -> None:
    """One client's registration (never its secret)."""

    async def action(keyturn: Keyturn) -> Client | None:
        return await keyturn.clients.get(client_id)

    found = run_with_keyturn(settings, action)
    if found is None:
        fail(f"no client has id {client_id!r}")
    body = describe(found)
    if as_json:
        click.echo(json.dumps(body))
        return
    for field, value in body.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        elif value is None:
            value = "(wave-1 default)" if field in ("grant_types", "allowed_scopes") else "-"
        stdout.print(f"{field:<26}{value}")


@client.command("remove")
@click.argument("client_id")
@settings_options
def remove(client_id: str, settings: Settings) -> None:
    """Delete a client: its refresh tokens stop working at once."""

    async def action(keyturn: Keyturn) -> bool:
        removed = await keyturn.clients.remove(client_id)
        if removed:
            keyturn.audit.record("client_removed", client_id=client_id)
        return removed

    if not run_with_keyturn(settings, action):
        fail(f"no client has id {client_id!r}")
    stdout.print(f"removed client {client_id}")
