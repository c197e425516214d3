"""The embedded default mailer: each message becomes an ``.eml`` file in a folder.

Without ``--smtp-url`` a developer still gets every mail, and can open the file
and click its link. The messages hold live secret links, so the folder is made
mode 0700 and each file 0600, and a file appears whole or not at all (written to
a temporary name, flushed, then renamed), so a reader never sees half a message.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from keyturn.clock import Clock
from keyturn.errors import ConfigurationError, RetryableDeliveryError

__all__ = ["DEFAULT_OUTBOX_DIR", "FolderMailer"]

#: Where mail goes when no SMTP server is configured (relative to the working dir).
DEFAULT_OUTBOX_DIR = Path("keyturn-outbox")


class FolderMailer:
    """A :class:`~keyturn.mail.mailer.Mailer` that writes ``<time>-<random>.eml`` files."""

    def __init__(self, directory: Path | str = DEFAULT_OUTBOX_DIR, *, clock: Clock) -> None:
        """``clock`` names the files (the composition root passes the instance's)."""
        self.directory = Path(directory)
        self._clock = clock

    def __repr__(self) -> str:
        return f"FolderMailer({str(self.directory)!r})"

    def prepare(self) -> None:
        """Create the folder (mode 0700), or tighten an existing one to 0700.

        Raises:
            ConfigurationError: the path is a symlink or not a directory.
        """
        path = self.directory
        if path.is_symlink():
            raise ConfigurationError(f"--mail-outbox-dir {path} must not be a symlink.")
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.is_dir():
            raise ConfigurationError(f"--mail-outbox-dir {path} is not a directory.")
        if stat.S_IMODE(path.stat().st_mode) != 0o700:
            path.chmod(0o700)

    def write(self, message: EmailMessage) -> Path:
        """Write ``message`` atomically and return the file's path (blocking I/O).

        Raises:
            ConfigurationError: see :meth:`prepare`.
            OSError: the disk is full or the folder is not writable.
        """
        self.prepare()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock.now()))
        final = self.directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return final

    async def send(self, message: EmailMessage) -> None:
        """Write ``message`` off the event loop.

        Raises:
            RetryableDeliveryError: the file could not be written (disk full, ...).
            ConfigurationError: the folder is unusable (a symlink, a file).
        """
        try:
            await asyncio.to_thread(self.write, message)
        except OSError as exc:
            detail = f"outbox folder write failed: {type(exc).__name__}"
            raise RetryableDeliveryError(detail) from None
