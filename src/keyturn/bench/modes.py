"""The four ways keyturn is measured: sessions on SQLite and on Redis, bearer
tokens with strict and with stateless revocation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from keyturn.bench.errors import BenchError

__all__ = ["MODES", "Mode", "parse_modes"]


@dataclass(frozen=True)
class Mode:
    """One server configuration and the credential that is measured on it."""

    name: str
    credential: Literal["session", "token"]
    store: Literal["sqlite", "redis"]
    revocation_mode: Literal["strict", "stateless"]
    label: str

    def serve_args(self, redis_url: str | None = None) -> list[str]:
        """The ``keyturn serve`` flags of this mode (one worker, as measured)."""
        args = ["--workers", "1", "--revocation-mode", self.revocation_mode]
        if self.store == "redis":
            if redis_url is None:
                raise BenchError(f"{self.name} needs a Redis URL")
            args += ["--redis-url", redis_url]
        return args


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("session-sqlite", "session", "sqlite", "strict", "session cookie, SQLite"),
        Mode("session-redis", "session", "redis", "strict", "session cookie, Redis"),
        Mode("token-strict", "token", "sqlite", "strict", "bearer token, strict revocation"),
        Mode(
            "token-stateless", "token", "sqlite", "stateless", "bearer token, stateless revocation"
        ),
    )
}


def parse_modes(text: str | Sequence[str] | None) -> list[Mode]:
    """``"session-sqlite,token-strict"`` (or a list of names) into modes, in the
    canonical order; ``None`` or ``"all"`` is every mode.

    Raises:
        BenchError: an unknown name.
    """
    if text is None:
        return list(MODES.values())
    names = text.split(",") if isinstance(text, str) else list(text)
    wanted = {name.strip() for name in names if name.strip()}
    if not wanted or wanted == {"all"}:
        return list(MODES.values())
    unknown = sorted(wanted - set(MODES))
    if unknown:
        raise BenchError(f"unknown mode {', '.join(unknown)} (choose from {', '.join(MODES)})")
    return [mode for name, mode in MODES.items() if name in wanted]
