"""Self-signed certificates for ``keyturn serve --https``."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keyturn import tls
from keyturn.tls import ensure_self_signed_certificate


def _load(cert_path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_path.read_bytes())


def test_certificate_names_localhost_and_loopback(tmp_path: Path) -> None:
    """The certificate is valid for localhost, 127.0.0.1 and ::1 with an EC P-256 key."""
    cert_path, _ = ensure_self_signed_certificate(tmp_path)
    certificate = _load(cert_path)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    addresses = san.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("127.0.0.1") in addresses
    assert ipaddress.ip_address("::1") in addresses
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    lifetime = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)


def test_key_file_is_private(tmp_path: Path) -> None:
    """Only the owner may read the private key (mode 0600)."""
    _, key_path = ensure_self_signed_certificate(tmp_path)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600


def test_second_call_reuses_the_files(tmp_path: Path) -> None:
    """A valid certificate is reused rather than regenerated."""
    first = ensure_self_signed_certificate(tmp_path)
    before = [path.read_bytes() for path in first]
    second = ensure_self_signed_certificate(tmp_path)
    assert second == first
    assert [path.read_bytes() for path in second] == before


def test_certificate_close_to_expiry_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate expiring within a day is regenerated."""
    monkeypatch.setattr(tls, "VALIDITY", datetime.timedelta(hours=12))
    cert_path, _ = ensure_self_signed_certificate(tmp_path)
    old_serial = _load(cert_path).serial_number
    monkeypatch.undo()
    ensure_self_signed_certificate(tmp_path)
    assert _load(cert_path).serial_number != old_serial


def test_new_names_trigger_a_new_certificate(tmp_path: Path) -> None:
    """Asking for a host the existing certificate lacks regenerates it."""
    cert_path, _ = ensure_self_signed_certificate(tmp_path)
    ensure_self_signed_certificate(tmp_path, hostnames=("localhost", "keyturn.test"))
    san = _load(cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "keyturn.test" in san.get_values_for_type(x509.DNSName)
