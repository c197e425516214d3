"""Multi-factor sign-in and passkeys: the framework-free core (issue #15).

Owns TOTP (``totp``), recovery codes (``recovery``), the ``mfa_token`` of the
two-step sign-in (``challenge``), passkeys over py_webauthn (``webauthn``,
``relying_party``), ``amr``/``acr`` (``amr``) and :class:`~keyturn.mfa.flow.TwoStepSignIn`,
which every sign-in path calls. Records and store Protocols are in ``store``,
memory references in ``memory``. Imports only keyturn.errors/clock, never the web.

Wired (#15) by :mod:`keyturn.accounts.mfa_wiring` into :mod:`keyturn.accounts.mfa_auth`
(sign-in) and :mod:`keyturn.accounts.mfa_factors` (enrolment); HTTP in
:mod:`keyturn.web.routes.mfa`, ``mfa_factors`` and the pages ``second_step``,
``account_mfa``. The design below is what was followed.

Wiring (integration):
- ``Sealer``: adapt the key-encryption key's AES-GCM (seal/open bytes). Recovery
  ``hash_key``: HKDF(KEK, info=b"keyturn recovery codes"), never in the database.
- ``RelyingParty.from_issuer(issuer)``: RP ID = issuer host, origin = issuer origin.
- ``client_binding``: a random value in a ``__Host-`` cookie (HttpOnly, SameSite
  Strict, Max-Age 300) set with the ``mfa_token``; the pages may reuse their
  pre-session CSRF cookie. Never empty.
- Stores must be shared by every instance: SQL for factors, codes, passkeys;
  Redis (``SET NX PX``) or SQL for the TOTP replay store, challenges, mfa_tokens.
  The memory replay store holds per process only.
- ``/auth/login`` and ``/login``: after the password, ``after_password(user_id,
  client_binding=…, payload=json{remember, next})``; None -> session with
  ``amr=("pwd",)``; else 200 ``{"mfa_required": true, "mfa_token", "methods"}``
  (page: render ``/login/mfa``), no session cookie.
- ``/auth/login/mfa`` and ``/login/mfa``: ``finish(token, client_binding=…, code=
  | recovery_code= | webauthn=)`` -> session with ``amr``, ``acr_for(amr)``, auth_time
  now; ``InvalidMfaCode``/``WebAuthnFailed`` also count in the account throttle;
  audit every failure and ``clone_warning``. ``webauthn_options(token)`` for the page.
- ``/oauth/authorize``: unchanged; it sends signed-out users to ``/login?next=…``,
  whose payload carries ``next`` through the second step.
- Password grant: ``refuse_if_enrolled(user_id)`` after the password ->
  ``MfaRequired``: ``{"error": "invalid_grant", "error_description": "mfa_required"}``.
- Passwordless: ``Passkeys.authentication_options()`` /
  ``verify_authentication(resp)`` -> session with ``result.amr`` (``hwk|swk``, ``mfa``).
- Fresh session (auth_time within ``--fresh-auth-window``) for TOTP enrol/delete,
  new recovery codes, passkey register/remove. Confirming TOTP returns
  ``RecoveryCodes.regenerate``. ``mfa-reset``: ``SecondFactors.reset``.

Proposed settings: ``--fresh-auth-window`` int 300; ``--mfa-token-ttl`` int 300
(max 300); ``--mfa-max-attempts`` int 5 (max 5); ``--totp-issuer`` str (default
the issuer host); ``--webauthn-rp-name`` str "keyturn"; ``--webauthn-timeout``
int 300; ``--webauthn-refuse-cloned`` bool false.

Proposed tables: ``mfa_totp`` (user_id, state active|pending, sealed_secret,
created_at, confirmed_at; PK user_id+state); ``mfa_totp_used`` (user_id, step,
expires_at; PK user_id+step); ``mfa_recovery_codes`` (user_id, code_hash PK,
created_at); ``mfa_challenges`` (token_hash PK, user_id, binding_hash, methods,
amr, payload, attempts, created_at, expires_at); ``webauthn_challenges``
(challenge_hash PK, purpose, user_id NULL, require_uv, expires_at);
``webauthn_credentials`` (id BLOB PK, user_id idx, public_key, sign_count, name,
created_at, last_used_at, transports, backup_eligible, backed_up, aaguid,
attachment). All keyed by user_id with ON DELETE CASCADE from users.

HTTP: invalid_mfa_code 401, invalid_mfa_token 401, webauthn_failed 401,
mfa_required 400 (as invalid_grant at /oauth/token), NotFound (no pending
enrolment) 404, InvalidRequest 400.
"""
