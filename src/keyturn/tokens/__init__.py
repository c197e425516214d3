"""Access tokens and everything that ends or describes them.

- :mod:`.access`: RFC 9068 JWTs, issued (:class:`~keyturn.tokens.access.TokenIssuer`)
  and verified (:class:`~keyturn.tokens.access.TokenVerifier`) strictly;
- :mod:`.cache`: the verified-token cache in front of the verifier;
- :mod:`.bearer`: the hot path of a bearer request (verify, revocation check,
  the user);
- :mod:`.refresh`: refresh families: rotation, the grace window, reuse detection;
- :mod:`.grants`: the password grant, the refresh grant and a session's short token;
- :mod:`.revocation`: the in-process replica of the revocation log;
- :mod:`.revoke` and :mod:`.introspect`: RFC 7009 and RFC 7662;
- :mod:`.scopes`: OAuth ``scope`` syntax and allowlists;
- :mod:`.remote`: the verifier a downstream service uses (public as
  :mod:`keyturn.verify`).

Framework-free. It may import keys, accounts (the credential check), sessions
(a session's short token), OAuth clients, fan-out and the stores; never
:mod:`keyturn.web`.
"""
