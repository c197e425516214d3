"""The accounts service: register, authenticate, change password, disable.

Framework-free: the web layer and the CLI both call this. Sign-in never reveals
whether an account exists: an unknown address, a wrong password and a disabled
account all raise the same :class:`~keyturn.errors.InvalidCredentials` after the
same time. Each costs one verification (an unknown address a dummy argon2 one),
and then every failure is padded with a sleep up to the hasher's *failure floor*
(:attr:`~keyturn.accounts.passwords.PasswordHasher.failure_floor`): the slowest
verification keyturn may have to do, measured at start-up against the slowest
imported hash in the store (:meth:`Accounts.calibrate_failure_floor`) and raised
whenever a slower one is seen. Without it a wrong password for an imported
bcrypt-12 account (about 340 ms) would stand out from an unknown address (one
argon2 check, about 55 ms) (#10 item 6).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from keyturn.accounts.emails import normalize_email
from keyturn.accounts.legacy_hashes import hash_format
from keyturn.accounts.passwords import PasswordHasher, PasswordPolicy
from keyturn.clock import Clock
from keyturn.errors import EmailTaken, InvalidCredentials, InvalidEmail, UserNotFound
from keyturn.fanout.changes import Change
from keyturn.fanout.instance import FanOut
from keyturn.stores.protocols import UserStore
from keyturn.stores.records import User

__all__ = ["AccountListener", "Accounts"]


class AccountListener(Protocol):
    """Hears of account events other domains react to (mail, #14)."""

    async def registered(self, user: User) -> None:
        """A new account was created."""
        ...

    async def password_changed(self, user: User) -> None:
        """``user``'s password was changed by its owner (not by a reset link)."""
        ...


class Accounts:
    """Account operations over a :class:`~keyturn.stores.protocols.UserStore`.

    Args:
        users: where accounts live.
        hasher: hashes and verifies passwords (argon2id, off the event loop).
        policy: what a new password must satisfy.
        clock: supplies ``created_at``.
        fanout: where a disabled, enabled or re-passworded account is published,
            so every instance drops its cached copies (:mod:`keyturn.fanout.instance`).
        timer: a monotonic clock in seconds, to measure how long a failed
            sign-in took (tests inject one).
        sleep: how a failed sign-in waits out the rest of the failure floor
            (tests inject one that records the delay).
    """

    def __init__(
        self,
        users: UserStore,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        clock: Clock,
        *,
        fanout: FanOut | None = None,
        timer: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.users = users
        self.hasher = hasher
        self.policy = policy
        self.clock = clock
        self.fanout = fanout
        self._timer = timer
        self._sleep = sleep
        self._calibrated = False
        self._calibrating = asyncio.Lock()
        #: Called after a password change or reset, and after a registration
        #: (mail, #14: end reset links, send the notice, send the verification).
        self.listeners: builtins.list[AccountListener] = []

    async def calibrate_failure_floor(self) -> float:
        """Set the failure floor from the slowest verification a failed sign-in
        may cost: a dummy argon2 check and a wrong password against the slowest
        imported hash of each format still in the store. Runs once (later calls
        return the current floor); the first sign-in runs it if nobody did.

        Returns:
            The failure floor, in seconds.

        Raises:
            StoreUnavailable: the user store is unreachable.
        """
        async with self._calibrating:
            if not self._calibrated:
                await self.hasher.calibrate(await self.users.slowest_legacy_hashes())
                self._calibrated = True
        return self.hasher.failure_floor

    async def register(self, email: str, password: str, *, roles: Sequence[str] = ()) -> User:
        """Create an account; the e-mail, the password and whether the address is
        taken are all checked before hashing, so a duplicate costs no argon2 work
        (#10 item 3). The store's unique key stays the final guard against a race.

        Raises:
            InvalidEmail: the address is not valid.
            WeakPassword: the password breaks the policy.
            EmailTaken: an account with this address (case-insensitively) exists.
        """
        normalized = normalize_email(email)
        self.policy.check(password)
        if await self.users.get_by_email(normalized) is not None:
            raise EmailTaken()
        user = User(
            id=str(uuid.uuid4()),
            email=normalized,
            password_hash=await self.hasher.hash(password),
            created_at=self.clock.now(),
            roles=tuple(roles),
        )
        await self.users.add(user)
        for listener in self.listeners:
            await listener.registered(user)
        return user

    async def import_user(
        self, email: str, password_hash: str, *, roles: Sequence[str] = ()
    ) -> User:
        """Create an account from another system's e-mail and password hash.

        The hash is stored as given (bcrypt, Django PBKDF2 or argon2) and replaced
        by argon2id at the account's first successful sign-in. No password policy
        applies until the user changes the password.

        Raises:
            InvalidEmail: the address is not valid.
            UnsupportedHash: keyturn cannot verify this hash (unknown format,
                malformed, or a cost out of range); the message never repeats it.
            EmailTaken: an account with this address (case-insensitively) exists.
        """
        normalized = normalize_email(email)
        hash_format(password_hash)
        user = User(
            id=str(uuid.uuid4()),
            email=normalized,
            password_hash=password_hash,
            created_at=self.clock.now(),
            roles=tuple(roles),
        )
        await self.users.add(user)
        return user

    async def authenticate(self, email: str, password: str) -> User:
        """The account for this e-mail and password, upgrading its hash if outdated.

        Unknown address, wrong password and disabled account are indistinguishable,
        by exception and by time: each costs one verification (argon2, a dummy one
        for an unknown address, or an imported account's bcrypt or PBKDF2 check),
        and the failure is then padded up to the failure floor (see the module
        doc), so all take as long as the slowest. Input that cannot belong to any
        account (invalid address syntax, a password over the policy's maximum
        length) is refused at once without hashing; that reveals nothing about
        accounts and keeps megabyte passwords away from argon2.

        Raises:
            InvalidCredentials: no such account, wrong password, or account disabled.
            StoreUnavailable: the user store is unreachable.
        """
        if self.policy.is_too_long(password):
            raise InvalidCredentials()
        try:
            normalized = normalize_email(email)
        except InvalidEmail:
            raise InvalidCredentials() from None
        if not self._calibrated:
            await self.calibrate_failure_floor()
        started = self._timer()
        try:
            user = await self.users.get_by_email(normalized)
            if user is None:
                await self.hasher.verify_dummy(password)
            await self.hasher.verify(user.password_hash, password)
            if user.disabled:
                raise InvalidCredentials()
        except InvalidCredentials:
            await self._pad_failure(started)
            raise
        if self.hasher.needs_rehash(user.password_hash):
            new_hash = await self.hasher.hash(password)
            await self.users.set_password_hash(user.id, new_hash)
            user = dataclasses.replace(user, password_hash=new_hash)
        return user

    async def _pad_failure(self, started: float) -> None:
        """Sleep until the failed sign-in begun at ``started`` has taken the floor."""
        remaining = self.hasher.failure_floor - (self._timer() - started)
        if remaining > 0:
            await self._sleep(remaining)

    async def change_password(self, user_id: str, current_password: str, new_password: str) -> User:
        """Replace a password after re-checking the current one.

        Raises:
            UserNotFound: no account has this id.
            InvalidCredentials: ``current_password`` is wrong or the account is disabled.
            WeakPassword: ``new_password`` breaks the policy.
        """
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound()
        if self.policy.is_too_long(current_password):
            raise InvalidCredentials()
        await self.hasher.verify(user.password_hash, current_password)
        if user.disabled:
            raise InvalidCredentials()
        self.policy.check(new_password)
        new_hash = await self.hasher.hash(new_password)
        await self.users.set_password_hash(user.id, new_hash)
        await self._changed(user.id, "password")
        changed = dataclasses.replace(user, password_hash=new_hash)
        for listener in self.listeners:
            await listener.password_changed(changed)
        return changed

    async def set_disabled(self, email: str, disabled: bool) -> User:
        """Disable or re-enable the account with this e-mail (operator action).

        Ending the account's sessions and tokens is the caller's job (the auth
        service), since this module knows nothing about them.

        Raises:
            UserNotFound: no account has this address.
        """
        # An address that fails today's rules is looked up as typed: the account
        # may predate them.
        with contextlib.suppress(InvalidEmail):
            email = normalize_email(email)
        user = await self.users.get_by_email(email)
        if user is None:
            raise UserNotFound()
        await self.users.set_disabled(user.id, disabled)
        await self._changed(user.id, "disabled" if disabled else "enabled")
        return dataclasses.replace(user, disabled=disabled)

    async def changed(self, user_id: str, reason: str) -> None:
        """Publish that the account changed (every instance drops its cached copy)."""
        await self._changed(user_id, reason)

    async def _changed(self, user_id: str, reason: str) -> None:
        if self.fanout is not None:
            await self.fanout.publish(Change.user_changed(user_id, reason))

    async def get(self, user_id: str) -> User | None:
        """The account with this id, or None."""
        return await self.users.get(user_id)

    async def list(self) -> builtins.list[User]:
        """Every account, oldest first."""
        return await self.users.list()
