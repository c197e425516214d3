"""The HTML pages (SPEC "Browser pages"): server-rendered, no JavaScript.

- :mod:`.common`: the templates, rendering, redirects and form fields every page uses;
- :mod:`.signin`: ``/login`` and ``/register``, with their login-CSRF token;
- :mod:`.account`: ``/account`` (the sign-ins, each with a sign-out button) and
  ``/logout``;
- :mod:`.authorize`: ``GET|POST /oauth/authorize`` on the browser session (the
  sign-in round trip, the consent page); :mod:`.connected_apps`: the "Connected
  apps" section of ``/account``; :mod:`.redirect_csp`: the ``form-action`` of
  forms whose answer redirects to an OAuth client.

The templates and the stylesheet are package data of :mod:`keyturn.web`
(``web/templates``, ``web/static``).
"""
