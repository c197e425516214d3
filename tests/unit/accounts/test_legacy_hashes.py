"""Imported bcrypt and Django PBKDF2 hashes: verified, upgraded at sign-in, refused when unknown."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable

import bcrypt
import pytest

from keyturn.accounts import legacy_hashes
from keyturn.accounts.legacy_hashes import (
    BcryptScheme,
    DjangoPbkdf2Scheme,
    UnsupportedHash,
    hash_format,
)
from keyturn.accounts.passwords import PasswordHasher
from keyturn.clock import FrozenClock
from keyturn.errors import EmailTaken, InvalidCredentials, InvalidEmail
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryStorage

PASSWORD = "correct horse battery staple"
IP = "192.0.2.10"

#: OpenWall crypt_blowfish's test vector (also in the bcrypt package's tests).
OPENWALL_BCRYPT = ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
#: Django 4.1's tests/auth_tests/test_hashers.py, test_pbkdf2:
#: make_password("lètmein", "seasalt", "pbkdf2_sha256").
DJANGO_VECTOR = (
    "lètmein",
    "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
)
#: passlib's django_pbkdf2_sha1 known-correct hash (Django's PBKDF2SHA1PasswordHasher).
DJANGO_SHA1_VECTOR = (
    "not a password",
    "pbkdf2_sha1$10000$wz5B6WkasRoF$atJmJ1o+XfJxKq1+Nu1f1i57Z5I=",
)


def bcrypt_hash(password: str, *, prefix: bytes = b"2b", rounds: int = 4) -> str:
    """A real bcrypt hash, as PHP/Node/Ruby would store it."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds, prefix=prefix)).decode()


def django_hash(password: str, *, salt: str = "q8Zc1VnW7xKd", iterations: int = 1000) -> str:
    """Django's documented format: algorithm$iterations$salt$base64(pbkdf2_hmac)."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


@pytest.fixture
def hasher() -> PasswordHasher:
    """Cheap argon2 (tests only) with the default legacy schemes."""
    return PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)


# --- known vectors -----------------------------------------------------------------


async def test_openwall_bcrypt_vector(hasher: PasswordHasher) -> None:
    """The classic $2a$ vector verifies, and one changed character does not."""
    password, stored = OPENWALL_BCRYPT
    await hasher.verify(stored, password)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, "U*V")


async def test_django_vector_from_djangos_own_tests(hasher: PasswordHasher) -> None:
    """Django's pbkdf2_sha256 test vector verifies (non-ASCII password, UTF-8)."""
    password, stored = DJANGO_VECTOR
    await hasher.verify(stored, password)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, "lètmeinz")


async def test_django_sha1_vector(hasher: PasswordHasher) -> None:
    """Django's older pbkdf2_sha1 format verifies too."""
    password, stored = DJANGO_SHA1_VECTOR
    await hasher.verify(stored, password)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, password + "!")


@pytest.mark.parametrize("prefix", [b"2a", b"2b"])
async def test_generated_bcrypt_hashes_verify(hasher: PasswordHasher, prefix: bytes) -> None:
    """Freshly made $2a$/$2b$ hashes verify with the right password only."""
    stored = bcrypt_hash(PASSWORD, prefix=prefix)
    await hasher.verify(stored, PASSWORD)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, PASSWORD + " ")


async def test_php_2y_and_django_bcrypt_prefix(hasher: PasswordHasher) -> None:
    """PHP's $2y$ spelling and Django's "bcrypt$" wrapper are the same bcrypt."""
    stored = bcrypt_hash(PASSWORD)
    await hasher.verify("$2y$" + stored[4:], PASSWORD)
    await hasher.verify("bcrypt$" + stored, PASSWORD)


async def test_generated_django_hash_verifies(hasher: PasswordHasher) -> None:
    """A hash built per Django's format verifies; the wrong password does not."""
    stored = django_hash(PASSWORD)
    await hasher.verify(stored, PASSWORD)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, PASSWORD.upper())


async def test_legacy_password_is_checked_as_typed_not_normalised(hasher: PasswordHasher) -> None:
    """The old system hashed the raw text: a decomposed accent is a different password."""
    composed = "caf\u00e9 au lait, please"
    stored = django_hash(composed)
    await hasher.verify(stored, composed)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, "cafe\u0301 au lait, please")


# --- bcrypt's 72-byte limit -----------------------------------------------------------


async def test_bcrypt_72_bytes_is_accepted(hasher: PasswordHasher) -> None:
    """A password of exactly 72 bytes is bcrypt's whole input and verifies."""
    password = "x" * 70 + "é"  # 72 bytes in UTF-8
    assert len(password.encode()) == 72
    await hasher.verify(bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode(), password)


async def test_bcrypt_over_72_bytes_is_refused_not_truncated(hasher: PasswordHasher) -> None:
    """73 bytes whose first 72 match the hash still fail: never accept unchecked bytes."""
    stored = bcrypt.hashpw(b"y" * 72, bcrypt.gensalt(4)).decode()
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, "y" * 73)
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, "y" * 71 + "é")  # 73 bytes, 72 characters


def test_over_long_password_costs_a_full_bcrypt_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal spends one bcrypt computation, like a wrong password does."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(legacy_hashes.bcrypt, "checkpw", counting)
    stored = bcrypt_hash(PASSWORD)
    with pytest.raises(InvalidCredentials):
        BcryptScheme().verify(stored, "z" * 100)
    assert calls == [stored.encode()]


# --- unknown and malformed formats fail closed ----------------------------------------

MALFORMED = [
    "",
    "plaintext-password",
    "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3",
    "bcrypt_sha256$$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$6$rounds=5000$salt$hash",
    "!Aa1Bb2Cc3Dd4Ee5Ff6",
    "$2b$12$tooshort",
    "$2x$04$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$2b$31$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$2b$03$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "pbkdf2_sha256$0$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
    "pbkdf2_sha256$99999999$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
    "pbkdf2_sha256$1000$salt$not*base64",
    "pbkdf2_sha256$1000$salt$c2hvcnQ=",
    "pbkdf2_sha256$1000$$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
    "pbkdf2_sha512$1000$salt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
    "$argon2id$v=19$m=19456,t=2,p=1$garbage",
]


@pytest.mark.parametrize("stored", MALFORMED)
def test_unknown_or_malformed_hash_is_unsupported(stored: str) -> None:
    """hash_format refuses what keyturn cannot verify, without echoing the hash."""
    with pytest.raises(UnsupportedHash) as refused:
        hash_format(stored)
    if len(stored) > 12:
        assert stored not in str(refused.value)


@pytest.mark.parametrize("stored", MALFORMED)
async def test_unknown_or_malformed_hash_never_verifies(
    hasher: PasswordHasher, stored: str
) -> None:
    """Verification against such a hash is the generic failure, never a crash."""
    with pytest.raises(InvalidCredentials):
        await hasher.verify(stored, PASSWORD)


async def test_legacy_schemes_can_be_switched_off() -> None:
    """legacy_schemes=() means bcrypt and Django hashes never verify."""
    strict = PasswordHasher(
        memory_kib=1024, time_cost=1, allow_weak_parameters=True, legacy_schemes=()
    )
    with pytest.raises(InvalidCredentials):
        await strict.verify(bcrypt_hash(PASSWORD), PASSWORD)


def test_hash_format_names_each_format() -> None:
    """Import can report what it stored."""
    assert hash_format(bcrypt_hash(PASSWORD)) == "bcrypt"
    assert hash_format(django_hash(PASSWORD)) == "pbkdf2_sha256"
    assert hash_format(DJANGO_SHA1_VECTOR[1]) == "pbkdf2_sha1"
    argon = PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
    assert hash_format(argon._argon2.hash("x")) == "argon2id"


def test_legacy_hashes_always_need_a_rehash(hasher: PasswordHasher) -> None:
    """bcrypt and Django hashes are replaced by argon2id at the next sign-in."""
    assert hasher.needs_rehash(bcrypt_hash(PASSWORD))
    assert hasher.needs_rehash(django_hash(PASSWORD))


# --- off the event loop ---------------------------------------------------------------


async def test_legacy_checks_run_in_worker_threads(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bcrypt and PBKDF2 run in a worker thread, never on the event loop's thread."""
    threads: list[int] = []
    real_checkpw, real_pbkdf2 = bcrypt.checkpw, hashlib.pbkdf2_hmac

    def checkpw(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.get_ident())
        return real_checkpw(password, hashed)

    def pbkdf2_hmac(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        threads.append(threading.get_ident())
        return real_pbkdf2(name, password, salt, iterations)

    stored_bcrypt, stored_django = bcrypt_hash(PASSWORD), django_hash(PASSWORD)
    monkeypatch.setattr(legacy_hashes.bcrypt, "checkpw", checkpw)
    monkeypatch.setattr(legacy_hashes.hashlib, "pbkdf2_hmac", pbkdf2_hmac)
    await hasher.verify(stored_bcrypt, PASSWORD)
    await hasher.verify(stored_django, PASSWORD)
    assert len(threads) == 2
    assert threading.get_ident() not in threads


# --- sign-in upgrades the hash --------------------------------------------------------


@pytest.fixture
async def keyturn(hasher: PasswordHasher) -> AsyncIterator[Keyturn]:
    """A started Keyturn on memory storage with the cheap hasher."""
    async with Keyturn(
        Settings(), storage=MemoryStorage(), clock=FrozenClock(), hasher=hasher
    ) as runtime:
        yield runtime


@pytest.mark.parametrize("make", [bcrypt_hash, django_hash], ids=["bcrypt", "django"])
async def test_sign_in_with_a_legacy_hash_upgrades_it_to_argon2id(
    keyturn: Keyturn, make: Callable[[str], str]
) -> None:
    """The first sign-in stores argon2id; the old hash is gone and the password still works."""
    legacy = make(PASSWORD)
    imported = await keyturn.accounts.import_user("Old@Example.com", legacy, roles=["admin"])
    user, _ = await keyturn.auth.sign_in("old@example.com", PASSWORD, ip=IP, user_agent=None)
    assert user.id == imported.id and user.roles == ("admin",)
    stored = await keyturn.storage.users.get(imported.id)
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert legacy not in stored.password_hash
    assert not keyturn.hasher.needs_rehash(stored.password_hash)
    await keyturn.auth.sign_in("old@example.com", PASSWORD, ip=IP, user_agent=None)


async def test_wrong_password_on_a_legacy_hash_fails_generically(keyturn: Keyturn) -> None:
    """Same error as an unknown account, and the stored hash is left alone."""
    legacy = bcrypt_hash(PASSWORD)
    imported = await keyturn.accounts.import_user("old@example.com", legacy)
    with pytest.raises(InvalidCredentials) as wrong:
        await keyturn.auth.sign_in("old@example.com", "not the password", ip=IP, user_agent=None)
    with pytest.raises(InvalidCredentials) as unknown:
        await keyturn.auth.sign_in("nobody@example.com", PASSWORD, ip=IP, user_agent=None)
    assert (wrong.value.code, wrong.value.detail) == (unknown.value.code, unknown.value.detail)
    stored = await keyturn.storage.users.get(imported.id)
    assert stored is not None and stored.password_hash == legacy


@pytest.mark.parametrize(
    "stored",
    [
        bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(8)).decode(),
        django_hash(PASSWORD, iterations=60_000),
    ],
    ids=["bcrypt", "django"],
)
async def test_wrong_password_costs_what_the_right_one_does(
    hasher: PasswordHasher, stored: str
) -> None:
    """A wrong password does the full legacy computation: same timing class as a right one."""

    async def timed(password: str) -> float:
        start = time.perf_counter()
        with contextlib.suppress(InvalidCredentials):
            await hasher.verify(stored, password)
        return time.perf_counter() - start

    right, wrong = [], []
    for _ in range(7):
        right.append(await timed(PASSWORD))
        wrong.append(await timed("an entirely wrong password"))
    ratio = statistics.median(wrong) / statistics.median(right)
    assert 0.5 < ratio < 2.0, (right, wrong)


# --- Accounts.import_user -------------------------------------------------------------


async def test_import_user_refuses_bad_input(keyturn: Keyturn) -> None:
    """Invalid addresses, unverifiable hashes and duplicates are refused before storing."""
    with pytest.raises(InvalidEmail):
        await keyturn.accounts.import_user("not-an-address", bcrypt_hash(PASSWORD))
    with pytest.raises(UnsupportedHash):
        await keyturn.accounts.import_user("a@example.com", "md5$salt$abcdef")
    await keyturn.accounts.import_user("a@example.com", django_hash(PASSWORD))
    with pytest.raises(EmailTaken):
        await keyturn.accounts.import_user("A@EXAMPLE.com", bcrypt_hash(PASSWORD))
    assert [user.email for user in await keyturn.accounts.list()] == ["a@example.com"]


def test_django_scheme_parses_its_own_format() -> None:
    """parse() returns what Django's encode() put in."""
    digest, iterations, salt, expected = DjangoPbkdf2Scheme().parse(DJANGO_VECTOR[1])
    assert (digest, iterations, salt) == ("sha256", 390000, b"seasalt")
    assert len(expected) == 32
