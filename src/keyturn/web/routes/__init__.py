"""keyturn's HTTP endpoints (SPEC "HTTP API"), one router per area.

- :mod:`.auth`: the JSON auth API for sessions (``/auth/*``), with its bodies in
  :mod:`.bodies` and the sign-in shared with the pages in :mod:`.signin`;
- :mod:`.signins`: the caller's sign-ins (``/auth/sessions``);
- :mod:`.oauth`: ``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``, with
  form parsing and client authentication in :mod:`.oauth_forms` and the SPA
  refresh cookie in :mod:`.refresh_cookie`;
- :mod:`.wellknown`: the JWKS and the RFC 8414 metadata;
- :mod:`.health`: ``/healthz`` and ``/livez``;
- :mod:`.mfa`: the second step of a sign-in and passkey sign-in, and
  :mod:`.mfa_factors`: the caller's second factors (#15);
- :mod:`.openapi_docs`: what every route documents in ``/openapi.json``.

Routes read the caller from the scope (:mod:`keyturn.web.authn`), call the core
through :class:`~keyturn.runtime.Keyturn`, and raise keyturn errors, which
:mod:`keyturn.web.errors` renders. They never import the pages.
"""
