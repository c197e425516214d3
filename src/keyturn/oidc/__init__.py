"""OpenID Connect on top of the OAuth code flow (SPEC "OpenID Connect"), framework-free.

Owns: ID tokens (``id_token``: claims, ``at_hash``, signing with the client's
algorithm from the key ring), the OpenID Provider metadata (``discovery``),
RP-initiated logout checks (``logout``: the ``id_token_hint``, exact
post-logout redirect URIs), and back-channel logout (``backchannel``: which
clients hold an ID token in which browser session, logout tokens, and their
delivery through the outbox).

Imports keyturn.keys (the ring signs and verifies), keyturn.mfa.amr (``acr``),
keyturn.outbox, keyturn.stores.records (the ended ``Session``), the root modules
and its own store Protocol (``store``; SQL in keyturn.stores.sql.oidc_store;
``wiring`` also builds the dispatcher's handler); never keyturn.web,
Starlette or FastAPI. keyturn.tokens.code_grant calls it to add the ID token.
"""
