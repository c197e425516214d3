"""Account recovery and e-mail ownership: password reset, e-mail verification and
e-mail change, and the security notices they send (SPEC "E-mail and account
recovery", #14).

- :mod:`.store`, :mod:`.memory`: account tokens (hashed, single use, newest wins)
  and their Protocol; the SQL store is ``keyturn.stores.sql.account_token_store``;
- :mod:`.throttle`: forgot-password and resend requests per address and client;
- :mod:`.service`: :class:`~keyturn.recovery.service.Recovery`, the flows;
- :mod:`.jobs`: the outbox handler that turns a forgot-password request into a
  token and a mail off the request path (same work for known and unknown
  addresses);
- :mod:`.wiring`: :class:`~keyturn.recovery.wiring.MailRuntime`, the mailer, the
  sealer and the dispatcher built from the settings.

Framework-free. It composes accounts (passwords, the sign-in throttle, sign out
everywhere), :mod:`keyturn.mail` and :mod:`keyturn.outbox`; never :mod:`keyturn.web`.
"""
