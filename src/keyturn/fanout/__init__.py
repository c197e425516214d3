"""Fan-out: every instance caches in memory and hears of changes made elsewhere.

- :mod:`.changes`: :class:`~keyturn.fanout.changes.Change` (what changed), its
  compact wire format, and the :class:`~keyturn.fanout.changes.ChangeBus` Protocol;
- :mod:`.instance`: :class:`~keyturn.fanout.instance.FanOut`, this instance's end
  of the bus: it publishes, applies what others changed, and holds the trust
  rules (how long a cached entry may be used);
- :mod:`.cache`: the one bounded LRU of store reads that follows those rules
  (browser sessions, the bearer path's users);
- :mod:`.buses`: the channels (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, a polled
  SQLite table, in-process memory) and how one is chosen.

Fan-out only ever takes trust away. It imports the store records, settings and
the clock; never sessions, tokens, keys or :mod:`keyturn.web` (they attach
themselves to a :class:`~keyturn.fanout.instance.FanOut` through small Protocols).
"""
