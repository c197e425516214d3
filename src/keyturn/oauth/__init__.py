"""OAuth clients and the OAuth 2.1 authorization code flow, framework-free.

Owns: the registered clients, their scope allowlists and client authentication
(``clients``, wave 1); redirect URI rules (``redirects``), PKCE S256 (``pkce``), authorization
request parsing (``request``), authorization responses (``response``), codes
(``codes``), PAR (``par``), consent (``consent``); the authorization endpoint's
decisions that tie them together (``authorize``, with ``flow_client`` and the
``prompt=login`` marker ``fresh_login``); records and store Protocols in
``store``, memory reference stores in ``memory``. Wired (#12): the HTTP side is
``keyturn.web.pages.authorize`` and ``keyturn.web.routes.par``, the code grant
``keyturn.tokens.code_grant``. The code-flow modules import
only keyturn.errors and keyturn.clock from the rest of keyturn; ``clients`` also
the store Protocols, settings and keyturn.tokens.scopes. Never Starlette/FastAPI.

Wiring (web/routes/oauth.py, at integration):
  GET /oauth/authorize: if ``request_uri``: ``PushedRequests.load(request_uri,
  read_client_id(query))`` gives the params, else the query's ``multi_items()``;
  then ``validate_authorization_request(params, client)``.
  UnsafeAuthorizationRequest -> 400 HTML page, never a redirect.
  RedirectedAuthorizationError -> 303 to ``redirect_for_error(exc, issuer=...)``.
  Signed out, ``prompt=login``, or ``max_age`` older than the session's
  auth_time -> /login?next=... (``AuthorizationRequest.to_params()`` rebuilds
  the query); with ``prompt=none`` raise LoginRequired / ConsentRequired
  instead. Third-party client not ``Consents.covered`` -> consent page; deny ->
  AccessDenied. Then ``AuthorizationCodes.issue(...)`` (session_id = public
  session handle), ``PushedRequests.consume`` if PAR, 303 to
  ``success_redirect(uri, code=..., state=..., iss=issuer)``.
  POST /oauth/token (authorization_code): authenticate the client, then
  ``redeem(code, client_id=, redirect_uri=, code_verifier=)``; issue tokens
  with family id = ``grant.grant_id`` (or call ``mark_issued``). On
  CodeReplayed, revoke the family ``exc.grant.grant_id`` / ``family_id``.
  POST /oauth/par: authenticate the client, ``PushedRequests.push`` -> 201.
  Revoke on /account: ``Consents.revoke`` then end the client's families.
  Purge: ``AuthorizationCodes.purge()`` and ``PushedRequests.purge()`` from the
  maintenance loop.

HTTP mapping (web/errors.py): InvalidRedirectUri 400 (CLI: one-line error);
UnsafeAuthorizationRequest family 400 HTML (invalid_client / invalid_request /
invalid_redirect_uri / invalid_request_uri); RedirectedAuthorizationError 303
at /authorize, 400 JSON at /oauth/par; CodeRejected/CodeReplayed 400
invalid_grant (one body for every reason).

Settings proposed: ``--password-grant`` (bool, off), ``--authorization-code-ttl``
(seconds, 60, at most 60), ``--par-ttl`` (seconds, 60, 1-600),
``--code-replay-window`` (seconds, 3600).

Tables proposed: ``oauth_codes`` (code_hash PK, grant_id unique, client_id,
user_id, redirect_uri, code_challenge, scopes, nonce, session_id, auth_time,
amr, created_at, expires_at indexed, used_at, family_id);
``oauth_par_requests`` (request_uri_hash PK, client_id, params JSON,
created_at, expires_at indexed, used_at); ``oauth_consents`` ((user_id,
client_id) PK, scopes, granted_at, updated_at; index on client_id).
Consume is ``UPDATE ... SET used_at=:now WHERE key=:k AND used_at IS NULL``.
"""
