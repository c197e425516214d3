"""examples/reports: a service that trusts notes users through the notes app's
JWKS alone, signature-only and in strict mode (introspection), as real processes."""

from __future__ import annotations

import base64
import json
import time

import pytest
from tests.examples.processes import (
    ExampleProcesses,
    NotesServer,
    ReportsServer,
    read_json,
)
from tests.services import free_port

#: The strict reports service reuses an introspection answer at most this long.
CACHE_TTL = 1.0

SCOPES = "reports:read reports:write"


@pytest.fixture(scope="module")
def client_file(notes: NotesServer) -> str:
    """The confidential client registered by the example's own script."""
    path = notes.register_reports_client()
    assert path.stat().st_mode & 0o077 == 0  # the secret is readable by its owner only
    created = read_json(path)
    assert created["client_id"] and created["client_secret"]
    return str(path)


@pytest.fixture(scope="module")
def reports(examples: ExampleProcesses, notes: NotesServer) -> ReportsServer:
    """Signature-only: verifies with the JWKS, cannot see revocations."""
    return examples.reports(notes.url)


@pytest.fixture(scope="module")
def strict_reports(
    examples: ExampleProcesses, notes: NotesServer, client_file: str
) -> ReportsServer:
    """Strict: also introspects every token (answers cached for ``CACHE_TTL``)."""
    return examples.reports(
        notes.url, "--client-file", client_file, "--introspection-cache-ttl", str(CACHE_TTL)
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_reports_accepts_a_notes_token_and_keeps_data_per_user(
    notes: NotesServer, reports: ReportsServer, email: str
) -> None:
    """A token from the notes app's password grant works at reports: the caller is
    the token's ``sub`` (the same user the notes app knows) and sees only their own
    counts."""
    token = notes.token(email, SCOPES)["access_token"]
    with notes.client() as http:
        sub = http.get("/auth/whoami", headers=bearer(token)).json()["sub"]
    with reports.client() as http:
        health = http.get("/healthz").json()
        assert health["revocation"] == "signature-only" and health["sign_in"] == "off"
        assert "Sign-in with keyturn is not set up" in http.get("/").text  # no client
        saved = http.post("/reports", json={"title": "weekly"}, headers=bearer(token))
        assert saved.status_code == 201, saved.text
        summary = http.get("/reports/summary", headers=bearer(token))
        listed = http.get("/reports", headers=bearer(token)).json()
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["subject"] == sub
    assert body["reports"] == 1 and body["requests"] == 2
    assert sorted(body["scopes"]) == ["reports:read", "reports:write"]
    assert 0 < body["token_expires_in"] <= 900
    assert [report["title"] for report in listed] == ["weekly"]


def test_reports_refuses_missing_garbage_and_tampered_tokens(
    notes: NotesServer, reports: ReportsServer, email: str
) -> None:
    """No token: 401 ``WWW-Authenticate: Bearer``. Garbage, or a real token whose
    payload was altered (the signature no longer matches): 401 ``invalid_token``."""
    token = notes.token(email, SCOPES)["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "reports:read reports:write admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged_payload}.{signature}"
    with reports.client() as http:
        missing = http.get("/reports/summary")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for bad in ("garbage", "a.b.c", tampered):
            refused = http.get("/reports/summary", headers=bearer(bad))
            assert refused.status_code == 401, bad
            assert refused.json()["error"] == "invalid_token"
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert http.get("/reports/summary", headers=bearer(token)).status_code == 200


def test_reports_requires_its_own_scopes(
    notes: NotesServer, reports: ReportsServer, email: str
) -> None:
    """A notes-only token is genuine but does not grant reports: 403
    ``insufficient_scope``; ``reports:read`` alone may read but not save."""
    notes_only = notes.token(email, "notes:read notes:write")["access_token"]
    read_only = notes.token(email, "reports:read")["access_token"]
    with reports.client() as http:
        refused = http.get("/reports/summary", headers=bearer(notes_only))
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_scope"
        assert http.get("/reports/summary", headers=bearer(read_only)).status_code == 200
        saved = http.post("/reports", json={"title": "nope"}, headers=bearer(read_only))
        assert saved.status_code == 403


def test_strict_reports_refuses_a_token_revoked_on_the_notes_app(
    notes: NotesServer, reports: ReportsServer, strict_reports: ReportsServer, email: str
) -> None:
    """After the user logs out on the notes app, strict reports refuses the token
    within its introspection cache bound, while signature-only reports, which cannot
    know, still accepts it until it expires."""
    token = notes.token(email, SCOPES)["access_token"]
    with strict_reports.client() as strict, reports.client() as lax:
        assert strict.get("/healthz").json()["revocation"] == "introspection"
        accepted = strict.get("/reports/summary", headers=bearer(token))
        answered_at = time.monotonic()  # the positive answer is cached from before this
        assert accepted.status_code == 200, accepted.text
        with notes.client() as http:
            assert http.post("/auth/logout", headers=bearer(token)).status_code == 204
        # The cached "active" answer ends at most CACHE_TTL after it was given.
        time.sleep(max(0.0, answered_at + CACHE_TTL + 0.05 - time.monotonic()))
        refused = strict.get("/reports/summary", headers=bearer(token))
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "invalid_token"
        assert lax.get("/reports/summary", headers=bearer(token)).status_code == 200


def test_strict_reports_fails_closed_when_the_issuer_is_unreachable(
    examples: ExampleProcesses, client_file: str
) -> None:
    """With no issuer to fetch keys from or to introspect at, reports answers 503
    ``issuer_unavailable``, never an accept."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    orphan = examples.reports(nowhere, "--client-file", client_file)
    with orphan.client() as http:
        answer = http.get("/reports/summary", headers=bearer("a.b.c"))
    assert answer.status_code == 503
    assert answer.json()["error"] == "issuer_unavailable"
