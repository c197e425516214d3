"""``--smtp-url`` parsed: where mail goes, how it is encrypted, who logs in.

``smtp://user:pass@host:port`` connects in the clear and upgrades with STARTTLS
when the server offers it (``?starttls=require`` refuses to go on without it);
``smtps://`` speaks TLS from the first byte (implicit TLS, port 465). The password
is kept out of ``repr`` and ``str``, and parse errors never quote the URL, so a
misconfiguration cannot print the credential into a log.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from keyturn.errors import ConfigurationError

__all__ = ["SmtpUrl"]

_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True, slots=True)
class SmtpUrl:
    """A parsed SMTP URL. Build it with :meth:`parse`."""

    host: str
    port: int
    implicit_tls: bool
    require_starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpUrl:
        """Parse ``smtp://`` or ``smtps://`` URLs; user and password are percent-decoded.

        Raises:
            ConfigurationError: another scheme, no host, a bad port, or an unknown
                query parameter. The message never contains the URL itself.
        """
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise ConfigurationError("--smtp-url is not a valid URL (bad port?).") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ConfigurationError("--smtp-url must start with smtp:// or smtps://.")
        if not parts.hostname:
            raise ConfigurationError("--smtp-url needs a host: smtp://user:pass@host:port.")
        if parts.path not in ("", "/") or parts.fragment:
            raise ConfigurationError("--smtp-url takes no path or fragment.")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ConfigurationError(f"--smtp-url: unknown parameter(s) {sorted(unknown)}.")
        starttls = query.get("starttls", ["auto"])[-1].lower()
        if starttls not in ("auto", "require") or (scheme == "smtps" and "starttls" in query):
            raise ConfigurationError(
                "--smtp-url: starttls may be 'auto' or 'require', and only with smtp://."
            )
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not username:
            raise ConfigurationError("--smtp-url has a password but no user name.")
        return cls(
            host=parts.hostname,
            port=port or _DEFAULT_PORTS[scheme],
            implicit_tls=scheme == "smtps",
            require_starttls=starttls == "require",
            username=username,
            password=password,
        )

    @property
    def is_loopback(self) -> bool:
        """True for ``localhost`` and loopback addresses (a local relay or a test)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = ""
        if self.username:
            auth = self.username + (":***" if self.password is not None else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "?starttls=require" if self.require_starttls else ""
        return f"{scheme}://{auth}{host}:{self.port}{query}"

    def __repr__(self) -> str:
        return f"SmtpUrl({str(self)!r})"
