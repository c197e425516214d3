"""OAuth ``scope`` syntax (RFC 6749 section 3.3): what a grant may ask for.

Framework-free. The token grants normalize a requested scope here before it is
stored in a refresh family and copied into access tokens.
"""

from __future__ import annotations

import re

from keyturn.errors import InvalidScope

__all__ = ["normalize_scope"]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 section 3.3
_MAX_SCOPE = 1024


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
        if _SCOPE_TOKEN.fullmatch(value) is None:
            raise InvalidScope()
        if value not in values:
            values.append(value)
    return " ".join(values)
