"""In-process reference implementations of every store.

Used by unit tests and as the executable definition of each Protocol's
behaviour (:mod:`keyturn.stores.protocols`); not shared between processes, so
never for production. :mod:`.storage` holds the account, session and key stores
and the :class:`MemoryStorage` bundle; :mod:`.tokens` the refresh, revocation
and client stores.
"""

from keyturn.stores.memory.storage import (
    MemoryKeyStore,
    MemorySessionStore,
    MemoryStorage,
    MemoryUserStore,
)
from keyturn.stores.memory.tokens import (
    MemoryClientStore,
    MemoryRefreshStore,
    MemoryRevocationStore,
)

__all__ = [
    "MemoryClientStore",
    "MemoryKeyStore",
    "MemoryRefreshStore",
    "MemoryRevocationStore",
    "MemorySessionStore",
    "MemoryStorage",
    "MemoryUserStore",
]
