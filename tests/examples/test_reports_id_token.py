"""The ID-token checks reports asks Authlib for (examples/reports/signin.py,
``id_token_checks``), in process: ``aud`` must hold the client itself."""

from __future__ import annotations

import time
from typing import Any

import pytest
from authlib.oidc.core import CodeIDToken
from examples.reports.signin import SignInSettings, id_token_checks
from joserfc.errors import InvalidClaimError

SETTINGS = SignInSettings("https://issuer.example", "reports", "secret", "https://reports.example")


def id_token(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": SETTINGS.issuer,
        "sub": "user-1",
        "aud": SETTINGS.client_id,
        "azp": SETTINGS.client_id,
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
    }
    return {**claims, **changes}


def check(claims: dict[str, Any], options: dict[str, Any]) -> None:
    params = {"nonce": "n-1", "client_id": SETTINGS.client_id}
    CodeIDToken(claims, {"alg": "RS256"}, options, params).validate(leeway=120)


def test_an_id_token_for_the_client_passes() -> None:
    check(id_token(), id_token_checks(SETTINGS))
    check(id_token(aud=[SETTINGS.client_id, "another"]), id_token_checks(SETTINGS))


def test_an_aud_without_the_client_is_refused_even_with_its_azp() -> None:
    """Authlib's default (``iss`` only) lets ``aud: other`` through when ``azp``
    names the client; reports' checks do not (OIDC Core section 3.1.3.7, step 3)."""
    stranger = id_token(aud="another-client")
    check(stranger, {"iss": {"essential": True, "values": [SETTINGS.issuer]}})  # passes
    with pytest.raises(InvalidClaimError, match="aud"):
        check(stranger, id_token_checks(SETTINGS))


def test_an_id_token_of_another_issuer_is_refused() -> None:
    with pytest.raises(InvalidClaimError, match="iss"):
        check(id_token(iss="https://elsewhere.example"), id_token_checks(SETTINGS))
