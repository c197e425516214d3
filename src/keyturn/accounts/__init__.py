"""Accounts: who may sign in, and the rules every sign-in follows.

- :mod:`.service`: :class:`~keyturn.accounts.service.Accounts`: register,
  authenticate (upgrading old hashes), change a password, disable, import;
- :mod:`.auth`: :class:`~keyturn.accounts.auth.AuthService`: sign-in, sign-out,
  password change and account switches, each with the throttles and an audit line;
- :mod:`.passwords`: argon2id hashing off the event loop, and the policy;
- :mod:`.legacy_hashes`: imported bcrypt and Django PBKDF2 hashes;
- :mod:`.emails`: validating addresses and the key accounts are looked up by;
- :mod:`.user_import`: parsing an import file;
- :mod:`.throttle`, :mod:`.register_throttle`: the sign-in and registration throttles;
- :mod:`.addresses`: the client's IP address (parsed, bucketed, behind proxies);
- :mod:`.mfa_auth`, :mod:`.mfa_factors`, :mod:`.mfa_wiring`: the two-step and
  passkey sign-ins, second-factor enrolment, and how they are built from the
  :mod:`keyturn.mfa` core (#15).

Framework-free. It may import sessions (a sign-in opens one), the store records
and Protocols, fan-out, settings, the clock, the audit log and the
:mod:`keyturn.mfa` core; tokens only as a
type (the refresh families a sign-out everywhere ends); never :mod:`keyturn.web`.
"""
