"""The base URL of the in-process HTTP tests (the Set-Cookie parser they use is
``tests.support.set_cookies``).

The base URL is https so httpx sends the ``Secure`` cookies back, as a browser on
a TLS site (or on localhost) would.
"""

from __future__ import annotations

BASE = "https://testserver"
