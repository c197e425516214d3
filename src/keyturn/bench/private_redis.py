"""A private Redis for the ``session-redis`` mode: ``redis-server`` (or
``valkey-server``) on a free loopback port, in a temporary directory, with
persistence off, stopped at the end of the run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from keyturn.bench.errors import BenchError
from keyturn.bench.servers import LOOPBACK, STOP_TIMEOUT, free_port, read_text

__all__ = ["RedisServer", "redis_binary"]


def redis_binary() -> str | None:
    """``redis-server`` (or ``valkey-server``) on PATH, if any."""
    return shutil.which("redis-server") or shutil.which("valkey-server")


class RedisServer:
    """A private Redis on a free loopback port, persistence off, in ``workdir``."""

    def __init__(self, workdir: Path, binary: str | None = None) -> None:
        found = binary or redis_binary()
        if found is None:
            raise BenchError("no redis-server or valkey-server on PATH")
        self.binary = found
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it and wait for ``PING``.

        Raises:
            BenchError: it exited or did not answer in time.
        """
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - a binary found on PATH
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = read_text(self.workdir / "redis.log").strip().splitlines()
                raise BenchError(f"redis-server exited: {log[-1] if log else 'no log'}")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"redis-server did not answer PING within {timeout:g} s")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
