"""Server-side browser sessions.

- :mod:`.manager`: :class:`~keyturn.sessions.manager.SessionManager`: create,
  validate (the hot path), rotate, revoke, list;
- :mod:`.cache`: this instance's cache of validated sessions;
- :mod:`.ids`: the secret session ID and the public handle;
- :mod:`.devices`: the IP address and ``User-Agent`` a sign-in records.

Framework-free. CSRF tokens are :mod:`keyturn.csrf`'s. It may import the store
records and Protocols, fan-out, settings and the clock; never tokens, accounts
or :mod:`keyturn.web`.
"""
