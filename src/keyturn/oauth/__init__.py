"""OAuth clients, and (wave 2) the authorization code flow and OpenID Connect.

- :mod:`.clients`: registering clients, their scope allowlists, and client
  authentication with a secret.

Framework-free: the HTTP endpoints are in :mod:`keyturn.web.routes`. It may
import the stores, the clock and :mod:`keyturn.tokens.scopes`; never sessions or
:mod:`keyturn.web`.
"""
