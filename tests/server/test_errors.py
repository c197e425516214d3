"""Every error leaves as JSON {"error", "detail"} with the right status (SEC-73)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from keyturn import errors
from keyturn.web.errors import error_response

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


LIMIT = 2048


class Credentials(BaseModel):
    """A test-only request body."""

    email: str
    password: str


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """An app with test-only routes that echo, stream and fail."""
    from keyturn.settings import Settings

    app = make_app(Settings(max_body_bytes=LIMIT))

    @app.post("/echo")
    async def echo(body: Credentials) -> dict[str, str]:
        return {"email": body.email}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("Traceback /home/secret sqlite3 -----BEGIN PRIVATE KEY")

    @app.get("/raise/{name}")
    async def raise_error(name: str) -> None:
        raise getattr(errors, name)()

    return app


def assert_json_error(response: object, status: int, code: str) -> dict[str, str]:
    """The response has ``status`` and the standard error body with ``code``."""
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) >= {"error", "detail"}
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


async def test_unknown_path_is_json_404(make_client: MakeClient, app: FastAPI) -> None:
    """A path no route matches is 404 not_found as JSON."""
    async with make_client(app=app) as client:
        assert_json_error(await client.get("/nope"), 404, "not_found")


async def test_wrong_method_is_405_with_allow(make_client: MakeClient, app: FastAPI) -> None:
    """A known path with the wrong method is 405 and keeps the Allow header."""
    async with make_client(app=app) as client:
        response = await client.delete("/healthz")
    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_malformed_json_is_400(make_client: MakeClient, app: FastAPI) -> None:
    """Broken JSON is a 400 invalid_request, not a 422 or 500."""
    async with make_client(app=app) as client:
        response = await client.post(
            "/echo", content=b'{"email": ', headers={"content-type": "application/json"}
        )
    body = assert_json_error(response, 400, "invalid_request")
    assert "JSON" in body["detail"]


async def test_invalid_utf8_is_400(make_client: MakeClient, app: FastAPI) -> None:
    """A body that is not UTF-8 is a 400 invalid_request."""
    async with make_client(app=app) as client:
        response = await client.post(
            "/echo",
            content=b'{"email": "\xff\xfe", "password": "x"}',
            headers={"content-type": "application/json"},
        )
    assert_json_error(response, 400, "invalid_request")


async def test_validation_error_names_the_field_without_echoing(
    make_client: MakeClient, app: FastAPI
) -> None:
    """Wrong types give 400 with a short detail naming the field, not the input."""
    async with make_client(app=app) as client:
        wrong_type = await client.post("/echo", json={"email": "a@b.io", "password": ["hunter22"]})
        missing = await client.post("/echo", json={"email": "a@b.io"})
    body = assert_json_error(wrong_type, 400, "invalid_request")
    assert "password" in body["detail"] and "hunter22" not in body["detail"]
    body = assert_json_error(missing, 400, "invalid_request")
    assert "password" in body["detail"]


async def test_large_content_length_is_413(make_client: MakeClient, app: FastAPI) -> None:
    """A declared body over the limit is refused with 413 payload_too_large."""
    async with make_client(app=app) as client:
        response = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert_json_error(response, 413, "payload_too_large")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_oversized_chunked_body_is_413_without_reading_it_all(
    make_client: MakeClient, app: FastAPI
) -> None:
    """A streamed body is cut off once it passes the limit, whatever the route does."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b"y" * 512

    async with make_client(app=app) as client:
        for path in ("/stream", "/echo"):
            sent = 0
            response = await client.post(
                path, content=chunks(), headers={"content-type": "application/json"}
            )
            assert "content-length" not in response.request.headers
            assert_json_error(response, 413, "payload_too_large")
            assert sent <= LIMIT // 512 + 2


async def test_small_chunked_body_passes(make_client: MakeClient, app: FastAPI) -> None:
    """A streamed body within the limit reaches the route intact."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"z" * 100

    async with make_client(app=app) as client:
        response = await client.post("/stream", content=chunks())
    assert response.json() == {"size": 300}


async def test_unhandled_exception_is_generic_500(
    make_client: MakeClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug answers 500 internal_error with no trace of the exception; it is logged."""
    async with make_client(app=app) as client:
        response = await client.get("/boom")
    assert_json_error(response, 500, "internal_error")
    for leak in ("Traceback", "RuntimeError", "/home/", "sqlite", "BEGIN"):
        assert leak not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("InvalidRequest", 400),
        ("WeakPassword", 400),
        ("InvalidEmail", 400),
        ("PayloadTooLarge", 413),
        ("NotAuthenticated", 401),
        ("InvalidToken", 401),
        ("InvalidCredentials", 401),
        ("CsrfFailed", 403),
        ("Forbidden", 403),
        ("NotFound", 404),
        ("UserNotFound", 404),
        ("EmailTaken", 409),
        ("StoreUnavailable", 503),
    ],
)
async def test_keyturn_errors_map_to_status(
    make_client: MakeClient, app: FastAPI, name: str, status: int
) -> None:
    """Each error class raised by a route leaves with its status and stable code."""
    async with make_client(app=app) as client:
        response = await client.get(f"/raise/{name}")
    assert_json_error(response, status, getattr(errors, name).code)


def test_401_carries_bearer_challenge() -> None:
    """401s challenge with Bearer; a rejected token says invalid_token (RFC 6750)."""
    assert error_response(errors.NotAuthenticated()).headers["www-authenticate"] == "Bearer"
    assert error_response(errors.InvalidCredentials()).headers["www-authenticate"] == "Bearer"
    assert error_response(errors.InvalidToken("expired")).headers["www-authenticate"] == (
        'Bearer error="invalid_token"'
    )


def test_429_carries_retry_after() -> None:
    """Throttled sign-ins say when to retry."""
    response = error_response(errors.TooManyAttempts(retry_after=42))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "42"
    assert json.loads(bytes(response.body))["error"] == "too_many_attempts"


def test_unmapped_error_is_generic_500() -> None:
    """An error class without a status hides its detail behind a generic 500."""
    response = error_response(errors.ConfigurationError("secret path /etc/keyturn.toml"))
    assert response.status_code == 500
    body = json.loads(bytes(response.body))
    assert body["error"] == "internal_error"
    assert "/etc" not in body["detail"]
