"""``keyturn token verify TOKEN``: what the server would say about an access token."""

from __future__ import annotations

import json

import click

from keyturn.cli.console import fail
from keyturn.cli.options import settings_options
from keyturn.cli.users import run_with_keyturn
from keyturn.errors import InvalidToken
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.tokens.claims import AccessTokenClaims


@click.group()
def token() -> None:
    """Inspect access tokens."""


@token.command("verify")
@click.argument("token_text", metavar="TOKEN")
@settings_options
def verify(token_text: str, settings: Settings) -> None:
    """Print the verified claims as JSON, or why the token is rejected (exit 1)."""

    async def action(keyturn: Keyturn) -> AccessTokenClaims | InvalidToken:
        try:
            claims = keyturn.token_verifier.verify(token_text)
            # Revocation (keyturn.revocation): what the server checks in strict mode.
            if settings.revocation_mode == "strict":
                await keyturn.revocations.ensure_fresh()
                keyturn.revocations.check(claims)
        except InvalidToken as rejected:
            return rejected
        return claims

    outcome = run_with_keyturn(settings, action)
    if isinstance(outcome, InvalidToken):
        fail(f"token rejected: {outcome.reason}", code=1)
    click.echo(json.dumps(outcome.to_dict(), indent=2))
