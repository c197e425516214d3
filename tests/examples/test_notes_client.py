"""examples/notes/client.py, the mobile/CLI client, against a running notes app.

The script is run as a user runs it (``python -m examples.notes.client``); what
it did is then checked through the notes API with a token of its own.
"""

from __future__ import annotations

import uuid

from tests.examples.processes import PASSWORD, NotesServer, run_example


def run_client(notes: NotesServer, *args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    result = run_example(
        "examples.notes.client", "--url", notes.url, *args, env={"NOTES_PASSWORD": password}
    )
    return result.returncode, result.stdout, result.stderr


def titles(notes: NotesServer, email: str) -> list[str]:
    """The titles of ``email``'s notes, newest first, read with a fresh token."""
    token = notes.token(email, "notes:read")["access_token"]
    with notes.client() as http:
        response = http.get("/api/notes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return [note["title"] for note in response.json()]


def test_client_registers_signs_in_creates_lists_refreshes_and_logs_out(
    notes: NotesServer,
) -> None:
    """Every step of the client's flow succeeds, the note it wrote is stored for its
    user, and after its logout its access and refresh tokens are both refused."""
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    code, out, err = run_client(notes, "--email", email, "--register", "--title", "Groceries")
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    lines = out.splitlines()
    assert lines[0].startswith(f"register: created {email}")
    assert any(line.startswith("token: Bearer access token") for line in lines)
    assert any("scope 'notes:read notes:write'" in line for line in lines)
    assert any(line.startswith("create: note ") and "'Groceries'" in line for line in lines)
    assert "list: 1 note(s): 'Groceries'" in lines
    assert any(line.endswith("refresh token rotated") for line in lines)
    assert "list again: 1 note(s) with the refreshed token" in lines
    assert "after logout: the access token is refused (401)" in lines
    assert "after logout: the refresh token is refused (invalid_grant)" in lines
    assert lines[-1] == "done"

    assert titles(notes, email) == ["Groceries"]

    # A second run on the same account: it exists, so the client just signs in.
    code, out, err = run_client(notes, "--email", email, "--register", "--title", "Bread")
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert out.splitlines()[0] == f"register: {email} already exists, signing in"
    assert "list: 2 note(s): 'Bread', 'Groceries'" in out.splitlines()
    assert titles(notes, email) == ["Bread", "Groceries"]


def test_client_reports_a_refused_sign_in_and_exits_1(notes: NotesServer, email: str) -> None:
    """With a wrong password the client stops at the password grant, says why on
    stderr, exits 1, and has written nothing."""
    code, out, err = run_client(notes, "--email", email, password="not the right password")
    assert code == 1
    assert "failed: password grant: expected 200, got 400" in err
    assert "invalid_grant" in err
    assert "create:" not in out
    assert titles(notes, email) == []
