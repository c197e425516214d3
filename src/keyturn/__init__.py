"""keyturn: server-side sessions and signed tokens on one user base.

The core (this package minus :mod:`keyturn.web` and :mod:`keyturn.cli`) imports
no web framework.
"""

from keyturn.clock import Clock, FrozenClock, SystemClock
from keyturn.errors import KeyturnError
from keyturn.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "FrozenClock",
    "KeyturnError",
    "Settings",
    "SystemClock",
    "__version__",
    "load_settings",
]
