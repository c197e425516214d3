"""What a sign-in records about the device behind it, and how it is shown.

Browser sessions and refresh families both keep the caller's IP address and
``User-Agent`` for the sign-ins list. Both come from the client, so they are
cleaned the same way before they are stored: control characters removed (no
forged log or terminal lines), cut to a bounded length, and empty becomes None.
:func:`device_summary` turns a ``User-Agent`` into a short name for listings.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_IP", "MAX_USER_AGENT", "clean_ip", "clean_user_agent", "device_summary"]

#: Longest IP address text stored (an IPv6 literal with a zone fits).
MAX_IP: Final = 64
#: Longest ``User-Agent`` stored; longer ones are cut.
MAX_USER_AGENT: Final = 512
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")


def _clean(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return _CONTROL_CHARACTERS.sub("", value)[:limit] or None


def clean_ip(value: str | None) -> str | None:
    """An IP address as stored: no control characters, at most :data:`MAX_IP`."""
    return _clean(value, MAX_IP)


def clean_user_agent(value: str | None) -> str | None:
    """A ``User-Agent`` as stored: no control characters, at most :data:`MAX_USER_AGENT`."""
    return _clean(value, MAX_USER_AGENT)


_BROWSERS: Final = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "Python (httpx)"),
    ("python-requests/", "Python (requests)"),
)
_SYSTEMS: Final = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_summary(agent: str | None) -> str:
    """A short human name for a ``User-Agent``, such as "Firefox on Linux"."""
    if not agent:
        return "Unknown device"
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or agent[:40]
