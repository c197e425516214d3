"""Fixtures for the mail tests: real aiosmtpd servers, TLS files (see smtp_support)."""

from tests.unit.mail.smtp_support import silent_server, smtp_server, tls_files

__all__ = ["silent_server", "smtp_server", "tls_files"]
