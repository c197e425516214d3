"""OAuth ``scope`` syntax (RFC 6749 section 3.3) and allowlists: what a grant may ask for.

Framework-free. The token grants normalize a requested scope here before it is
stored in a refresh family and copied into access tokens, and refuse any value
outside the caller's allowlist (a client's ``allowed_scopes``, or
``--default-scopes`` for keyturn's own first-party use): a scope is only
worth checking in an API if nobody can simply ask for it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from keyturn.errors import InvalidScope

__all__ = ["check_allowed_scope", "is_scope_token", "normalize_scope", "scope_list"]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 section 3.3
_MAX_SCOPE = 1024


def is_scope_token(value: object) -> bool:
    """Whether ``value`` is one scope value RFC 6749 allows (at most 128 characters)."""
    return isinstance(value, str) and _SCOPE_TOKEN.fullmatch(value) is not None


def normalize_scope(scope: str | None) -> str:
    """A requested ``scope`` as space-separated unique values, in request order.

    Raises:
        InvalidScope: a value has characters RFC 6749 forbids, or it is too long.
    """
    if not scope:
        return ""
    if not isinstance(scope, str) or len(scope) > _MAX_SCOPE:
        raise InvalidScope()
    values: list[str] = []
    for value in scope.split(" "):
        if not value:
            continue
        if not is_scope_token(value):
            raise InvalidScope()
        if value not in values:
            values.append(value)
    return " ".join(values)


def scope_list(values: Iterable[str]) -> tuple[str, ...]:
    """Scope values for an allowlist, unique, in the order given.

    Raises:
        InvalidScope: a value is not a scope token (RFC 6749 section 3.3).
    """
    unique: dict[str, None] = {}
    for value in values:
        if not is_scope_token(value):
            raise InvalidScope(f"{value!r} is not an OAuth scope (RFC 6749 section 3.3).")
        unique[value] = None
    return tuple(unique)


def check_allowed_scope(scope: str, allowed: Collection[str]) -> None:
    """Refuse a normalized ``scope`` with any value outside ``allowed``.

    Raises:
        InvalidScope: a requested value is not in the allowlist.
    """
    if any(value not in allowed for value in scope.split()):
        raise InvalidScope()
