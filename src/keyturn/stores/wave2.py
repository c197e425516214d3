"""The wave-2 stores (outbox, MFA, OAuth code flow) of an opened storage.

Every storage bundle carries one :class:`Wave2Stores` as its ``wave2``
attribute: :class:`~keyturn.stores.memory.MemoryStorage` the memory references,
:class:`~keyturn.stores.sql.SqlStorage` the SQL stores over its engine, and the
SQL + Redis bundle the SQL ones (the queue, factors and codes need the
database's durability; a Redis TTL store for challenges can come later).
Integration reads them through :func:`wave2_stores`, so the :class:`Storage`
Protocol itself is unchanged. Implementations are imported only when a bundle
is built, so importing this module pulls in none of the domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keyturn.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from keyturn.mfa.store import (
        MfaChallengeStore,
        PasskeyStore,
        RecoveryCodeStore,
        TotpReplayStore,
        TotpStore,
        WebAuthnChallengeStore,
    )
    from keyturn.oauth.store import CodeStore, ConsentStore, PushedRequestStore
    from keyturn.oidc.store import IdTokenSessionStore
    from keyturn.outbox.store import OutboxStore
    from keyturn.recovery.store import AccountTokenStore  # mail (#14)

__all__ = ["Wave2Stores", "memory_wave2_stores", "sql_wave2_stores", "wave2_stores"]


@dataclass(frozen=True, slots=True)
class Wave2Stores:
    """One store per wave-2 Protocol, all over the same backend."""

    outbox: OutboxStore
    totp: TotpStore
    totp_replay: TotpReplayStore
    recovery_codes: RecoveryCodeStore
    mfa_challenges: MfaChallengeStore
    webauthn_challenges: WebAuthnChallengeStore
    passkeys: PasskeyStore
    codes: CodeStore
    pushed_requests: PushedRequestStore
    consents: ConsentStore
    # --- mail (#14) ---
    account_tokens: AccountTokenStore
    id_token_sessions: IdTokenSessionStore  # OpenID Connect (#13)


def memory_wave2_stores() -> Wave2Stores:
    """The in-process references (one process only: tests, embedded dev)."""
    from keyturn.mfa import memory as mfa
    from keyturn.oauth import memory as oauth
    from keyturn.oidc.store import MemoryIdTokenSessionStore
    from keyturn.outbox.memory import MemoryOutboxStore
    from keyturn.recovery.memory import MemoryAccountTokenStore  # mail (#14)

    return Wave2Stores(
        outbox=MemoryOutboxStore(),
        totp=mfa.MemoryTotpStore(),
        totp_replay=mfa.MemoryTotpReplayStore(),
        recovery_codes=mfa.MemoryRecoveryCodeStore(),
        mfa_challenges=mfa.MemoryMfaChallengeStore(),
        webauthn_challenges=mfa.MemoryWebAuthnChallengeStore(),
        passkeys=mfa.MemoryPasskeyStore(),
        codes=oauth.MemoryCodeStore(),
        pushed_requests=oauth.MemoryPushedRequestStore(),
        consents=oauth.MemoryConsentStore(),
        account_tokens=MemoryAccountTokenStore(),  # mail (#14)
        id_token_sessions=MemoryIdTokenSessionStore(),
    )


def sql_wave2_stores(engine: AsyncEngine) -> Wave2Stores:
    """The SQL stores over ``engine`` (shared by every instance on the database)."""
    from keyturn.stores.sql import mfa_store as mfa
    from keyturn.stores.sql import oauth_store as oauth
    from keyturn.stores.sql.account_token_store import SqlAccountTokenStore  # mail (#14)
    from keyturn.stores.sql.oidc_store import SqlIdTokenSessionStore
    from keyturn.stores.sql.outbox_store import SqlOutboxStore

    return Wave2Stores(
        outbox=SqlOutboxStore(engine),
        totp=mfa.SqlTotpStore(engine),
        totp_replay=mfa.SqlTotpReplayStore(engine),
        recovery_codes=mfa.SqlRecoveryCodeStore(engine),
        mfa_challenges=mfa.SqlMfaChallengeStore(engine),
        webauthn_challenges=mfa.SqlWebAuthnChallengeStore(engine),
        passkeys=mfa.SqlPasskeyStore(engine),
        codes=oauth.SqlCodeStore(engine),
        pushed_requests=oauth.SqlPushedRequestStore(engine),
        consents=oauth.SqlConsentStore(engine),
        account_tokens=SqlAccountTokenStore(engine),  # mail (#14)
        id_token_sessions=SqlIdTokenSessionStore(engine),
    )


def wave2_stores(storage: object) -> Wave2Stores:
    """The wave-2 stores of an opened storage bundle.

    Raises:
        ConfigurationError: the bundle has none (a custom Storage without ``wave2``).
    """
    stores = getattr(storage, "wave2", None)
    if not isinstance(stores, Wave2Stores):
        raise ConfigurationError(
            f"{type(storage).__name__} has no wave-2 stores (outbox, MFA, OAuth codes)"
        )
    return stores
