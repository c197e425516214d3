"""``keyturn``: the operator's command line.

Every command reads the same settings as ``serve`` (flags, ``KEYTURN_*``
variables, ``--config`` TOML). Every failure is one line on stderr and a
non-zero exit: 2 for bad usage or configuration, 1 for everything else.
"""

from __future__ import annotations

import sys

import click

from keyturn.cli.bench import bench
from keyturn.cli.clients import client
from keyturn.cli.console import fail
from keyturn.cli.keys import key
from keyturn.cli.mail import mail  # mail (#14)
from keyturn.cli.serve import migrate, serve
from keyturn.cli.sessions import session
from keyturn.cli.tokens import token
from keyturn.cli.users import user
from keyturn.errors import ConfigurationError, KeyturnError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keyturn")
def cli() -> None:
    """keyturn: server-side sessions and signed tokens on one user base."""


cli.add_command(serve)
cli.add_command(migrate)
cli.add_command(user)
cli.add_command(session)
cli.add_command(key)
cli.add_command(token)
cli.add_command(client)
cli.add_command(bench)
cli.add_command(mail)  # mail (#14)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``keyturn`` script."""
    try:
        cli.main(args=argv, prog_name="keyturn", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", code=1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), code=2)
    except ConfigurationError as exc:
        fail(exc.detail, code=2)
    except KeyturnError as exc:
        fail(exc.detail, code=1)
    except KeyboardInterrupt:
        fail("interrupted", code=130)
