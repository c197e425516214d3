"""Who is calling, over HTTP: credentials resolved once per request, and CSRF.

- :mod:`.scope`: the scope keys keyturn writes (the caller, its credential) and
  the strict header readers;
- :mod:`.resolver`: :class:`~keyturn.web.authn.resolver.CredentialResolver`: the
  bearer token or the session cookie into a :class:`~keyturn.principal.Principal`;
- :mod:`.csrf` and :mod:`.origins`: the CSRF gate and the same-origin rule on a
  request (the decisions are :mod:`keyturn.csrf`'s);
- :mod:`.middleware`: :class:`~keyturn.web.authn.middleware.AuthnMiddleware`,
  which runs both for every request and WebSocket handshake;
- :mod:`.cookies`: the cookies keyturn sets, and their strict reader;
- :mod:`.cors`: CORS for the browser-facing endpoints.

Part of :mod:`keyturn.web`: it may import Starlette, the core and
:mod:`keyturn.web.errors`; never the routes or the pages.
"""
