"""keyturn over HTTP: the routes, the middleware stack, FastAPI dependencies.

The only part of keyturn that imports FastAPI/Starlette. In a host app::

    from keyturn.web import current_principal, install, optional_principal, require

    install(app, kt, prefix="")  # middleware, error handlers, every SPEC route

``keyturn serve`` runs :func:`create_app`, built from :func:`install`. Plain
Starlette apps use :mod:`keyturn.web.starlette`.
"""

from keyturn.web.app import create_app
from keyturn.web.dependencies import (
    CurrentPrincipal,
    OptionalPrincipal,
    base_path,
    current_principal,
    get_keyturn,
    optional_principal,
)
from keyturn.web.errors import error_response
from keyturn.web.integration import build_router, install
from keyturn.web.metrics import Metrics
from keyturn.web.policy import require

__all__ = [
    "CurrentPrincipal",
    "Metrics",
    "OptionalPrincipal",
    "base_path",
    "build_router",
    "create_app",
    "current_principal",
    "error_response",
    "get_keyturn",
    "install",
    "optional_principal",
    "require",
]
