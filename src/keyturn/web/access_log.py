"""Keep credentials that arrive in URLs out of the server's log lines.

keyturn never accepts a credential in a query string, but a client may still
send one (``?access_token=...``, an OAuth ``code``, a ``refresh_token``), and
uvicorn writes the full request line, query included, to its access log (and
WebSocket handshakes to its error log). :class:`RedactCredentials` is a logging
filter that replaces the values of :data:`SENSITIVE_PARAMETERS` with
``[redacted]`` in every record of uvicorn's loggers before any handler formats
it; :func:`log_config` is uvicorn's default logging configuration with that
filter on, which ``keyturn serve`` passes to uvicorn (so each worker process
installs it too).
"""

from __future__ import annotations

import copy
import logging
import re
import urllib.parse
from typing import Any

__all__ = ["REDACTED", "SENSITIVE_PARAMETERS", "RedactCredentials", "log_config", "redact_query"]

#: Query parameters whose values are credentials (compared case-insensitively,
#: after percent-decoding the name).
SENSITIVE_PARAMETERS = frozenset(
    {"access_token", "code", "token", "refresh_token", "id_token_hint", "client_secret"}
)

#: What a redacted value becomes.
REDACTED = "[redacted]"

#: One ``name=value`` pair of a query: after ``?`` or ``&``, up to the next
#: separator, fragment, whitespace or quote.
_PAIR = re.compile(r"(?<=[?&])([^=&#\s\"']+)=([^&#\s\"']*)")


def _redact_pair(match: re.Match[str]) -> str:
    name = match.group(1)
    if urllib.parse.unquote_plus(name).lower() in SENSITIVE_PARAMETERS:
        return f"{name}={REDACTED}"
    return match.group(0)


def redact_query(text: str) -> str:
    """``text`` with the value of every sensitive query parameter replaced by
    :data:`REDACTED`; other parameters, and text without a query, unchanged."""
    if "?" not in text or "=" not in text:  # the common case: no query at all
        return text
    return _PAIR.sub(_redact_pair, text)


class RedactCredentials(logging.Filter):
    """A logging filter that redacts sensitive query parameters in a record's
    message and string arguments (uvicorn passes the request path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactCredentials`
    on its loggers, so no handler ever sees a credential from a URL."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_credentials"] = {"()": f"{__name__}.RedactCredentials"}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = config["loggers"].setdefault(name, {})
        logger["filters"] = [*logger.get("filters", []), "redact_credentials"]
    # Mail (#14): every handler also cuts the query off any URL a line holds
    # (keyturn.mail.redact), so no secret link reaches a log by any logger.
    config["filters"]["redact_urls"] = {"()": "keyturn.mail.redact.RedactingFilter"}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "redact_urls"]
    return config
