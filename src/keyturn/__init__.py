"""keyturn: server-side sessions and signed tokens on one user base.

::

    from keyturn import Keyturn, Principal, Settings

    kt = Keyturn(Settings(database_url="sqlite+aiosqlite:///app.db"))

:class:`Keyturn` owns the stores and services (and an ASGI ``lifespan``);
:class:`Principal` is who is calling, whether by session cookie or bearer
token. The HTTP side (routes, middleware, FastAPI dependencies) is
:mod:`keyturn.web`.

The core (this package minus :mod:`keyturn.web` and :mod:`keyturn.cli`) imports
no web framework.
"""

from keyturn.clock import Clock, FrozenClock, SystemClock
from keyturn.errors import KeyturnError
from keyturn.principal import Principal
from keyturn.runtime import Keyturn
from keyturn.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "FrozenClock",
    "Keyturn",
    "KeyturnError",
    "Principal",
    "Settings",
    "SystemClock",
    "__version__",
    "load_settings",
]
