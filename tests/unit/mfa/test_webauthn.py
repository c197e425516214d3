"""Passkeys: registration and authentication round trips with a software authenticator."""

from __future__ import annotations

import pytest
from tests.unit.mfa.softauthn import SoftAuthenticator, b64url

from keyturn.clock import FrozenClock
from keyturn.errors import WebAuthnFailed
from keyturn.mfa.memory import MemoryPasskeyStore, MemoryWebAuthnChallengeStore
from keyturn.mfa.webauthn import Passkeys, PasskeyUser, RelyingParty

ISSUER = "https://login.example.test"
ORIGIN = "https://login.example.test"
ALICE = PasskeyUser(user_id="0b8a7c4e-alice", name="alice@example.test", display_name="Alice")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store() -> MemoryPasskeyStore:
    return MemoryPasskeyStore()


@pytest.fixture
def passkeys(clock: FrozenClock, store: MemoryPasskeyStore) -> Passkeys:
    return Passkeys(
        store,
        MemoryWebAuthnChallengeStore(),
        clock,
        rp=RelyingParty.from_issuer(ISSUER, name="Example"),
    )


async def register(passkeys: Passkeys, authenticator: SoftAuthenticator) -> None:
    options = await passkeys.registration_options(ALICE)
    await passkeys.verify_registration(ALICE.user_id, authenticator.create(options), name="Phone")


def test_relying_party_comes_from_the_issuer() -> None:
    """The RP ID is the issuer's host and the expected origin keeps scheme and port."""
    rp = RelyingParty.from_issuer("http://localhost:8123/")
    assert (rp.id, rp.origin) == ("localhost", "http://localhost:8123")
    with pytest.raises(ValueError):
        RelyingParty.from_issuer("localhost")


async def test_registration_options_prefer_resident_keys_and_exclude_existing(
    passkeys: Passkeys,
) -> None:
    """Options ask for a discoverable credential and UV (preferred) and exclude
    credentials the user already has, so one authenticator is not registered twice."""
    first = await passkeys.registration_options(ALICE)
    assert first["rp"] == {"id": "login.example.test", "name": "Example"}
    assert first["authenticatorSelection"]["residentKey"] == "preferred"
    assert first["authenticatorSelection"]["userVerification"] == "preferred"
    assert first["excludeCredentials"] == []
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await passkeys.verify_registration(ALICE.user_id, authenticator.create(first))
    second = await passkeys.registration_options(ALICE)
    assert [c["id"] for c in second["excludeCredentials"]] == [b64url(authenticator.credential_id)]


async def test_registration_stores_the_credential(
    passkeys: Passkeys, store: MemoryPasskeyStore, clock: FrozenClock
) -> None:
    """A verified registration stores id, key, counter, name, time, transports and flags."""
    authenticator = SoftAuthenticator(origin=ORIGIN, backup_eligible=True)
    await register(passkeys, authenticator)
    (credential,) = await store.list_for_user(ALICE.user_id)
    assert credential.id == authenticator.credential_id
    assert credential.name == "Phone"
    assert credential.created_at == clock.now()
    assert credential.transports == ("internal", "hybrid")
    assert (credential.backup_eligible, credential.backed_up) == (True, True)
    assert credential.attachment == "platform"
    assert credential.last_used_at is None


async def test_registration_from_another_origin_is_refused(passkeys: Passkeys) -> None:
    """A create() made on a phishing origin does not register a credential."""
    options = await passkeys.registration_options(ALICE)
    response = SoftAuthenticator(origin="https://evil.test").create(options)
    with pytest.raises(WebAuthnFailed):
        await passkeys.verify_registration(ALICE.user_id, response)
    assert await passkeys.list(ALICE.user_id) == []


async def test_registration_for_another_rp_id_is_refused(passkeys: Passkeys) -> None:
    """authenticatorData scoped to another RP ID (its hash) is refused."""
    options = await passkeys.registration_options(ALICE)
    response = SoftAuthenticator(origin=ORIGIN).create(options, rp_id="example.test")
    with pytest.raises(WebAuthnFailed):
        await passkeys.verify_registration(ALICE.user_id, response)


async def test_registration_challenge_is_bound_to_its_user(passkeys: Passkeys) -> None:
    """Options made for one user cannot register a passkey on another account."""
    options = await passkeys.registration_options(ALICE)
    with pytest.raises(WebAuthnFailed) as caught:
        await passkeys.verify_registration(
            "mallory", SoftAuthenticator(origin=ORIGIN).create(options)
        )
    assert caught.value.reason == "wrong_challenge"


async def test_registration_cannot_reuse_a_credential_id(passkeys: Passkeys) -> None:
    """A credential id registered once is not registered again (WebAuthn 7.1)."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    options = await passkeys.registration_options(ALICE)
    with pytest.raises(WebAuthnFailed) as caught:
        await passkeys.verify_registration(ALICE.user_id, authenticator.create(options))
    assert caught.value.reason == "credential_exists"


async def test_passwordless_sign_in_round_trip(
    passkeys: Passkeys, store: MemoryPasskeyStore, clock: FrozenClock
) -> None:
    """A discoverable credential with UV signs the user in as a complete MFA sign-in."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    options = await passkeys.authentication_options()
    assert "allowCredentials" not in options
    assert options["userVerification"] == "required"
    assert options["rpId"] == "login.example.test"
    clock.advance(10)
    result = await passkeys.verify_authentication(authenticator.get(options))
    assert result.user_id == ALICE.user_id
    assert result.user_verified
    assert result.amr == ("hwk", "mfa")
    assert not result.clone_warning
    (credential,) = await store.list_for_user(ALICE.user_id)
    assert (credential.sign_count, credential.last_used_at) == (1, clock.now())


async def test_synced_passkey_is_a_software_key(passkeys: Passkeys) -> None:
    """A backup-eligible (multi-device) passkey signs in with amr swk, not hwk."""
    authenticator = SoftAuthenticator(origin=ORIGIN, backup_eligible=True, counts=False)
    await register(passkeys, authenticator)
    result = await passkeys.verify_authentication(
        authenticator.get(await passkeys.authentication_options())
    )
    assert result.amr == ("swk", "mfa")


async def test_second_factor_lists_the_users_credentials(passkeys: Passkeys) -> None:
    """As a second factor, options allow only the user's credentials, UV preferred,
    and a passkey without UV still counts (the password was the other factor)."""
    authenticator = SoftAuthenticator(origin=ORIGIN, user_verification=False)
    await register(passkeys, authenticator)
    options = await passkeys.authentication_options(ALICE.user_id)
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(authenticator.credential_id)]
    assert options["userVerification"] == "preferred"
    result = await passkeys.verify_authentication(authenticator.get(options), user_id=ALICE.user_id)
    assert (result.user_verified, result.amr) == (False, ("hwk",))


async def test_second_factor_refuses_another_users_credential(passkeys: Passkeys) -> None:
    """Bob's challenge cannot be answered with Alice's passkey."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    options = await passkeys.authentication_options("bob")
    with pytest.raises(WebAuthnFailed) as caught:
        await passkeys.verify_authentication(authenticator.get(options), user_id="bob")
    assert caught.value.reason == "unknown_credential"


@pytest.mark.parametrize(
    ("tamper", "reason", "cause"),
    [
        ({"origin": "https://evil.test"}, "assertion_invalid", "origin"),
        ({"rp_id": "evil.test"}, "assertion_invalid", "RP ID hash"),
        ({"challenge": b64url(b"\x00" * 32)}, "unknown_challenge", ""),
        ({"bad_signature": True}, "assertion_invalid", "signature"),
        ({"uv": False}, "assertion_invalid", "User verification is required"),
        ({"user_handle": b"someone-else"}, "user_handle", ""),
    ],
    ids=["wrong-origin", "wrong-rp-id-hash", "wrong-challenge", "bad-signature", "no-uv", "handle"],
)
async def test_tampered_assertions_are_refused(
    passkeys: Passkeys, tamper: dict[str, object], reason: str, cause: str
) -> None:
    """Each L2 check refuses the assertion it exists for: origin, RP ID hash,
    challenge, signature, required user verification, and user handle."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    options = await passkeys.authentication_options()
    with pytest.raises(WebAuthnFailed) as caught:
        await passkeys.verify_authentication(authenticator.get(options, **tamper))  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert cause in str(caught.value.__cause__ or "")


async def test_a_challenge_is_single_use(passkeys: Passkeys) -> None:
    """Replaying a captured assertion fails even when the authenticator has no counter."""
    authenticator = SoftAuthenticator(origin=ORIGIN, counts=False)
    await register(passkeys, authenticator)
    response = authenticator.get(await passkeys.authentication_options())
    await passkeys.verify_authentication(response)
    with pytest.raises(WebAuthnFailed) as caught:
        await passkeys.verify_authentication(response)
    assert caught.value.reason == "unknown_challenge"


async def test_a_failed_attempt_spends_the_challenge(passkeys: Passkeys) -> None:
    """After a bad signature the same challenge cannot be tried again."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    options = await passkeys.authentication_options()
    with pytest.raises(WebAuthnFailed):
        await passkeys.verify_authentication(authenticator.get(options, bad_signature=True))
    with pytest.raises(WebAuthnFailed) as caught:
        await passkeys.verify_authentication(authenticator.get(options))
    assert caught.value.reason == "unknown_challenge"


async def test_a_challenge_expires(passkeys: Passkeys, clock: FrozenClock) -> None:
    """An assertion for options older than the challenge TTL is refused."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    options = await passkeys.authentication_options()
    clock.advance(301)
    with pytest.raises(WebAuthnFailed):
        await passkeys.verify_authentication(authenticator.get(options))


async def test_counter_regression_is_flagged_and_never_lowers_the_count(
    passkeys: Passkeys, store: MemoryPasskeyStore
) -> None:
    """A counter that does not increase is accepted with clone_warning for the
    audit log, and the stored counter keeps the highest value seen."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    await passkeys.verify_authentication(
        authenticator.get(await passkeys.authentication_options(), sign_count=7)
    )
    result = await passkeys.verify_authentication(
        authenticator.get(await passkeys.authentication_options(), sign_count=3)
    )
    assert result.clone_warning
    (credential,) = await store.list_for_user(ALICE.user_id)
    assert credential.sign_count == 7


async def test_counter_regression_can_be_refused(
    clock: FrozenClock, store: MemoryPasskeyStore
) -> None:
    """With refuse_cloned, an assertion whose counter went backwards fails."""
    strict = Passkeys(
        store,
        MemoryWebAuthnChallengeStore(),
        clock,
        rp=RelyingParty.from_issuer(ISSUER),
        refuse_cloned=True,
    )
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(strict, authenticator)
    await strict.verify_authentication(
        authenticator.get(await strict.authentication_options(), sign_count=5)
    )
    with pytest.raises(WebAuthnFailed) as caught:
        await strict.verify_authentication(
            authenticator.get(await strict.authentication_options(), sign_count=5)
        )
    assert caught.value.reason == "sign_count"


async def test_zero_counters_are_not_a_clone(passkeys: Passkeys) -> None:
    """Authenticators without a counter (always 0, e.g. synced passkeys) are not flagged."""
    authenticator = SoftAuthenticator(origin=ORIGIN, counts=False)
    await register(passkeys, authenticator)
    for _ in range(2):
        result = await passkeys.verify_authentication(
            authenticator.get(await passkeys.authentication_options())
        )
        assert not result.clone_warning


async def test_malformed_responses_are_a_webauthn_failure(passkeys: Passkeys) -> None:
    """Garbage in the response is WebAuthnFailed, never an unexpected exception."""
    for garbage in ("not json", {"id": "x"}, {"id": "", "rawId": "", "response": {}}):
        with pytest.raises(WebAuthnFailed):
            await passkeys.verify_authentication(garbage)
        with pytest.raises(WebAuthnFailed):
            await passkeys.verify_registration(ALICE.user_id, garbage)


async def test_remove_is_limited_to_the_owner(passkeys: Passkeys) -> None:
    """A user removes their own passkey; another user's id removes nothing."""
    authenticator = SoftAuthenticator(origin=ORIGIN)
    await register(passkeys, authenticator)
    assert not await passkeys.remove("bob", authenticator.credential_id)
    assert await passkeys.remove(ALICE.user_id, authenticator.credential_id)
    assert await passkeys.list(ALICE.user_id) == []


async def test_user_handles_longer_than_64_bytes_are_refused(passkeys: Passkeys) -> None:
    """The user handle is the account id; WebAuthn caps it at 64 bytes."""
    with pytest.raises(ValueError):
        await passkeys.registration_options(PasskeyUser(user_id="u" * 65, name="long"))
