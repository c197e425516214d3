"""Password hashing (argon2id) and the password policy.

(Over 300 lines: one idea, the password, hashed and judged; most of it is
the hasher's thread pool and the failure floor, which only make sense together.)

:class:`PasswordHasher` hashes and verifies in a worker thread, never on the event
loop, with at most ``concurrency`` argon2 computations at once. Verification
raises :class:`~keyturn.errors.InvalidCredentials`; it never returns ``False``.

:class:`PasswordPolicy` decides what a new password must satisfy: a length in
Unicode code points and not being on a common-password list. Nothing else; no
composition rules (NIST SP 800-63B).

Passwords are compared as text after NFKC normalisation, so that the same password
typed on two keyboards (composed vs decomposed accents, full-width digits) is one
password. The normalised text is what argon2 hashes; it is never truncated or
case-folded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from keyturn.accounts.legacy_hashes import default_legacy_schemes
from keyturn.errors import InvalidCredentials, WeakPassword
from keyturn.settings import MIN_ARGON2_MEMORY_KIB, MIN_ARGON2_TIME_COST

if TYPE_CHECKING:
    from keyturn.settings import Settings

__all__ = [
    "LegacyHashScheme",
    "PasswordHasher",
    "PasswordPolicy",
    "common_passwords",
    "normalize_password",
]

_T = TypeVar("_T")

#: How much nicer than the event loop the hashing threads are (Linux ``nice``):
#: during a sign-in storm the scheduler prefers the thread serving requests, so
#: authenticated traffic keeps its latency and sign-ins absorb the contention.
HASH_THREAD_NICENESS = 10

#: PHC prefix of the only scheme keyturn writes.
_ARGON2ID_PREFIX = "$argon2id$"

#: Headroom of the failure floor over the slowest verification seen, so that the
#: slowest one too ends inside the floor (the lookup and the thread hand-off
#: come on top of the hash itself).
FAILURE_FLOOR_MARGIN = 1.2
#: The failure floor never grows past this, however slow one verification was.
MAX_FAILURE_FLOOR = 10.0


def _lower_thread_priority() -> None:
    """Make the calling worker thread nicer than the event loop. Linux only
    (there ``setpriority`` on a thread id affects that thread alone); best effort."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


def normalize_password(password: str) -> str:
    """The form of ``password`` that is measured and hashed: Unicode NFKC."""
    return unicodedata.normalize("NFKC", password)


def _encode(password: str) -> bytes:
    """UTF-8 of the normalised password.

    Raises:
        UnicodeEncodeError: the text holds lone surrogates (not valid Unicode).
    """
    return normalize_password(password).encode("utf-8")


class LegacyHashScheme(Protocol):
    """A verifier for hashes imported from another system (bcrypt, Django PBKDF2).

    keyturn never writes these; it verifies them once and replaces them with
    argon2id on the next successful sign-in (``needs_rehash`` is always True for
    them). Implementations are synchronous and CPU-bound: the hasher runs them in
    its worker threads under the same limit as argon2. The built-in ones are in
    :mod:`keyturn.accounts.legacy_hashes`.
    """

    def identifies(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` is in this scheme's format."""
        ...

    def verify(self, stored_hash: str, password: str) -> None:
        """Check ``password`` (as the user typed it, not normalised).

        Raises:
            InvalidCredentials: the password does not match or the hash is malformed.
        """
        ...


class PasswordHasher:
    """argon2id hashing with OWASP-floor parameters, off the event loop.

    Args:
        memory_kib: argon2 memory cost in KiB (default and minimum 19456 = 19 MiB).
        time_cost: argon2 iterations (default and minimum 2).
        parallelism: argon2 lanes (default 1).
        concurrency: how many hashes may run at once in worker threads; further
            callers wait. Defaults to the number of CPUs.
        allow_weak_parameters: DANGEROUS, for tests only. Accept parameters below the
            OWASP floor so that test suites run fast. Never set this in production:
            hashes made with it are cheap to brute-force if the database leaks.
        legacy_schemes: verifiers for imported non-argon2 hashes (see
            :class:`LegacyHashScheme`); None (the default) means bcrypt and Django
            PBKDF2 (:func:`keyturn.accounts.legacy_hashes.default_legacy_schemes`), ``()``
            means none: such hashes then never verify.

    Raises:
        ValueError: a parameter is below the floor and ``allow_weak_parameters`` is
            not set, or a value is not positive.
    """

    def __init__(
        self,
        *,
        memory_kib: int = MIN_ARGON2_MEMORY_KIB,
        time_cost: int = MIN_ARGON2_TIME_COST,
        parallelism: int = 1,
        concurrency: int | None = None,
        allow_weak_parameters: bool = False,
        legacy_schemes: Sequence[LegacyHashScheme] | None = None,
    ) -> None:
        if min(memory_kib, time_cost, parallelism) < 1:
            raise ValueError("argon2 parameters must be positive")
        if not allow_weak_parameters and (
            memory_kib < MIN_ARGON2_MEMORY_KIB or time_cost < MIN_ARGON2_TIME_COST
        ):
            raise ValueError(
                f"argon2id parameters m={memory_kib} KiB, t={time_cost} are below the OWASP "
                f"floor (m>={MIN_ARGON2_MEMORY_KIB} KiB, t>={MIN_ARGON2_TIME_COST})"
            )
        concurrency = concurrency if concurrency is not None else (os.cpu_count() or 1)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.memory_kib = memory_kib
        self.time_cost = time_cost
        self.parallelism = parallelism
        self.concurrency = concurrency
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._legacy: tuple[LegacyHashScheme, ...] = tuple(
            default_legacy_schemes() if legacy_schemes is None else legacy_schemes
        )
        # A pool of its own: ``concurrency`` bounds the argon2 runs at once, and
        # its threads run at a lower priority (see HASH_THREAD_NICENESS).
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix="keyturn-hash",
            initializer=_lower_thread_priority,
        )
        self._dummy_hash: str | None = None
        #: The longest one verification took in a worker thread (seconds):
        #: argon2, dummy or imported. Raised by every verification and by
        #: :meth:`calibrate`; see :attr:`failure_floor`.
        self.slowest_verification = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        """The hasher an operator configured (``--password-hash-*`` settings)."""
        return cls(
            memory_kib=settings.password_hash_memory_kib,
            time_cost=settings.password_hash_time_cost,
            concurrency=settings.password_hash_concurrency,
        )

    def __repr__(self) -> str:
        return (
            f"PasswordHasher(memory_kib={self.memory_kib}, time_cost={self.time_cost}, "
            f"parallelism={self.parallelism}, concurrency={self.concurrency})"
        )

    async def _run(self, func: Callable[..., _T], *args: object) -> _T:
        """Run CPU-heavy ``func`` in one of the hasher's low-priority threads
        (at most ``concurrency`` at once)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args))

    # --- hashing -----------------------------------------------------------------

    async def hash(self, password: str) -> str:
        """Hash ``password`` into an argon2id PHC string (``$argon2id$v=19$m=…``).

        Raises:
            ValueError: the password holds lone surrogates (not valid Unicode text).
        """
        try:
            secret = _encode(password)
        except UnicodeEncodeError:
            raise ValueError("password is not valid Unicode text") from None
        return await self._run(self._argon2.hash, secret)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` should be replaced by a hash with current parameters.

        True for argon2 hashes with other parameters (weaker or stronger) and for any
        hash that is not argon2id at all.
        """
        if not stored_hash.startswith(_ARGON2ID_PREFIX):
            return True
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    # --- the failure floor (#10 item 6) ---------------------------------------------

    @property
    def failure_floor(self) -> float:
        """How long a failed sign-in should take at least, in seconds: the slowest
        verification this hasher has done or been calibrated with, plus headroom
        (:data:`FAILURE_FLOOR_MARGIN`), at most :data:`MAX_FAILURE_FLOOR`.

        :class:`~keyturn.accounts.service.Accounts` pads every failed sign-in up to it,
        so an unknown address, a wrong argon2 password and a wrong password for
        an imported bcrypt account all take the same time.
        """
        return min(MAX_FAILURE_FLOOR, self.slowest_verification * FAILURE_FLOOR_MARGIN)

    async def calibrate(self, stored_hashes: Sequence[str] = ()) -> float:
        """Time the work a failed sign-in may cost, to set :attr:`failure_floor`
        before the first sign-in: one dummy argon2 verification, and a random
        password against each of ``stored_hashes`` (the slowest imported hashes,
        :meth:`~keyturn.stores.protocols.UserStore.slowest_legacy_hashes`).

        Returns:
            The failure floor afterwards, in seconds.
        """
        probe = secrets.token_urlsafe(24)
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(
                self._timed, self._argon2.hash, secrets.token_bytes(32)
            )
        await self._run(self._timed, self._verify_dummy_sync, self._dummy_hash, probe)
        for stored_hash in stored_hashes:
            for scheme in self._legacy:
                if scheme.identifies(stored_hash):
                    with contextlib.suppress(InvalidCredentials):
                        await self._run(self._timed, scheme.verify, stored_hash, probe)
                    break
        return self.failure_floor

    def _timed(self, func: Callable[..., _T], *args: object) -> _T:
        """Run ``func`` (in a worker thread) and raise ``slowest_verification``
        to its duration: only the hash work counts, not the wait for a thread."""
        started = time.perf_counter()
        try:
            return func(*args)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > self.slowest_verification:
                self.slowest_verification = elapsed

    # --- verification ------------------------------------------------------------

    async def verify(self, stored_hash: str, password: str) -> None:
        """Check ``password`` against ``stored_hash``.

        Imported bcrypt and Django PBKDF2 hashes are checked by their scheme in a
        worker thread too; a format no scheme recognises fails at once (closed).

        Raises:
            InvalidCredentials: the password does not match, or the hash is malformed
                or in a format no configured scheme understands.
        """
        if stored_hash.startswith("$argon2"):
            await self._run(self._timed, self._verify_argon2, stored_hash, password)
            return
        for scheme in self._legacy:
            if scheme.identifies(stored_hash):
                await self._run(self._timed, scheme.verify, stored_hash, password)
                return
        raise InvalidCredentials()

    def _verify_argon2(self, stored_hash: str, password: str) -> None:
        try:
            self._argon2.verify(stored_hash, _encode(password))
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            raise InvalidCredentials() from None

    async def verify_dummy(self, password: str) -> NoReturn:
        """Spend what a real verification costs, then fail.

        Used when no account matches, so that an unknown e-mail address takes as long
        as a wrong password. The dummy hash (of a random secret, current parameters)
        is built on first use; building it costs one hash, which is the same work as
        one verification, so even the first call is equalised.

        Raises:
            InvalidCredentials: always.
        """
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(
                self._timed, self._argon2.hash, secrets.token_bytes(32)
            )
        else:
            await self._run(self._timed, self._verify_dummy_sync, self._dummy_hash, password)
        raise InvalidCredentials()

    def _verify_dummy_sync(self, dummy_hash: str, password: str) -> None:
        try:
            self._argon2.verify(dummy_hash, _encode(password))
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common-password list, case-folded: zxcvbn's 30,000 most used passwords.

    Loaded once, on first use.
    """
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(word.casefold() for word in words)


class PasswordPolicy:
    """What a new password must satisfy: length bounds and not being common.

    Length is counted in Unicode code points of the NFKC-normalised password (what
    is hashed), so an accented letter counts once however it was typed. The upper
    bound is checked on the raw text first, before any other work, so a megabyte
    of input is refused in microseconds.

    Args:
        min_length: fewest code points (default 10).
        max_length: most code points (default 1024).

    Raises:
        ValueError: the bounds are not positive or ``min_length > max_length``.
    """

    def __init__(self, min_length: int = 10, max_length: int = 1024) -> None:
        if not 1 <= min_length <= max_length:
            raise ValueError("need 1 <= min_length <= max_length")
        self.min_length = min_length
        self.max_length = max_length

    def __repr__(self) -> str:
        return f"PasswordPolicy(min_length={self.min_length}, max_length={self.max_length})"

    def is_too_long(self, password: str) -> bool:
        """Whether ``password`` exceeds the upper bound (cheap; no normalisation)."""
        return len(password) > self.max_length

    def check(self, password: str) -> None:
        """Accept ``password`` or say why not.

        Raises:
            WeakPassword: too long, too short, not valid Unicode text, or on the
                common-password list; ``detail`` says which.
        """
        if self.is_too_long(password):
            raise WeakPassword(f"The password must be at most {self.max_length} characters.")
        normalized = normalize_password(password)
        if len(normalized) < self.min_length:
            raise WeakPassword(f"The password must be at least {self.min_length} characters.")
        try:
            normalized.encode("utf-8")
        except UnicodeEncodeError:
            raise WeakPassword("The password is not valid Unicode text.") from None
        if normalized.casefold() in common_passwords():
            raise WeakPassword("The password is too common; choose a less predictable one.")
