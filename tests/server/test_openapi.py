"""``/openapi.json`` describes keyturn's answers as they really are: the fuzz run
(tests/fuzz) holds the server to it, so a lie here is a failure there."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.server.conftest import MakeClient

from keyturn.settings import Settings

# + POST /oauth/par (#12), + 12 for mfa (wave 2): routes/mfa.py, routes/mfa_factors.py,
# + the six recovery endpoints (mail, #14), + GET|POST /oauth/userinfo (#13)
KEYTURN_OPERATIONS = 19 + 12 + 6 + 2


async def _schema(make_client: MakeClient, settings: Settings | None = None) -> dict[str, Any]:
    async with make_client(settings) as client:
        response: httpx.Response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


async def test_every_operation_documents_the_middleware_errors(make_client: MakeClient) -> None:
    """Every operation documents the middleware's 413/431/503 as {"error", "detail"}, and no 422."""
    operations = _operations(await _schema(make_client))
    assert len(operations) == KEYTURN_OPERATIONS
    for method, path, operation in operations:
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        for status in ("413", "431", "503"):
            schema = responses[status]["content"]["application/json"]["schema"]
            refs = [option["$ref"] for option in schema.get("anyOf", [schema])]
            assert "#/components/schemas/ErrorBody" in refs, (method, path, status)


async def test_oauth_errors_are_documented_as_rfc_6749_bodies(make_client: MakeClient) -> None:
    """/oauth/* document their errors as RFC 6749 bodies, and 401 with the Basic challenge."""
    schema = await _schema(make_client)
    body = schema["components"]["schemas"]["OAuthErrorBody"]
    assert body["required"] == ["error", "error_description"]
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        responses = schema["paths"][path]["post"]["responses"]
        for status in ("400", "401"):
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/OAuthErrorBody"), (path, status)
        assert "WWW-Authenticate" in responses["401"]["headers"]


async def test_revoke_documents_an_empty_200(make_client: MakeClient) -> None:
    """POST /oauth/revoke answers 200 with no body, and says so (no JSON content)."""
    schema = await _schema(make_client)
    assert "content" not in schema["paths"]["/oauth/revoke"]["post"]["responses"]["200"]


@pytest.mark.parametrize(
    ("enabled", "values"), [(False, ["false", ""]), (True, ["true", "false", ""])]
)
async def test_refresh_cookie_field_follows_the_setting(
    make_client: MakeClient, enabled: bool, values: list[str]
) -> None:
    """refresh_cookie=true is documented only where --refresh-cookie makes it valid."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", refresh_cookie=enabled)
    schema = await _schema(make_client, settings)
    for path in ("/oauth/token", "/oauth/revoke"):
        form = schema["paths"][path]["post"]["requestBody"]["content"]
        field = form["application/x-www-form-urlencoded"]["schema"]["properties"]["refresh_cookie"]
        assert field["enum"] == values, path


async def test_authenticated_operations_name_their_credentials(make_client: MakeClient) -> None:
    """Operations that need a caller declare the session cookie or a bearer token."""
    schema = await _schema(make_client)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["session"] == {
        **schemes["session"],
        "in": "cookie",
        "name": "__Host-keyturn_session",
    }
    assert schemes["bearer"]["scheme"] == "bearer"
    whoami = schema["paths"]["/auth/whoami"]["get"]
    assert whoami["security"] == [{"session": []}, {"bearer": []}]
    assert "401" in whoami["responses"]
    assert "security" not in schema["paths"]["/auth/login"]["post"]


async def test_new_passwords_carry_the_policy_bounds(make_client: MakeClient) -> None:
    """New passwords document the server's length bounds; sign-in passwords do not."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", min_password_length=12)
    schema = await _schema(make_client, settings)

    def field(path: str, name: str) -> dict[str, Any]:
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        properties: dict[str, Any] = body["schema"]["properties"]
        return dict(properties[name])

    for path, name in (("/auth/register", "password"), ("/auth/password", "new_password")):
        assert (field(path, name)["minLength"], field(path, name)["maxLength"]) == (12, 1024)
    assert field("/auth/register", "email")["format"] == "email"
    assert "minLength" not in field("/auth/login", "password")
