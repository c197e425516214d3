"""Every :class:`~keyturn.settings.Settings` field as a command-line flag.

The flags are generated from the settings model, so a new setting is a flag,
an environment variable and a TOML key at once. Flags default to ``None`` so
that an unset flag never masks the environment or the config file.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from keyturn.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def _help_for(name: str) -> str:
    field = Settings.model_fields[name]
    env = f"KEYTURN_{name.upper()}"
    default = field.default if field.default_factory is None else None
    secret = ("database_url", "redis_url", "key_encryption_key", "smtp_url")
    if name in secret or default in (None, []):
        return f"[env {env}]"
    if isinstance(default, bool):
        return f"[env {env}; default {'on' if default else 'off'}]"
    return f"[env {env}; default {default}]"


def _metavar(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "|".join(str(arg) for arg in typing.get_args(annotation))
    if annotation is int:
        return "N"
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _metavar(args[0]) if args else "VALUE"
    if annotation is Path:
        return "FILE"
    return "VALUE"


def settings_options(command: F) -> F:
    """Add ``--config`` and one flag per setting to a Click command.

    The decorated function receives a ready :class:`Settings` as ``settings``.
    """
    names = list(Settings.model_fields)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        config = kwargs.pop("config", None)
        flags = {name: kwargs.pop(name, None) for name in names}
        kwargs["settings"] = load_settings(config, **flags)
        return command(*args, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for name in reversed(names):
        annotation = Settings.model_fields[name].annotation
        flag = name.replace("_", "-")
        if _is_bool(annotation):
            option = click.option(f"--{flag}/--no-{flag}", name, default=None, help=_help_for(name))
        else:
            option = click.option(
                f"--{flag}", name, default=None, metavar=_metavar(annotation), help=_help_for(name)
            )
        decorated = option(decorated)
    decorated = click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="TOML file with settings [env KEYTURN_CONFIG].",
    )(decorated)
    return typing.cast(F, decorated)
