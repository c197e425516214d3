"""Session identifiers and the device details a sign-in records."""

from __future__ import annotations

from keyturn.sessions.devices import (
    MAX_IP,
    MAX_USER_AGENT,
    clean_ip,
    clean_user_agent,
    device_summary,
)
from keyturn.sessions.ids import hash_secret, is_handle, is_secret, new_handle, new_secret


def test_new_ids_have_the_shapes_the_checks_accept() -> None:
    """A new secret and handle pass their format checks; each other's never do."""
    secret, handle = new_secret(), new_handle()
    assert is_secret(secret) and not is_secret(handle)
    assert is_handle(handle) and not is_handle(secret)
    assert not is_secret(None) and not is_secret(secret + "=")


def test_the_store_sees_only_a_hash_of_the_secret() -> None:
    """hash_secret is SHA-256 hex: fixed length, never containing the secret."""
    secret = new_secret()
    hashed = hash_secret(secret)
    assert len(hashed) == 64 and secret not in hashed and hashed == hash_secret(secret)


def test_device_details_are_cleaned_and_capped() -> None:
    """Control characters go, lengths are capped, and empty becomes None."""
    assert clean_user_agent("Firefox\r\nSet-Cookie: x") == "FirefoxSet-Cookie: x"
    assert clean_user_agent("x" * 2000) == "x" * MAX_USER_AGENT
    assert clean_ip("1" * 100) == "1" * MAX_IP
    assert clean_ip("\x00") is None and clean_user_agent(None) is None


def test_device_summary_names_browser_and_system() -> None:
    """A User-Agent becomes "browser on system", or the best part of it."""
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    assert device_summary(firefox) == "Firefox on Linux"
    assert device_summary("curl/8.5.0") == "curl"
    assert device_summary(None) == "Unknown device"
    assert device_summary("x" * 100) == "x" * 40


def test_handles_never_start_with_a_dash() -> None:
    """Operators paste handles into ``keyturn session revoke ID``; one starting with
    ``-`` would be read as an option. (Of 5,000 plain base64url draws about 78 would.)"""
    handles = [new_handle() for _ in range(5000)]
    assert all(is_handle(handle) for handle in handles)
    assert not [handle for handle in handles if handle.startswith("-")]
    assert len(set(handles)) == len(handles)
