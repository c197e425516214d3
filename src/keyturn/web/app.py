"""The app factory: one FastAPI app around one :class:`~keyturn.runtime.Keyturn`.

Middleware order, outermost first (Starlette adds its ``ServerErrorMiddleware``
outside all of them as a last resort):

1. :class:`SecurityHeadersMiddleware` - so every answer, 413s and 500s included,
   carries the security headers;
2. :class:`MetricsMiddleware` - counts what the client actually received;
3. :class:`ErrorBoundaryMiddleware` - turns escaped exceptions into generic 500s;
4. :class:`BodyLimitMiddleware` - refuses oversized bodies before any parsing;
5. :class:`AuthnMiddleware` - resolves the caller once and enforces CSRF on
   cookie-authenticated unsafe requests (its body replay reads through the limit);
6. FastAPI's exception middleware, using the handlers in :mod:`keyturn.web.errors`.

Routes: health and metrics, the JSON auth API (``/auth/*``), the OAuth endpoints
(``/oauth/*``, exempt from the session CSRF check: they never use the cookie),
discovery (``/.well-known/*``), the HTML pages and their stylesheet under
``/static``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from keyturn import __version__
from keyturn.maintenance import sweep_forever
from keyturn.settings import Settings
from keyturn.web import (
    health,
    metrics,
    pages_account,
    pages_signin,
    routes_auth,
    routes_oauth,
    routes_wellknown,
)
from keyturn.web.authn import LOGIN_PATHS, AuthnMiddleware
from keyturn.web.errors import install_error_handlers
from keyturn.web.metrics import Metrics, MetricsMiddleware
from keyturn.web.middleware import (
    BodyLimitMiddleware,
    ErrorBoundaryMiddleware,
    SecurityHeadersMiddleware,
)

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

STATIC_DIRECTORY = Path(__file__).parent / "static"


def create_app(settings: Settings, *, keyturn: Keyturn | None = None) -> FastAPI:
    """Build the keyturn HTTP app.

    ``keyturn`` defaults to ``Keyturn(settings)``. The app's lifespan starts it
    and closes it on shutdown, unless the caller had already started it: then
    starting and closing stay the caller's job. The instance is available as
    ``app.state.keyturn``; the app's metrics as ``app.state.metrics``
    (a :class:`~keyturn.web.metrics.Metrics`).

    Interactive docs are off; ``/openapi.json`` stays for generated docs.
    """
    if keyturn is None:
        from keyturn.runtime import Keyturn

        keyturn = Keyturn(settings)
    runtime = keyturn

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = not runtime.started
        if owned:
            await runtime.start()
        sweeper = asyncio.create_task(sweep_forever(runtime), name="keyturn-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if owned:
                await runtime.close()

    app = FastAPI(
        title="keyturn",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keyturn = keyturn
    app.state.metrics = Metrics()

    install_error_handlers(app)
    # add_middleware prepends: the last added is the outermost.
    app.add_middleware(
        AuthnMiddleware,
        keyturn=keyturn,
        csrf_exempt_paths=(*LOGIN_PATHS, *routes_oauth.OAUTH_PATHS),
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ErrorBoundaryMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)

    # Matched in this order, hottest first: probes and the JSON API before the
    # pages (see benchmarks/sessions.py; every failed route match costs time).
    app.include_router(health.router)
    app.include_router(routes_auth.router)
    app.include_router(routes_oauth.router)
    app.include_router(routes_wellknown.router)
    app.include_router(metrics.router)
    app.include_router(pages_signin.router)  # the HTML pages: sign in and register,
    app.include_router(pages_account.router)  # then the account page and sign-outs
    app.mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static")
    return app
