"""Pluggable storage: one Protocol per store, and the implementations beside them.

- :mod:`.protocols`: the storage contract (one Protocol per store, and
  :class:`~keyturn.stores.protocols.Storage`, the bundle an instance works with);
- :mod:`.records`: the frozen records the stores hold;
- :mod:`.memory`: the reference implementations (tests, one process);
- :mod:`.sql`: SQLite and PostgreSQL through one SQLAlchemy package, with the
  Alembic migrations (:mod:`.sql.migrate`) and the throttle counters;
- :mod:`.redis`: sessions, the revocation log and the throttle on Redis;
- :mod:`.factory`: opening the configured storage; :mod:`.maintenance`: the sweeper.

Stores import records, errors, the clock and their drivers (lazily); never
sessions, tokens or :mod:`keyturn.web` (the memory user store borrows
:func:`keyturn.accounts.legacy_hashes.legacy_cost` to rank imported hashes, as the
SQL one does in SQL). A duplicate raises a keyturn
error (:class:`~keyturn.errors.AlreadyExists`), a lost backend
:class:`~keyturn.errors.StoreUnavailable`.
"""

from keyturn.stores.protocols import Storage, UserStore
from keyturn.stores.records import User

__all__ = ["Storage", "User", "UserStore"]
