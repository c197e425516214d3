"""Self-signed TLS certificates for local HTTPS (``keyturn serve --https``).

Framework-free: only :mod:`cryptography`. The certificate is for development;
production terminates TLS with real certificates (``--tls-cert/--tls-key``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILENAME = "keyturn-cert.pem"
KEY_FILENAME = "keyturn-key.pem"

#: Lifetime of a generated certificate.
VALIDITY = datetime.timedelta(days=30)

#: A certificate expiring sooner than this is replaced instead of reused.
RENEW_BEFORE = datetime.timedelta(days=1)


def ensure_self_signed_certificate(
    directory: Path,
    *,
    hostnames: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1", "::1"),
) -> tuple[Path, Path]:
    """Return ``(cert_path, key_path)`` of a self-signed certificate in ``directory``.

    Existing files are reused while they are readable, cover ``hostnames`` and
    ``ips``, and stay valid for more than a day; otherwise a new EC P-256 key
    and a 30-day certificate with those names as subject alternative names are
    written. The key file is created with mode 0600.

    Raises:
        OSError: the directory or files cannot be created or written.
        ValueError: an entry of ``ips`` is not an IP address.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / CERT_FILENAME
    key_path = directory / KEY_FILENAME
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    if _reusable(cert_path, key_path, hostnames, addresses):
        return cert_path, key_path

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (hostnames or ["keyturn"])[0])])
    alt_names: list[x509.GeneralName] = [x509.DNSName(host) for host in hostnames]
    alt_names += [x509.IPAddress(address) for address in addresses]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    certificate = builder.sign(key, hashes.SHA256())

    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a fresh file readable only by its owner."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, 0o600)  # in case a umask or ACL widened it
    os.replace(temporary, path)


def _reusable(
    cert_path: Path,
    key_path: Path,
    hostnames: Sequence[str],
    addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if key.public_key() != certificate.public_key():
        return False
    now = datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc - now <= RENEW_BEFORE:
        return False
    names = set(san.get_values_for_type(x509.DNSName))
    ips = set(san.get_values_for_type(x509.IPAddress))
    if not (set(hostnames) <= names and set(addresses) <= ips):
        return False
    if key_path.stat().st_mode & 0o077:
        os.chmod(key_path, 0o600)
    return True
