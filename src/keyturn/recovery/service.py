"""The recovery flows: password reset, e-mail verification, e-mail change, notices.

(Over 300 lines: one class on purpose, so that every flow issues, redeems and
mails its tokens the same way; the store, the throttle and the job live apart.)

Every flow that mails answers before the mail goes out: it queues a sealed job
on the outbox and wakes the dispatcher (:mod:`keyturn.outbox`). A forgot-password
request does exactly the same work whatever the address, one throttle count and
one queued ``password_reset_request`` job; the worker looks the account up and,
only if there is one, issues the token and queues the mail
(:meth:`Recovery.handle_reset_request`), so neither the answer nor its timing
tells whether an account exists (OWASP Forgot Password Cheat Sheet).

Links are built from the public issuer URL (``--issuer``, else this server's
URL), never from the request's ``Host`` header, so a forged header cannot send a
victim's reset link to an attacker's host.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping

from keyturn.accounts.auth import UNKNOWN_CLIENT, AuthService
from keyturn.accounts.emails import normalize_email
from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import (
    InvalidCredentials,
    InvalidEmail,
    InvalidRequest,
    InvalidResetToken,
    InvalidVerificationToken,
    NotAuthenticated,
    StoreUnavailable,
)
from keyturn.mail.compose import ContextValue, MailKind
from keyturn.mail.jobs import enqueue_mail
from keyturn.outbox.store import OutboxStore, Sealer
from keyturn.recovery.store import AccountToken, AccountTokenStore, TokenPurpose
from keyturn.recovery.throttle import MailThrottle
from keyturn.settings import Settings
from keyturn.stores.records import User

__all__ = ["RESET_REQUEST_KIND", "Recovery", "hash_account_token"]

logger = logging.getLogger("keyturn.recovery")

#: The outbox kind of a forgot-password request (handled by :mod:`keyturn.recovery.jobs`).
RESET_REQUEST_KIND = "password_reset_request"
#: ``secrets.token_urlsafe(32)``: 43 characters of the URL-safe base64 alphabet.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_TYPED_ADDRESS = 320
_ALL_PURPOSES = frozenset(TokenPurpose)

#: Called with a user id after a password reset (see :attr:`Recovery.reset_hooks`).
ResetHook = Callable[[str], Awaitable[None]]


def hash_account_token(token: str) -> str:
    """The stored form of an account token: SHA-256 hex (a 256-bit random secret
    needs no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _well_formed(token: object) -> bool:
    return isinstance(token, str) and _TOKEN_SHAPE.fullmatch(token) is not None


class Recovery:
    """Password reset, e-mail verification and e-mail change, with their mail.

    Registered as an :class:`~keyturn.accounts.service.AccountListener`, so a
    registration sends the verification mail and a password change ends the
    account's reset links and sends a notice.
    """

    def __init__(
        self,
        *,
        tokens: AccountTokenStore,
        outbox: OutboxStore,
        sealer: Sealer,
        wake: Callable[[], None],
        auth: AuthService,
        throttle: MailThrottle,
        audit: AuditLog,
        settings: Settings,
        clock: Clock,
        tag_key: bytes | None = None,
    ) -> None:
        self.tokens = tokens
        self._outbox = outbox
        self._sealer = sealer
        self._wake = wake
        self.auth = auth
        self.accounts = auth.accounts
        self.throttle = throttle
        self.audit = audit
        self.settings = settings
        self.clock = clock
        #: Keys the recipient hash of log lines (the dispatcher's handler uses the same).
        self.tag_key = tag_key
        #: Run with the user id after every password reset, once sessions and
        #: tokens are ended. MFA HOOK (#15): the MFA integration appends a
        #: function here that ends the user's pending MFA challenges
        #: (``mfa_token``s), e.g. ``recovery.reset_hooks.append(challenges.end_user)``.
        self.reset_hooks: list[ResetHook] = []

    def __repr__(self) -> str:
        return f"Recovery(base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """Where the links in mail point: the public issuer URL."""
        return self.settings.public_issuer

    # --- shared steps -------------------------------------------------------------------

    async def _issue(
        self, user: User, purpose: TokenPurpose, ttl: int, *, new_email: str | None = None
    ) -> str:
        """A new token for ``user`` (the user's older ones of ``purpose`` die)."""
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.tokens.issue(
            AccountToken(
                token_hash=hash_account_token(secret),
                user_id=user.id,
                purpose=purpose,
                created_at=now,
                expires_at=now + ttl,
                new_email=new_email,
            )
        )
        return secret

    async def _redeem(self, token: object, purpose: TokenPurpose) -> AccountToken | None:
        if not _well_formed(token):
            return None
        assert isinstance(token, str)
        return await self.tokens.redeem(hash_account_token(token), purpose, now=self.clock.now())

    async def mail(self, kind: MailKind, to: str, context: Mapping[str, ContextValue]) -> None:
        """Queue one message and wake the dispatcher (delivery is never awaited).

        Raises:
            StoreUnavailable: the outbox cannot be reached.
        """
        await enqueue_mail(
            self._outbox,
            self._sealer,
            kind=kind,
            to=to,
            context=context,
            clock=self.clock,
            tag_key=self.tag_key,
        )
        self._wake()

    def _link(self, path: str, secret: str) -> str:
        return f"{self.base_url}{path}?token={secret}"

    # --- password reset -------------------------------------------------------------------

    async def request_password_reset(self, email: str, *, ip: str | None) -> None:
        """Accept a forgot-password request: count it, queue it, return.

        The same work for every input (see the module doc): nothing here reads
        the user store.

        Raises:
            TooManyAttempts: too many requests for this address or from this client.
            StoreUnavailable: the throttle or the outbox cannot be reached.
        """
        typed = email.strip()[:_MAX_TYPED_ADDRESS]
        await self.throttle.hit(typed, ip or UNKNOWN_CLIENT)
        payload = json.dumps({"v": 1, "email": typed}).encode()
        await self._outbox.enqueue(
            RESET_REQUEST_KIND, self._sealer.seal(payload), now=self.clock.now()
        )
        self._wake()
        self.audit.record(
            "password_reset_requested", email_hash=self.audit.email_hash(typed), ip=ip
        )

    async def handle_reset_request(self, email: str) -> bool:
        """The worker half of a forgot-password request: when ``email`` belongs to
        an enabled account, issue a reset token and queue its mail. Returns
        whether a mail was queued (for logs and tests; never shown to anyone).

        Raises:
            StoreUnavailable: a store cannot be reached (the job is retried).
        """
        try:
            address = normalize_email(email)
        except InvalidEmail:
            return False
        user = await self.accounts.users.get_by_email(address)
        if user is None or user.disabled:
            return False
        ttl = self.settings.password_reset_ttl
        secret = await self._issue(user, TokenPurpose.PASSWORD_RESET, ttl)
        link = self._link("/password/reset", secret)
        await self.mail(MailKind.PASSWORD_RESET, user.email, {"link": link, "expires_in": ttl})
        return True

    async def reset_password(self, token: object, new_password: str, *, ip: str | None) -> User:
        """Set a new password with a reset token, then secure the account: every
        session, refresh family and access token of the user ends (fanned out to
        every instance), the sign-in throttle of the account is cleared, the
        reset hooks run (MFA challenges), and a notice is mailed.

        The password policy is checked before the token is spent, so a weak
        password does not burn the link. Following the link proves the mailbox,
        so the address counts as verified afterwards.

        Raises:
            WeakPassword: ``new_password`` breaks the policy (the token stays usable).
            InvalidResetToken: unknown, expired, used, superseded, or the account
                is gone or disabled.
            StoreUnavailable: a store cannot be reached.
        """
        self.accounts.policy.check(new_password)
        record = await self._redeem(token, TokenPurpose.PASSWORD_RESET)
        if record is None:
            raise InvalidResetToken()
        user = await self.accounts.get(record.user_id)
        if user is None or user.disabled:
            raise InvalidResetToken()
        new_hash = await self.accounts.hasher.hash(new_password)
        users = self.accounts.users
        await users.set_password_hash(user.id, new_hash)
        await self.tokens.revoke_user(user.id, frozenset({TokenPurpose.PASSWORD_RESET}))
        if not user.email_verified:
            await users.set_email_verified(user.id, True)
        await self.accounts.changed(user.id, "password_reset")
        ended = await self.auth.sign_out_everywhere(user.id, ip=ip)
        await self.auth.throttle.record_success(user.email_key)
        for hook in self.reset_hooks:
            await hook(user.id)
        self.audit.record(
            "password_reset", user_id=user.id, email=user.email, ip=ip, sessions_ended=ended
        )
        await self.mail(MailKind.PASSWORD_RESET_NOTICE, user.email, {})
        return user

    # --- account listener -----------------------------------------------------------------

    async def registered(self, user: User) -> None:
        """Send the verification mail of a new account."""
        await self.send_verification(user)

    async def password_changed(self, user: User) -> None:
        """A changed password kills the account's reset links; the owner is told."""
        await self.tokens.revoke_user(user.id, frozenset({TokenPurpose.PASSWORD_RESET}))
        await self.mail(MailKind.PASSWORD_CHANGED_NOTICE, user.email, {})

    async def mfa_changed(self, user: User, change: str) -> None:
        """A second factor was added, removed or reset: the owner is told what
        (a :data:`~keyturn.accounts.mfa_factors.MfaChangeHook`)."""
        await self.mail(MailKind.MFA_CHANGED_NOTICE, user.email, {"change": change})

    # --- e-mail verification --------------------------------------------------------------

    async def send_verification(self, user: User) -> None:
        """Issue a verification token for the account's address and mail its link.

        Raises:
            StoreUnavailable: a store cannot be reached.
        """
        ttl = self.settings.email_verify_ttl
        secret = await self._issue(user, TokenPurpose.VERIFY_EMAIL, ttl)
        link = self._link("/verify-email", secret)
        await self.mail(MailKind.VERIFY_EMAIL, user.email, {"link": link, "expires_in": ttl})

    async def resend_verification(self, user_id: str, *, ip: str | None) -> None:
        """Send the verification mail again (nothing when already verified).

        Raises:
            NotAuthenticated: the user is gone.
            TooManyAttempts: too many mails for this address or client.
            StoreUnavailable: a store cannot be reached.
        """
        user = await self.accounts.get(user_id)
        if user is None:
            raise NotAuthenticated()
        await self.throttle.hit(user.email, ip or UNKNOWN_CLIENT)
        if not user.email_verified:
            await self.send_verification(user)

    async def verify_email(self, token: object) -> User:
        """Mark the account's address verified.

        Raises:
            InvalidVerificationToken: unknown, expired or used, or the account is gone.
            StoreUnavailable: a store cannot be reached.
        """
        record = await self._redeem(token, TokenPurpose.VERIFY_EMAIL)
        user = None if record is None else await self.accounts.get(record.user_id)
        if user is None:
            raise InvalidVerificationToken()
        await self.accounts.users.set_email_verified(user.id, True)
        await self.accounts.changed(user.id, "email_verified")
        self.audit.record("email_verified", user_id=user.id, email=user.email)
        return user

    # --- e-mail change --------------------------------------------------------------------

    async def request_email_change(
        self, user_id: str, new_email: str, current_password: str, *, ip: str | None
    ) -> None:
        """Check the password, then mail a confirmation link to ``new_email``.

        An address another account already has gets no mail and the same answer,
        so this cannot probe for accounts. Wrong passwords count towards the
        sign-in throttle.

        Raises:
            NotAuthenticated: the user is gone.
            InvalidEmail: ``new_email`` is not a valid address.
            InvalidRequest: ``new_email`` is the current address.
            TooManyAttempts: the sign-in or the mail throttle refuses.
            InvalidCredentials: ``current_password`` is wrong.
            StoreUnavailable: a store cannot be reached.
        """
        user = await self.accounts.get(user_id)
        if user is None:
            raise NotAuthenticated()
        address = normalize_email(new_email)
        await self._check_password(user, current_password, ip=ip)
        if address.casefold() == user.email.casefold():
            raise InvalidRequest("This is already the account's e-mail address.")
        await self.throttle.hit(address, ip or UNKNOWN_CLIENT)
        self.audit.record("email_change_requested", user_id=user.id, ip=ip)
        if await self.accounts.users.get_by_email(address) is not None:
            return
        ttl = self.settings.email_change_ttl
        secret = await self._issue(user, TokenPurpose.EMAIL_CHANGE, ttl, new_email=address)
        context: dict[str, ContextValue] = {
            "link": self._link("/email/confirm", secret),
            "expires_in": ttl,
            "new_email": address,
        }
        await self.mail(MailKind.EMAIL_CHANGE_CONFIRM, address, context)

    async def _check_password(self, user: User, password: str, *, ip: str | None) -> None:
        throttle, client = self.auth.throttle, ip or UNKNOWN_CLIENT
        await throttle.check(user.email_key, client)
        try:
            if self.accounts.policy.is_too_long(password) or user.disabled:
                raise InvalidCredentials()
            await self.accounts.hasher.verify(user.password_hash, password)
        except StoreUnavailable:
            await throttle.release(user.email_key)
            raise
        except InvalidCredentials:
            await throttle.record_failure(user.email_key, client)
            raise
        await throttle.record_success(user.email_key)

    async def confirm_email_change(self, token: object) -> User:
        """Move the account to the confirmed address (verified), end its other
        account tokens, and tell the old address.

        Raises:
            InvalidVerificationToken: unknown, expired or used, or the account is gone.
            EmailTaken: another account took the address meanwhile.
            StoreUnavailable: a store cannot be reached.
        """
        record = await self._redeem(token, TokenPurpose.EMAIL_CHANGE)
        user = None if record is None else await self.accounts.get(record.user_id)
        if record is None or user is None or record.new_email is None:
            raise InvalidVerificationToken()
        new_email = record.new_email
        await self.accounts.users.set_email(user.id, new_email, verified=True)
        await self.tokens.revoke_user(user.id, _ALL_PURPOSES)
        await self.accounts.changed(user.id, "email")
        self.audit.record("email_changed", user_id=user.id, email=new_email)
        await self.mail(MailKind.EMAIL_CHANGED_NOTICE, user.email, {"new_email": new_email})
        return user
