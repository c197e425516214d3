"""``GET /healthz``: readiness with a store check; ``GET /livez``: liveness alone.

A store that does not answer within :data:`PING_TIMEOUT` seconds counts as
unavailable, so a load balancer sees 503 instead of a hanging probe.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keyturn.errors import StoreUnavailable
from keyturn.runtime import Keyturn
from keyturn.web.dependencies import get_keyturn
from keyturn.web.errors import json_error
from keyturn.web.routes.openapi_docs import answer, error_responses

_STATUS = {
    "type": "object",
    "properties": {"status": {"enum": ["ok"]}},
    "required": ["status"],
}

#: Seconds to wait for ``storage.ping()``.
PING_TIMEOUT = 2.0

STATELESS_WARNING = (
    "revocation_mode is stateless: access tokens are not checked for revocation "
    "and stay valid until they expire"
)

router = APIRouter()


@router.get("/livez", responses=error_responses(_200=answer("Alive.", _STATUS)))
async def livez() -> JSONResponse:
    """200 while the process serves requests; checks nothing else.

    For orchestrators that restart unresponsive processes (a store outage is no
    reason to restart keyturn), and the no-auth baseline of the benchmarks.
    """
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get("/healthz", responses=error_responses(_200=answer("Ready.", _STATUS)))
async def healthz(request: Request) -> JSONResponse:
    """200 when every store answers; 503 ``store_unavailable`` otherwise."""
    keyturn: Keyturn = get_keyturn(request)
    revocation_mode = keyturn.settings.revocation_mode
    try:
        with anyio.fail_after(PING_TIMEOUT):
            await keyturn.storage.ping()
    except (StoreUnavailable, TimeoutError) as exc:
        detail = (
            exc.detail
            if isinstance(exc, StoreUnavailable)
            else f"The database did not answer within {PING_TIMEOUT:g} s."
        )
        return json_error(
            503,
            StoreUnavailable.code,
            detail,
            headers={"Cache-Control": "no-store"},
            extra={"status": "unavailable", "database": "unavailable"},
        )
    body: dict[str, Any] = {
        "status": "ok",
        "database": "ok",
        "revocation_mode": revocation_mode,
    }
    if revocation_mode == "stateless":
        body["warning"] = STATELESS_WARNING
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
