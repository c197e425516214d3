"""The signing keys of a running instance: loaded from the store, rotated, reloaded.

:class:`KeyManager` owns the current :class:`~keyturn.keys.ring.KeyRing`. It reads the
sealed records from a :class:`~keyturn.stores.protocols.KeyStore`, opens them with the
key-encryption key, and builds the ring once per change. On first start with an
empty store it generates a key with ``settings.signing_alg``.

Other instances (and ``keyturn key rotate`` in another process) change the store
behind our back, so the manager re-reads it at most once per
``settings.staleness_bound`` seconds (:meth:`KeyManager.reload_if_stale`), and at
most once per bound when a token names a ``kid`` we do not know
(:meth:`KeyManager.on_unknown_kid`). A re-read compares a fingerprint of the key
list (``kid`` and ``retired_at`` of every key) and rebuilds the ring only when it
changed, or when a retired key's verification window has closed.

A rotation is published as a :class:`~keyturn.fanout.changes.Change`, so other instances
re-read the store within milliseconds (:meth:`KeyManager.reload`), and so does a
reconnected fan-out bus; the periodic re-read stays as the fallback.

Listeners registered with :meth:`KeyManager.subscribe` (the token issuer and
verifier's ``use_keyring``) get every new ring.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable
from keyturn.fanout.changes import Change
from keyturn.fanout.instance import FanOut
from keyturn.keys.encryption import KeyEncryptor
from keyturn.keys.records import SigningKey, generate_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings, SigningAlgorithm
from keyturn.singleflight import SingleFlight
from keyturn.stores.protocols import KeyStore

__all__ = ["KeyManager", "KeyState", "key_state"]

logger = logging.getLogger("keyturn.keys")

KeyState = Literal["active", "verifying", "expired"]


def key_state(key: SigningKey, *, now: float, window: float) -> KeyState:
    """``active`` (unretired), ``verifying`` (retired, tokens it signed may still be
    alive: inside ``retired_at + window``) or ``expired``."""
    if key.retired_at is None:
        return "active"
    return "verifying" if now < key.retired_at + window else "expired"


def _fingerprint(keys: Sequence[SigningKey]) -> str:
    digest = hashlib.sha256()
    for key in sorted(keys, key=lambda k: k.kid):
        digest.update(f"{key.kid}:{key.retired_at!r};".encode())
    return digest.hexdigest()


class KeyManager:
    """The current key ring of one instance, kept in step with the key store.

    Call :meth:`load` once before use (``Keyturn.start()`` does). With a
    ``fanout``, rotations are published and published rotations reloaded.
    """

    def __init__(
        self,
        store: KeyStore,
        encryptor: KeyEncryptor,
        settings: Settings,
        clock: Clock,
        *,
        fanout: FanOut | None = None,
    ) -> None:
        self._fanout = fanout
        if fanout is not None:
            fanout.attach(keys=self)
        self._store = store
        self._encryptor = encryptor
        self._settings = settings
        self._clock = clock
        self._window = float(settings.access_token_ttl + settings.clock_leeway)
        self._bound = float(settings.staleness_bound)
        self._ring: KeyRing | None = None
        self._fingerprint = ""
        self._rebuild_at = math.inf
        self._checked_at = -math.inf
        self._unknown_kid_at = -math.inf
        self._lock = asyncio.Lock()
        self._background: SingleFlight[str, bool] = SingleFlight()
        self._listeners: list[Callable[[KeyRing], None]] = []

    @property
    def window(self) -> float:
        """Seconds a retired key keeps verifying: ``access_token_ttl + clock_leeway``."""
        return self._window

    @property
    def ring(self) -> KeyRing:
        """The current key ring.

        Raises:
            RuntimeError: :meth:`load` has not run.
        """
        if self._ring is None:
            raise RuntimeError("KeyManager.load() has not been called")
        return self._ring

    def subscribe(self, listener: Callable[[KeyRing], None]) -> None:
        """Call ``listener(ring)`` now (if loaded) and with every new ring."""
        self._listeners.append(listener)
        if self._ring is not None:
            listener(self._ring)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set to publish (see :meth:`KeyRing.jwks`)."""
        return self.ring.jwks()

    async def load(self) -> KeyRing:
        """Read the store and build the ring; with no usable active key, generate
        one with ``settings.signing_alg`` first.

        Raises:
            ConfigurationError: a stored key cannot be decrypted (wrong
                key-encryption key) or is broken.
            StoreUnavailable: the database cannot be reached.
        """
        async with self._lock:
            keys = await self._store.list()
            if not any(key.retired_at is None for key in keys):
                await self._store.add(self._new_key(self._settings.signing_alg))
                keys = await self._store.list()
            return self._install(keys)

    async def rotate(self, alg: SigningAlgorithm | None = None) -> SigningKey:
        """Make a new key of ``alg`` (default ``settings.signing_alg``) sign for that
        algorithm now, and retire every other active key of the same algorithm at
        this moment: they keep verifying (and stay in the JWKS) for :attr:`window`
        seconds. Keys of other algorithms (the ID-token key beside the
        access-token key) are left alone: one active key per algorithm. Returns
        the new key's record without its private part.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        chosen = alg or self._settings.signing_alg
        key = await self._generate(chosen)
        async with self._lock:
            await self._store.add(key)
            now = self._clock.now()
            for other in await self._store.list():
                if other.kid != key.kid and other.retired_at is None and other.alg == chosen:
                    await self._store.retire(other.kid, now)
            self._install(await self._store.list())
        if self._fanout is not None:
            await self._fanout.publish(Change.keys_changed())
        return _without_secret(key)

    async def ensure(self, alg: SigningAlgorithm) -> None:
        """Make sure an active key of ``alg`` signs (ID tokens of a client with
        that ``id_token_alg``): when the ring has none, re-read the store (another
        instance may have made one) and generate one only if it still has none.
        RSA keys take a moment to generate: that happens in a worker thread.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        if self.ring.signs(alg):
            return
        await self.reload()
        if self.ring.signs(alg):
            return
        key = await self._generate(alg)
        async with self._lock:
            if any(k.alg == alg and k.retired_at is None for k in await self._store.list()):
                self._install(await self._store.list())
                return
            await self._store.add(key)
            self._install(await self._store.list())
        if self._fanout is not None:
            await self._fanout.publish(Change.keys_changed())

    async def list(self) -> list[SigningKey]:
        """Every stored key, newest first, without private parts (for ``key list``)."""
        return [_without_secret(key) for key in await self._store.list()]

    async def reload_if_stale(self) -> bool:
        """Re-read the store if the last read is ``staleness_bound`` seconds old, and
        rebuild the ring if the keys changed (or a retired key's window closed).
        At most one store read per bound, however many callers. Returns True when
        the ring was rebuilt.

        A store outage keeps the current ring (keys change rarely; a token check
        must not fail because a key list could not be re-read) and is logged.
        """
        now = self._clock.now()
        if now - self._checked_at < self._bound and now < self._rebuild_at:
            return False
        return await self._reload(now, force=False)

    async def reload(self) -> bool:
        """Re-read the store now (a :class:`~keyturn.fanout.changes.Change` said the keys
        changed); returns True when the ring was rebuilt. An outage keeps the
        current ring, as in :meth:`reload_if_stale`."""
        return await self._reload(self._clock.now(), force=True)

    def reload_soon(self) -> None:
        """:meth:`reload_if_stale` in the background, for the request path: the
        current ring keeps verifying while the store is read (a token signed by a
        key we do not know yet goes through :meth:`on_unknown_kid` instead)."""
        now = self._clock.now()
        if now - self._checked_at < self._bound and now < self._rebuild_at:
            return
        self._background.start("reload", self.reload_if_stale)

    async def on_unknown_kid(self) -> bool:
        """A token named a ``kid`` we do not have: re-read the store at once, but at
        most once per ``staleness_bound`` (garbage tokens must not hammer the
        database). Returns True when the ring changed, so the caller can verify
        the token again."""
        now = self._clock.now()
        if now - self._unknown_kid_at < self._bound:
            return False
        self._unknown_kid_at = now
        return await self._reload(now, force=True)

    async def _reload(self, now: float, *, force: bool) -> bool:
        async with self._lock:
            if not force and now - self._checked_at < self._bound and now < self._rebuild_at:
                return False  # another caller re-read while we waited for the lock
            self._checked_at = now
            try:
                keys = await self._store.list()
            except StoreUnavailable as exc:
                logger.warning("cannot re-read signing keys, keeping the current ones: %s", exc)
                return False
            if _fingerprint(keys) == self._fingerprint and now < self._rebuild_at:
                return False
            self._install(keys)
            return True

    def _install(self, sealed: Sequence[SigningKey]) -> KeyRing:
        """Build the ring from sealed records and hand it to every listener."""
        now = self._clock.now()
        live = [key for key in sealed if key_state(key, now=now, window=self._window) != "expired"]
        ring = KeyRing(
            [self._encryptor.unseal(key) for key in live],
            now=now,
            access_token_ttl=self._settings.access_token_ttl,
            clock_leeway=self._settings.clock_leeway,
            signing_alg=self._settings.signing_alg,
        )
        self._ring = ring
        self._fingerprint = _fingerprint(sealed)
        self._checked_at = now
        closing = [key.retired_at + self._window for key in live if key.retired_at is not None]
        self._rebuild_at = min(closing, default=math.inf)
        for listener in self._listeners:
            listener(ring)
        return ring

    def _new_key(self, alg: SigningAlgorithm) -> SigningKey:
        return self._encryptor.seal(generate_key(alg, now=self._clock.now()))

    async def _generate(self, alg: SigningAlgorithm) -> SigningKey:
        """:meth:`_new_key` off the event loop (RSA-3072 generation is slow)."""
        now = self._clock.now()
        fresh = await asyncio.to_thread(generate_key, alg, now=now)
        return self._encryptor.seal(fresh)


def _without_secret(key: SigningKey) -> SigningKey:
    return replace(key, private_key=b"")
