"""examples/notes/client.py, the mobile/CLI client, against a running notes app.

The script is run as a user runs it (``python -m examples.notes.client
--no-browser``); this test then plays the user's browser: it opens the sign-in
URL the client printed, signs in on keyturn's page, and follows the redirect to
the client's loopback listener. What the client did is then checked through the
notes API with a token of its own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import uuid

import httpx
from tests.examples.processes import PASSWORD, NotesServer, example_environment
from tests.live import clean_environment


def _cookie(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie: {response.headers}")


def play_browser(notes: NotesServer, url: str, email: str, password: str) -> int:
    """Open ``url`` (the client's /oauth/authorize), sign in on keyturn's page and
    follow the redirect to the client's listener; the sign-in page's status.
    (The ``__Host-`` cookies are carried by hand: Python's cookie jar keeps
    ``Secure`` cookies for https only.)"""
    with httpx.Client(base_url=notes.url, follow_redirects=False, timeout=30) as browser:
        login_url = browser.get(url).headers["location"]
        page = browser.get(login_url)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        back = re.search(r'name="next" value="([^"]+)"', page.text)
        assert token and back, page.text
        assert f'value="{email}"' in page.text  # login_hint prefilled the address
        signed_in = browser.post(
            "/login",
            data={
                "email": email,
                "password": password,
                "csrf_token": token.group(1),
                "next": back.group(1).replace("&amp;", "&"),
            },
            headers={"Cookie": _cookie(page, "__Host-keyturn_csrf"), "Origin": notes.url},
        )
        if signed_in.status_code != 303:
            return signed_in.status_code
        session = _cookie(signed_in, "__Host-keyturn_session")
        answer = browser.get(signed_in.headers["location"], headers={"Cookie": session})
        assert answer.status_code == 303, answer.text
        callback = answer.headers["location"]
        assert callback.startswith("http://127.0.0.1:") and "code=" in callback
        assert httpx.get(callback, timeout=30).status_code == 200  # the client's listener
        return 303


def run_client(
    notes: NotesServer, *args: str, password: str = PASSWORD, sign_in_as: str | None = None
) -> tuple[int, str, str]:
    """Run the client with ``--no-browser`` and sign in for it as ``sign_in_as``
    (its ``--email``) with ``password``."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.notes.client",
            "--url",
            notes.url,
            "--no-browser",
            "--timeout",
            "30",
            *args,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environment(example_environment({"NOTES_PASSWORD": PASSWORD})),
        cwd=tempfile.mkdtemp(prefix="keyturn-example-"),
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("sign in: open "):
            email = sign_in_as or args[args.index("--email") + 1]
            play_browser(notes, line.removeprefix("sign in: open ").strip(), email, password)
            break
    out, err = process.communicate(timeout=60)
    return process.returncode, "".join(lines) + out, err


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
    assert any(line.startswith("sign in: open ") for line in lines)
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


def test_a_refused_sign_in_leaves_the_client_without_tokens(notes: NotesServer, email: str) -> None:
    """With a wrong password the browser stays on the sign-in page, no code reaches
    the client: it says so on stderr, exits 1, and has written nothing."""
    code, out, err = run_client(
        notes, "--email", email, "--timeout", "5", password="not the right password"
    )
    assert code == 1
    assert "failed: sign in: no answer from the browser" in err
    assert "create:" not in out
    assert titles(notes, email) == []
