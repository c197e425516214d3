"""The ``htu`` comparison of RFC 9449 section 4.3: one normal form for both URIs.

A proof's ``htu`` must equal the request's URI "ignoring any query and fragment
parts", after syntax-based (RFC 3986 section 6.2.2) and scheme-based (6.2.3)
normalisation, so that ``HTTPS://API.Example.com:443/a/./b`` and
``https://api.example.com/a/b`` are the same target while ``/a/b`` and ``/a/b/``, or
another host, port or scheme, are not.

What is normalised: the scheme and host are lower-cased; the default port (80 for
``http``, 443 for ``https``) and an empty port are dropped; an empty path becomes
``/``; percent-encodings are upper-cased and those of unreserved characters decoded;
dot segments are removed (RFC 3986 section 5.2.4). What is refused (``ValueError``):
anything but absolute ``http``/``https`` URIs with a host, user information, any
character outside RFC 3986, a broken percent-encoding, and, in an ``htu`` claim, a
query or fragment (section 4.2 says ``htu`` carries neither).
"""

from __future__ import annotations

import re
import string
from typing import Final
from urllib.parse import urlsplit

__all__ = ["MAX_URI_LENGTH", "normalize_uri"]

#: Longer URIs are refused before parsing.
MAX_URI_LENGTH: Final = 4096

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
#: pchar / "/" (RFC 3986 section 3.3), with "%" checked separately.
_PATH: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_PERCENT: Final = re.compile(r"%(?:[0-9A-Fa-f]{2})?")
#: reg-name or IPv4 (RFC 3986 section 3.2.2), or an IPv6 literal without brackets.
_HOST: Final = re.compile(r"[a-z0-9\-._~!$&'()*+,;=]+|[0-9a-f:.]+")
#: The query and fragment (with the mark), anything else allowed in them.
_QUERY_OR_FRAGMENT: Final = re.compile(r"[?#][A-Za-z0-9\-._~!$&'()*+,;=:@/?%#]*\Z")


def normalize_uri(uri: str, *, allow_query: bool) -> str:
    """``uri`` in the normal form described in the module docstring.

    ``allow_query=True`` is for the request's own URL, whose query and fragment are
    dropped; ``allow_query=False`` is for a proof's ``htu`` claim, which must carry
    neither.

    Raises:
        ValueError: ``uri`` is not an absolute http(s) URI keyturn can compare.
    """
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise ValueError("not a URI of acceptable length")
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        raise ValueError("characters outside RFC 3986")
    cut = min((i for i in (uri.find("?"), uri.find("#")) if i >= 0), default=-1)
    if cut >= 0:
        if not allow_query:
            raise ValueError("a query or fragment in htu")
        rest = uri[cut:]
        if _QUERY_OR_FRAGMENT.fullmatch(rest) is None or _bad_percent(rest):
            raise ValueError("characters outside RFC 3986 in the query or fragment")
        uri = uri[:cut]
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http or https URI")
    if "@" in parts.netloc:
        raise ValueError("user information in the URI")
    host = parts.hostname  # lower-cased, IPv6 brackets removed
    if not host or _HOST.fullmatch(host) is None or "%" in host:
        raise ValueError("no usable host")
    port = parts.port  # ValueError for a non-numeric or out-of-range port
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        authority = f"{authority}:{port}"
    path = parts.path or "/"
    if _PATH.fullmatch(path) is None or _bad_percent(path):
        raise ValueError("characters outside RFC 3986 in the path")
    path = _remove_dot_segments(_PERCENT.sub(_normalize_percent, path))
    return f"{scheme}://{authority}{path}"


def _bad_percent(text: str) -> bool:
    """Whether a ``%`` in ``text`` is not followed by two hex digits."""
    return any(len(match.group()) != 3 for match in _PERCENT.finditer(text))


def _normalize_percent(match: re.Match[str]) -> str:
    """Decode an encoded unreserved character; upper-case any other encoding."""
    char = chr(int(match.group()[1:], 16))
    return char if char in _UNRESERVED else match.group().upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path (it always starts with ``/``)."""
    output: list[str] = []
    while path:
        if path.startswith("/./"):
            path = path[2:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../"):
            path = path[3:]
            if output:
                output.pop()
        elif path == "/..":
            path = "/"
            if output:
                output.pop()
        else:
            end = path.find("/", 1)
            segment = path if end < 0 else path[:end]
            output.append(segment)
            path = path[len(segment) :]
    return "".join(output) or "/"
