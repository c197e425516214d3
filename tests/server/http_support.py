"""Helpers shared by the in-process HTTP tests: the base URL and a Set-Cookie parser.

The base URL is https so httpx sends the ``Secure`` cookies back, as a browser on
a TLS site (or on localhost) would.
"""

from __future__ import annotations

import httpx

BASE = "https://testserver"


def set_cookies(response: httpx.Response) -> dict[str, tuple[str, dict[str, str]]]:
    """Every ``Set-Cookie`` as name -> (value, attributes with lower-cased names)."""
    cookies: dict[str, tuple[str, dict[str, str]]] = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        parsed: dict[str, str] = {}
        for attribute in attributes:
            key, _, attribute_value = attribute.partition("=")
            parsed[key.lower()] = attribute_value
        cookies[name] = (value, parsed)
    return cookies
