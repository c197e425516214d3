"""Fixtures for the examples, run as real processes (see ``processes.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.examples.processes import ExampleProcesses, NotesServer


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleProcesses]:
    """A factory of example servers for the module; all stopped at its end."""
    processes = ExampleProcesses(tmp_path_factory.mktemp("examples"))
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def notes(examples: ExampleProcesses) -> NotesServer:
    """One notes app on a fresh SQLite file for the module's tests."""
    return examples.notes()


@pytest.fixture
def email(notes: NotesServer) -> str:
    """A fresh account on ``notes`` (password ``PASSWORD``)."""
    return notes.register()
