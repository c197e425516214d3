"""Keep secret links and addresses out of logs.

Mail carries links whose query holds a single-use secret (a password-reset
token). Log lines name the mail kind and :func:`recipient_tag`, a short keyed
hash that lets an operator correlate lines about one recipient without the
address itself. :func:`redact_urls` and :class:`RedactingFilter` are the safety
net for anything else: they cut the query and fragment off every URL in a text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

__all__ = ["RedactingFilter", "recipient_tag", "redact_urls"]

_URL = re.compile(r"(?i)\b((?:https?|smtps?)://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
#: Per-process key when the caller has none: tags then correlate within one process.
_PROCESS_KEY = secrets.token_bytes(32)


def recipient_tag(address: str, *, key: bytes | None = None) -> str:
    """A 12-hex-digit keyed hash of ``address`` (case-insensitive) for log lines.

    Keyed (HMAC-SHA-256) so that someone reading logs cannot confirm a guessed
    address by hashing it. Pass a stable ``key`` to correlate across instances.
    """
    digest = hmac.new(key or _PROCESS_KEY, address.strip().lower().encode(), hashlib.sha256)
    return "rcpt-" + digest.hexdigest()[:12]


def redact_urls(text: str) -> str:
    """Replace the query and fragment of every URL in ``text`` with ``?[redacted]``."""
    return _URL.sub(r"\1?[redacted]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that runs :func:`redact_urls` over each formatted message.

    Install it on keyturn's handlers as defence in depth; the mail code already
    never logs a link.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_urls(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
