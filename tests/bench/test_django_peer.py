"""The Django peer of ``benchmarks/claim.py`` (issue #17 item 3) serves what the
comparison assumes: both whoami routes authenticate, DEBUG is off, one worker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from django_peer.launch import DjangoPeer, start_django  # noqa: E402

pytest.importorskip("django", reason="the [bench] extra is not installed")


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoPeer]:
    started = start_django(tmp_path_factory.mktemp("django"), "a long benchmark password", cpu=None)
    try:
        yield started
    finally:
        started.server.stop()


@pytest.mark.parametrize(
    ("path", "credential", "via"),
    [("/whoami/session", "session", "session"), ("/whoami/jwt", "jwt", "jwt")],
)
def test_whoami_answers_the_seeded_user_only_with_its_credential(
    peer: DjangoPeer, path: str, credential: str, via: str
) -> None:
    """Each whoami route answers the user for its own credential and 401 without one."""
    headers = getattr(peer, credential)
    with httpx.Client(base_url=peer.server.url) as client:
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200
        assert answer.json()["via"] == via and answer.json()["email"].endswith("@bench.example")
        assert client.get(path).status_code == 401


def test_the_peer_runs_with_debug_off(peer: DjangoPeer) -> None:
    """An unknown path is a plain 404, not Django's debug page (DEBUG = False)."""
    with httpx.Client(base_url=peer.server.url) as client:
        answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert "DEBUG = True" not in answer.text and "URLconf" not in answer.text
