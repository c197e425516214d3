"""The HTML pages (SPEC "Browser pages"): server-rendered; the only script is
``/static/keyturn-webauthn.js`` for passkeys (a file, never inline: the CSP keeps
``script-src 'self'``).

- :mod:`.common`: the templates, rendering, redirects and form fields every page uses;
- :mod:`.signin`: ``/login`` and ``/register``, with their login-CSRF token;
- :mod:`.account`: ``/account`` (the sign-ins, each with a sign-out button) and
  ``/logout``;
- :mod:`.authorize`: ``GET|POST /oauth/authorize`` on the browser session (the
  sign-in round trip, the consent page); :mod:`.connected_apps`: the "Connected
  apps" section of ``/account``; :mod:`.redirect_csp`: the ``form-action`` of
  forms whose answer redirects to an OAuth client.
- :mod:`.second_step`: ``/login/mfa``, the second step of a sign-in (#15);
- :mod:`.account_mfa`: the two-step verification section of ``/account`` (#15).

The templates and the stylesheet are package data of :mod:`keyturn.web`
(``web/templates``, ``web/static``).
"""
