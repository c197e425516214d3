"""The auth service: what the HTTP routes and the CLI call to sign people in and out.

(Over 300 lines: one class on purpose, so every entry point gets the same rules
in the same order; the credentials, the throttles and the sessions it composes
live in modules of their own.)

Framework-free. It composes the accounts service, the session manager, the
sign-in throttle and the audit log, so that every entry point (``/login``,
``/auth/login``, later the password grant) gets the same rules in the same
order: throttle first (before any hashing), then the password, then a fresh
session, with an audit line for every outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.accounts.register_throttle import RegistrationThrottle
from keyturn.accounts.service import Accounts
from keyturn.accounts.throttle import LoginThrottle, throttle_key
from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import (
    Forbidden,
    InvalidCredentials,
    NotAuthenticated,
    StoreUnavailable,
    TooManyAttempts,
)
from keyturn.sessions.manager import IssuedSession, SessionManager
from keyturn.settings import Settings
from keyturn.stores.records import User

if TYPE_CHECKING:
    from keyturn.tokens.refresh import RefreshFamilies

__all__ = ["AuthService"]

#: The throttle's client identity when the caller does not know the address (CLI).
UNKNOWN_CLIENT = "unknown"


class AuthService:
    """Sign-in, sign-out, password change and account switches, audited.

    Args:
        accounts: users and passwords.
        sessions: server-side browser sessions.
        throttle: counts failed sign-ins per account and client.
        audit: where events are recorded.
        settings: ``allow_registration`` and friends.
        clock: the time of a fresh authentication (``auth_time``): the one
            ``sessions`` uses.
        families: the token sign-ins; when given, sign-out everywhere, password
            change and disabling also end the user's refresh families and
            access tokens.
        register_throttle: when given, counts every registration attempt per
            client address and in all (#10 item 3).
    """

    def __init__(
        self,
        accounts: Accounts,
        sessions: SessionManager,
        throttle: LoginThrottle,
        audit: AuditLog,
        settings: Settings,
        *,
        clock: Clock,
        families: RefreshFamilies | None = None,
        register_throttle: RegistrationThrottle | None = None,
    ) -> None:
        self.families = families
        self.register_throttle = register_throttle
        self.accounts = accounts
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit
        self.settings = settings
        self.clock = clock

    async def sign_in(
        self,
        email: str,
        password: str,
        *,
        remember: bool = False,
        ip: str,
        user_agent: str | None,
        replaces_secret: str | None = None,
    ) -> tuple[User, IssuedSession]:
        """Check the password and open a new session.

        The throttle is asked before any password hashing; an unknown address, a
        wrong password and a disabled account are one failure, by exception and
        by time. On success the session the browser already had
        (``replaces_secret``) is ended: every sign-in gets a new session ID, so a
        planted ID is worthless (session fixation). Sessions over the per-user
        cap are evicted, oldest first, and each eviction is audited.

        Raises:
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: wrong e-mail or password, or a disabled account.
            StoreUnavailable: a store the sign-in needs is unreachable.
        """
        user = await self.check_credentials(email, password, ip=ip, user_agent=user_agent)
        issued = await self.open_session(
            user, remember=remember, ip=ip, user_agent=user_agent, replaces_secret=replaces_secret
        )
        return user, issued

    async def open_session(
        self,
        user: User,
        *,
        remember: bool,
        ip: str,
        user_agent: str | None,
        replaces_secret: str | None,
        amr: tuple[str, ...] = ("pwd",),
        method: str | None = None,
    ) -> IssuedSession:
        """Start the session of a user who has just proved who they are (see
        :meth:`sign_in`: the browser's old session ends, evictions and the
        sign-in are audited). ``amr`` is what they proved it with; ``method``
        names a second factor or passkey for the audit line.

        Raises:
            NotAuthenticated: the account is disabled.
            StoreUnavailable: the session store is unreachable.
        """
        if replaces_secret is not None:
            replaced = await self.sessions.revoke(replaces_secret)
            if replaced is not None:
                self.audit.record(
                    "session_revoked",
                    user_id=replaced.user_id,
                    ip=ip,
                    user_agent=user_agent,
                    session=replaced.handle,
                    reason="replaced_at_sign_in",
                )
        issued = await self.sessions.create(
            user,
            remember=remember,
            ip=ip,
            user_agent=user_agent,
            auth_time=self.clock.now(),
            amr=amr,
        )
        for evicted in issued.evicted:
            self.audit.record(
                "session_evicted",
                user_id=evicted.user_id,
                ip=ip,
                session=evicted.handle,
                reason="max_sessions_per_user",
            )
        self.audit.record(
            "sign_in",
            user_id=user.id,
            email=user.email,
            ip=ip,
            user_agent=user_agent,
            session=issued.session.handle,
            remember=remember,
            amr=list(amr),
            method=method,
        )
        return issued

    async def check_credentials(
        self,
        email: str,
        password: str,
        *,
        ip: str,
        user_agent: str | None,
        via: str = "session",
        defer_success: bool = False,
    ) -> User:
        """The account for this e-mail and password, under the sign-in throttle.

        The one credential check of every sign-in (``/login``, ``/auth/login``
        and the password grant): the throttle is asked before any hashing, a
        failure counts against the account and the client and is audited as a
        failed ``sign_in`` (with ``via``), a success clears the account's count.
        The caller records the successful ``sign_in``. With ``defer_success``
        the account's count is left to the caller (the two-step sign-in clears
        it only after the second factor, and releases the reserved attempt
        otherwise), so a known password does not reset the count of wrong codes.

        Raises:
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: wrong e-mail or password, or a disabled account.
            StoreUnavailable: a store the sign-in needs is unreachable.
        """
        key = throttle_key(email)
        try:
            await self.throttle.check(key, ip)
        except TooManyAttempts as exc:
            self.audit.record(
                "sign_in",
                outcome="throttled",
                email_hash=self.audit.email_hash(email),
                ip=ip,
                user_agent=user_agent,
                retry_after=exc.retry_after,
                via=None if via == "session" else via,
            )
            raise
        try:
            user = await self.accounts.authenticate(email, password)
        except StoreUnavailable:
            await self.throttle.release(key)  # not a failed sign-in
            raise
        except InvalidCredentials:
            await self.throttle.record_failure(key, ip)
            self.audit.record(
                "sign_in",
                outcome="failed",
                email_hash=self.audit.email_hash(email),
                ip=ip,
                user_agent=user_agent,
                reason="invalid_credentials",
                via=None if via == "session" else via,
            )
            raise
        if not defer_success:
            await self.throttle.record_success(key)
        return user

    async def register(
        self, email: str, password: str, *, ip: str = UNKNOWN_CLIENT, user_agent: str | None = None
    ) -> User:
        """Create an account when registration is open, under the registration
        throttle (every attempt counts, whatever it answers, before any hashing).

        Raises:
            Forbidden: registration is closed (``--no-allow-registration``).
            TooManyAttempts: too many recent registrations from this client or in all.
            InvalidEmail, WeakPassword, EmailTaken: see :meth:`Accounts.register`.
            StoreUnavailable: a store the registration needs is unreachable.
        """
        if not self.settings.allow_registration:
            raise Forbidden("Registration is closed.")
        if self.register_throttle is not None:
            try:
                await self.register_throttle.hit(ip)
            except TooManyAttempts as exc:
                self.audit.record(
                    "registered",
                    outcome="throttled",
                    ip=ip,
                    user_agent=user_agent,
                    retry_after=exc.retry_after,
                )
                raise
        user = await self.accounts.register(email, password)
        self.audit.record("registered", user_id=user.id, email=user.email)
        return user

    async def sign_out(self, secret: str, *, ip: str | None, user_agent: str | None) -> None:
        """End the session with this secret ID; an unknown or expired one is a no-op.

        Raises:
            StoreUnavailable: the session store is unreachable.
        """
        session = await self.sessions.revoke(secret)
        if session is not None:
            self.audit.record(
                "sign_out",
                user_id=session.user_id,
                ip=ip,
                user_agent=user_agent,
                session=session.handle,
            )

    async def sign_out_everywhere(
        self, user_id: str, *, keep_secret: str | None = None, ip: str | None = None
    ) -> int:
        """End every session of a user, except ``keep_secret``'s when given, and
        every refresh family; without ``keep_secret`` also every access token
        issued before now (the per-user cut-off).

        Returns:
            How many sessions were ended.

        Raises:
            StoreUnavailable: the session store is unreachable.
        """
        families = 0
        if self.families is not None:
            # Keeping the current session keeps its tokens: no cut-off then.
            families = await self.families.end_user_tokens(user_id, cutoff=keep_secret is None)
        ended = await self.sessions.revoke_all(user_id, keep_secret=keep_secret)
        self.audit.record(
            "signed_out_everywhere",
            user_id=user_id,
            ip=ip,
            sessions_ended=len(ended),
            families_ended=families,
            kept_current=keep_secret is not None,
        )
        return len(ended)

    async def revoke_session(self, user_id: str, handle: str, *, ip: str | None = None) -> None:
        """End one of the user's sessions by its public handle.

        Raises:
            NotFound: the user has no session with this handle.
            StoreUnavailable: the session store is unreachable.
        """
        session = await self.sessions.revoke_handle(user_id, handle)
        self.audit.record("session_revoked", user_id=user_id, ip=ip, session=session.handle)

    async def change_password(
        self,
        secret: str,
        current_password: str,
        new_password: str,
        *,
        ip: str | None = None,
    ) -> IssuedSession:
        """Replace the caller's password, then secure the account's sessions.

        The current password is re-checked (and wrong guesses count towards the
        sign-in throttle, so a stolen session cannot be used to guess it). On
        success this session gets a new ID (a privilege change) and every other
        session of the user ends, with every refresh family and every access token
        issued before now (the caller's session included).

        Returns:
            The caller's session under its new secret ID; the old one is dead.

        Raises:
            NotAuthenticated: ``secret`` is not a live session.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: ``current_password`` is wrong.
            WeakPassword: ``new_password`` breaks the policy.
            StoreUnavailable: a store is unreachable.
        """
        validated = await self.sessions.validate(secret)
        user = validated.user
        await self.replace_password(
            user, current_password, new_password, ip=ip, session=validated.session.handle
        )
        issued = await self.sessions.rotate(secret, auth_time=self.clock.now())
        ended = await self.sessions.revoke_all(user.id, keep_secret=issued.secret)
        if self.families is not None:
            await self.families.end_user_tokens(user.id, cutoff=True)
        self.audit.record(
            "password_changed",
            user_id=user.id,
            email=user.email,
            ip=ip,
            session=issued.session.handle,
            sessions_ended=len(ended),
        )
        return issued

    async def change_password_for_token(
        self,
        user_id: str,
        family_id: str,
        current_password: str,
        new_password: str,
        *,
        ip: str | None = None,
    ) -> None:
        """Change the password of a bearer caller (``user_id``, signed in as
        refresh family ``family_id``, the token's ``sid``), then end every browser
        session, every other refresh family and every access token issued before
        now (the caller's included). The caller's family is kept: its next refresh
        gets a fresh access token.

        Raises:
            NotAuthenticated: the token's user is gone.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: ``current_password`` is wrong.
            WeakPassword: ``new_password`` breaks the policy.
            StoreUnavailable: a store is unreachable.
        """
        user = await self.accounts.get(user_id)
        if user is None:
            raise NotAuthenticated()
        await self.replace_password(user, current_password, new_password, ip=ip, session=family_id)
        families = 0
        if self.families is not None:
            families = await self.families.end_user_tokens(user.id, cutoff=True, keep=family_id)
        ended = await self.sessions.revoke_all(user.id)
        self.audit.record(
            "password_changed",
            user_id=user.id,
            email=user.email,
            ip=ip,
            session=family_id,
            sessions_ended=len(ended),
            families_ended=families,
            via="token",
        )

    async def reauthenticate(
        self, secret: str, password: str, *, ip: str, user_agent: str | None
    ) -> IssuedSession:
        """Prove again, with the password, that the session's user is at the
        keyboard: the session's sign-in time (``auth_time``) becomes now, and the
        session gets a new ID (a privilege change).

        The check is a sign-in's: throttled per account and client first, a
        wrong password counts as a failed sign-in and is audited as one.

        Returns:
            The session under its new secret ID; the old one is dead.

        Raises:
            NotAuthenticated: ``secret`` is not a live session.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: the password is wrong.
            StoreUnavailable: a store is unreachable.
        """
        validated = await self.sessions.validate(secret)
        user = await self.check_credentials(
            validated.user.email, password, ip=ip, user_agent=user_agent, via="reauthenticate"
        )
        if user.id != validated.user.id:  # the address moved to another account meanwhile
            raise InvalidCredentials()
        issued = await self.sessions.rotate(secret, auth_time=self.clock.now())
        self.audit.record(
            "reauthenticated",
            user_id=user.id,
            ip=ip,
            user_agent=user_agent,
            session=issued.session.handle,
        )
        return issued

    async def replace_password(
        self,
        user: User,
        current_password: str,
        new_password: str,
        *,
        ip: str | None,
        session: str | None,
    ) -> None:
        """Re-check ``current_password`` under the sign-in throttle and store the
        new one; a wrong guess counts and is audited. Ending sessions and tokens
        is the caller's (see :meth:`change_password`).

        Raises:
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: ``current_password`` is wrong.
            WeakPassword: ``new_password`` breaks the policy.
            StoreUnavailable: a store is unreachable.
        """
        client = ip or UNKNOWN_CLIENT
        await self.throttle.check(user.email_key, client)
        try:
            await self.accounts.change_password(user.id, current_password, new_password)
        except StoreUnavailable:
            await self.throttle.release(user.email_key)  # not a failed attempt
            raise
        except InvalidCredentials:
            await self.throttle.record_failure(user.email_key, client)
            self.audit.record(
                "password_changed",
                outcome="failed",
                user_id=user.id,
                ip=ip,
                session=session,
                reason="invalid_credentials",
            )
            raise
        await self.throttle.record_success(user.email_key)

    async def disable_user(self, email: str) -> User:
        """Disable an account and end all of its sessions and tokens at once
        (operator action).

        Raises:
            UserNotFound: no account has this address.
            StoreUnavailable: a store is unreachable.
        """
        user = await self.accounts.set_disabled(email, True)
        self.sessions.forget_user(user.id)
        if self.families is not None:
            await self.families.end_user_tokens(user.id, cutoff=True)
        ended = await self.sessions.revoke_all(user.id)
        self.audit.record(
            "user_disabled", user_id=user.id, email=user.email, sessions_ended=len(ended)
        )
        return user

    async def enable_user(self, email: str) -> User:
        """Let a disabled account sign in again (its old sessions stay ended).

        Raises:
            UserNotFound: no account has this address.
            StoreUnavailable: a store is unreachable.
        """
        user = await self.accounts.set_disabled(email, False)
        self.sessions.forget_user(user.id)
        self.audit.record("user_enabled", user_id=user.id, email=user.email)
        return user
