"""Housekeeping that keeps the stores small: expired sessions, stale throttle
counters, dead refresh tokens, old revocation entries, long-retired keys,
delivered fan-out changes, old authorization codes and pushed requests, expired
MFA challenges and spent TOTP steps are deleted periodically, not on the request path."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from keyturn.errors import StoreUnavailable
from keyturn.stores.wave2 import Wave2Stores

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

logger = logging.getLogger("keyturn.maintenance")

#: Seconds between sweeps: expired rows are harmless (every read checks expiry),
#: so this only bounds how much dead data accumulates.
DEFAULT_INTERVAL = 300.0
#: Delivered outbox jobs are kept a week, given-up ones a month (for operators).
SENT_JOB_RETENTION = 7 * 86_400.0
DEAD_JOB_RETENTION = 30 * 86_400.0


def purge_caches(keyturn: Keyturn) -> int:
    """Drop what this instance's in-process caches hold past its use: sessions and
    (strict mode) users whose trust ran out, verified tokens past ``exp``. Without
    it the caches keep idle entries up to their bounds (100,000 each), so RSS
    creeps up for as long as new sessions and tokens keep coming. No I/O."""
    now = keyturn.clock.now()
    return keyturn.sessions.cache.purge(now) + keyturn.bearer.purge(now)


async def sweep_once(keyturn: Keyturn) -> dict[str, int]:
    """Delete what has expired; returns how many rows each sweep removed (and, as
    ``caches``, how many in-process cache entries :func:`purge_caches` dropped).

    Raises:
        StoreUnavailable: a store could not be reached.
    """
    now = keyturn.clock.now()
    swept = {
        "caches": purge_caches(keyturn),
        "sessions": await keyturn.sessions.sweep(),
        "throttle": await keyturn.throttle.sweep(),
        "tokens": await keyturn.refresh_families.sweep() + await keyturn.revocations.sweep(),
        # A retired key is kept a day past the last moment a token it signed
        # could verify, so `keyturn key list` still explains recent refusals.
        "keys": await keyturn.storage.keys.delete_expired(now - keyturn.keys.window - 86_400),
        # Delivered rows of the polling fan-out bus's change table (SQLite).
        "changes": await keyturn.fanout.sweep(now),
        # --- OAuth code flow (wave 2, #12): codes past their replay window, PAR
        # requests past their expiry.
        "oauth": await _purge_code_flow(keyturn),
        "mfa": await _sweep_mfa(keyturn, now),  # mfa (wave 2)
        # --- OpenID Connect (wave 2, #13): ID-token session records older than
        # any session can live.
        "oidc": await keyturn.oidc.purge() if keyturn.has_oidc else 0,
    }
    if keyturn.has_mail:  # mail (#14): expired account tokens, old outbox jobs
        swept["account_tokens"] = await keyturn.mail.recovery.tokens.sweep(now=now)
        swept["outbox"] = await keyturn.mail.outbox.purge(
            sent_before=now - SENT_JOB_RETENTION, dead_before=now - DEAD_JOB_RETENTION
        )
    return swept


async def _purge_code_flow(keyturn: Keyturn) -> int:
    if not isinstance(getattr(keyturn.storage, "wave2", None), Wave2Stores):
        return 0  # a custom storage without the wave-2 stores: nothing to purge
    codes = await keyturn.authorization_codes.purge()
    return codes + await keyturn.authorization.pushed.purge()


async def _sweep_mfa(keyturn: Keyturn, now: float) -> int:
    """Expired mfa_tokens, WebAuthn challenges and spent TOTP steps, in the
    stores that keep them (SQL; Redis and memory expire or hold them by themselves)."""
    stores = getattr(keyturn.storage, "wave2", None)
    removed = 0
    for store in (
        getattr(stores, "mfa_challenges", None),
        getattr(stores, "webauthn_challenges", None),
        getattr(stores, "totp_replay", None),
    ):
        purge = getattr(store, "purge", None)
        if purge is not None:
            removed += int(await purge(now))
    return removed


async def sweep_forever(keyturn: Keyturn, *, interval: float = DEFAULT_INTERVAL) -> None:
    """Run :func:`sweep_once` every ``interval`` seconds until cancelled.

    An unreachable store is logged and retried at the next interval; the loop
    never dies of it.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await sweep_once(keyturn)
        except StoreUnavailable as exc:
            logger.warning("sweep skipped: %s", exc.detail)
        except Exception:
            logger.exception("sweep failed")
        else:
            if any(removed.values()):
                logger.info("swept %s", removed)
