"""The app factory of ``keyturn serve``: one FastAPI app around one
:class:`~keyturn.runtime.Keyturn`, built from the public API.

``create_app`` is ``FastAPI(lifespan=keyturn.lifespan)`` plus
:func:`keyturn.web.install` with the probes (``/healthz``, ``/livez``),
``/metrics``, and keyturn's error format for every answer: the same code path
a host application uses (see :mod:`keyturn.web.integration` for the middleware
stack and the routes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from keyturn import __version__
from keyturn.settings import Settings
from keyturn.web.integration import STATIC_DIRECTORY, install

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

__all__ = ["STATIC_DIRECTORY", "create_app"]


def create_app(settings: Settings, *, keyturn: Keyturn | None = None) -> FastAPI:
    """Build the keyturn HTTP app.

    ``keyturn`` defaults to ``Keyturn(settings)``. The app's lifespan
    (:meth:`Keyturn.lifespan <keyturn.runtime.Keyturn.lifespan>`) starts it and
    closes it on shutdown, unless the caller had already started it: then
    starting and closing stay the caller's job. The instance is available as
    ``app.state.keyturn``; the app's metrics as ``app.state.metrics``
    (a :class:`~keyturn.web.metrics.Metrics`).

    Interactive docs are off; ``/openapi.json`` stays for generated docs.
    """
    if keyturn is None:
        from keyturn.runtime import Keyturn

        keyturn = Keyturn(settings)
    app = FastAPI(
        title="keyturn",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json",
        lifespan=keyturn.lifespan,
    )
    app.state.settings = settings
    install(app, keyturn, health_checks=True, metrics=True, all_errors=True)
    return app
