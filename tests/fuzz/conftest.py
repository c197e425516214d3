"""The fuzz run's server: one real ``keyturn serve`` on a free loopback port and a
fresh SQLite file (tests/live.py), started once for the module and stopped after it,
with a confidential client for introspection (``keyturn client add --confidential``).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.live import LiveServer, LiveServers


@dataclass
class FuzzTarget:
    """The server and the confidential client registered on it."""

    server: LiveServer
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    """``keyturn serve`` with its default settings (or ``FUZZ_SERVE_ARGS``, to fuzz
    another configuration), for the fuzzer to attack."""
    servers = LiveServers(tmp_path_factory.mktemp("fuzz"))
    try:
        server = servers(*shlex.split(os.environ.get("FUZZ_SERVE_ARGS", "")))
        added = server.cli(
            "client",
            "add",
            "fuzz-introspection",
            "--confidential",
            "--json",
            "--grant",
            "client_credentials",
        )
        assert added.returncode == 0, added.stderr
        client = json.loads(added.stdout)
        yield FuzzTarget(server, client["client_id"], client["client_secret"])
    finally:
        servers.stop_all()
