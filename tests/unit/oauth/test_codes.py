"""Authorization codes: hashed, at most 60 s, bound, single use, replay reported
(SPEC "OAuth 2.1 authorization code flow", RFC 6749 4.1.2, RFC 7636 4.6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.oauth.support import CHALLENGE, VERIFIER

from keyturn.clock import FrozenClock
from keyturn.errors import CodeRejected, CodeReplayed, ConfigurationError, InvalidGrant
from keyturn.oauth.codes import AuthorizationCodes, IssuedCode, hash_code
from keyturn.oauth.memory import MemoryCodeStore
from keyturn.oauth.store import AuthorizationCode

REDIRECT = "http://127.0.0.1:5000/callback"


def make_codes(clock: FrozenClock, **kwargs: Any) -> tuple[AuthorizationCodes, MemoryCodeStore]:
    """AuthorizationCodes over a memory store."""
    store = MemoryCodeStore()
    return AuthorizationCodes(store, clock, **kwargs), store


async def issue(codes: AuthorizationCodes) -> IssuedCode:
    """A code for client ``spa`` and user ``u1``, bound to the Appendix B challenge."""
    return await codes.issue(
        client_id="spa",
        user_id="u1",
        redirect_uri=REDIRECT,
        code_challenge=CHALLENGE,
        scopes=("openid", "email"),
        session_id="handle-1",
        auth_time=1_799_999_000.0,
        nonce="n-1",
        amr=("pwd", "otp"),
    )


async def redeem(codes: AuthorizationCodes, code: str, **overrides: str) -> Any:
    """Redeem with the right client, redirect URI and verifier unless overridden."""
    kwargs = {"client_id": "spa", "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    kwargs.update(overrides)
    return await codes.redeem(code, **kwargs)


async def test_code_has_256_bits_and_only_its_hash_is_stored(clock: FrozenClock) -> None:
    """The code is 43 base64url characters; the store holds its SHA-256 only."""
    codes, store = make_codes(clock)
    issued = await issue(codes)
    assert len(issued.code) == 43
    assert issued.record.code_hash == hash_code(issued.code) != issued.code
    assert await store.get(issued.code) is None
    assert await store.get(hash_code(issued.code)) == issued.record
    assert issued.code not in repr(issued) and issued.code not in repr(issued.record)


async def test_redeem_returns_everything_the_code_was_bound_to(clock: FrozenClock) -> None:
    """Redeeming gives back user, scopes, session, nonce, auth_time and amr."""
    codes, _ = make_codes(clock)
    issued = await issue(codes)
    grant = await redeem(codes, issued.code)
    assert (grant.user_id, grant.scopes, grant.session_id) == (
        "u1",
        ("openid", "email"),
        "handle-1",
    )
    assert (grant.nonce, grant.auth_time, grant.amr) == ("n-1", 1_799_999_000.0, ("pwd", "otp"))
    assert grant.used_at == clock.now()


async def test_code_expires_at_60_seconds(clock: FrozenClock) -> None:
    """A code redeems at 59.9 s and not at 60 s."""
    codes, _ = make_codes(clock)
    late = await issue(codes)
    on_time = await issue(codes)
    clock.advance(59.9)
    await redeem(codes, on_time.code)
    clock.advance(0.1)
    with pytest.raises(CodeRejected) as caught:
        await redeem(codes, late.code)
    assert caught.value.reason == "expired" and caught.value.code == "invalid_grant"


@pytest.mark.parametrize("ttl", [0, -1, 61, 600])
def test_ttl_above_60_seconds_is_a_configuration_error(clock: FrozenClock, ttl: float) -> None:
    """The SPEC bound is a hard limit: no setting can make codes live longer."""
    with pytest.raises(ConfigurationError):
        make_codes(clock, ttl=ttl)


async def test_shorter_ttl_is_honoured(clock: FrozenClock) -> None:
    """A 30 s TTL refuses a code at 30 s."""
    codes, _ = make_codes(clock, ttl=30)
    issued = await issue(codes)
    clock.advance(30)
    with pytest.raises(CodeRejected, match="invalid"):
        await redeem(codes, issued.code)


async def test_replay_is_invalid_grant_and_reports_the_original_grant(clock: FrozenClock) -> None:
    """The second use fails and names the grant and the family the first one issued."""
    codes, _ = make_codes(clock)
    issued = await issue(codes)
    first = await redeem(codes, issued.code)
    await codes.mark_issued(first, "family-42")
    with pytest.raises(CodeReplayed) as caught:
        await redeem(codes, issued.code)
    error = caught.value
    assert isinstance(error, InvalidGrant) and error.code == "invalid_grant"
    assert error.grant.grant_id == first.grant_id
    assert error.grant.family_id == "family-42"
    assert error.grant.user_id == "u1"


async def test_replay_after_expiry_is_still_reported(clock: FrozenClock) -> None:
    """A used code replayed after its 60 s still names what to revoke."""
    codes, _ = make_codes(clock)
    issued = await issue(codes)
    await redeem(codes, issued.code)
    clock.advance(600)
    with pytest.raises(CodeReplayed):
        await redeem(codes, issued.code)


class InterleavingCodeStore(MemoryCodeStore):
    """A memory store that yields to the event loop on every read, so parallel
    redemptions all pass their checks before any of them consumes the code."""

    async def get(self, code_hash: str) -> AuthorizationCode | None:
        record = await super().get(code_hash)
        await asyncio.sleep(0)  # a yield, not a wait: the others read it too
        return record


async def test_parallel_redemptions_have_exactly_one_winner(clock: FrozenClock) -> None:
    """Of ten concurrent exchanges of one code, one succeeds and nine are replays,
    even when all ten read the unused code before any consumes it."""
    codes = AuthorizationCodes(InterleavingCodeStore(), clock)
    issued = await issue(codes)
    results = await asyncio.gather(
        *(redeem(codes, issued.code) for _ in range(10)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, CodeReplayed) for r in results if r not in winners)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"code_verifier": "a" * 43}, "pkce"),
        ({"code_verifier": "short"}, "pkce"),
        ({"code_verifier": ""}, "pkce"),
        ({"client_id": "other"}, "client"),
        ({"redirect_uri": "http://127.0.0.1:5001/callback"}, "redirect_uri"),
        ({"redirect_uri": "https://app.example.com/cb"}, "redirect_uri"),
    ],
)
async def test_wrong_verifier_client_or_redirect_uri_is_refused(
    clock: FrozenClock, overrides: dict[str, str], reason: str
) -> None:
    """Redemption checks PKCE, client and the exact redirect URI (even the port)."""
    codes, _ = make_codes(clock)
    issued = await issue(codes)
    with pytest.raises(CodeRejected) as caught:
        await redeem(codes, issued.code, **overrides)
    assert caught.value.reason == reason and caught.value.code == "invalid_grant"


async def test_failed_check_does_not_burn_the_code(clock: FrozenClock) -> None:
    """A wrong verifier leaves the code for the rightful client."""
    codes, _ = make_codes(clock)
    issued = await issue(codes)
    with pytest.raises(CodeRejected):
        await redeem(codes, issued.code, code_verifier="b" * 43)
    assert (await redeem(codes, issued.code)).user_id == "u1"


@pytest.mark.parametrize("code", ["", "x", "A" * 43, "A" * 44, "\u00e9" * 43])
async def test_unknown_or_malformed_code_is_rejected(clock: FrozenClock, code: str) -> None:
    """A code keyturn never issued is invalid_grant."""
    codes, _ = make_codes(clock)
    with pytest.raises(CodeRejected) as caught:
        await redeem(codes, code)
    assert caught.value.reason == "unknown"


async def test_purge_keeps_codes_for_the_replay_window(clock: FrozenClock) -> None:
    """Expired codes stay for replay detection, then are deleted."""
    codes, store = make_codes(clock, replay_window=3600)
    issued = await issue(codes)
    clock.advance(3600)
    assert await codes.purge() == 0
    clock.advance(61)
    assert await codes.purge() == 1
    assert await store.get(issued.record.code_hash) is None


async def test_mark_issued_on_an_unused_code_changes_nothing(clock: FrozenClock) -> None:
    """The family marker belongs to a redeemed code only."""
    codes, store = make_codes(clock)
    issued = await issue(codes)
    await codes.mark_issued(issued.record, "family-1")
    stored = await store.get(issued.record.code_hash)
    assert stored is not None and stored.family_id is None
