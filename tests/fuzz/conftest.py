"""The fuzz run's server: one real ``keyturn serve`` on a free loopback port and a
fresh SQLite file (tests/live.py), started once for the module and stopped after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.live import LiveServer, LiveServers


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``keyturn serve`` with its default settings, for the fuzzer to attack."""
    servers = LiveServers(tmp_path_factory.mktemp("fuzz"))
    try:
        yield servers()
    finally:
        servers.stop_all()
