"""keyturn inside a host application: :func:`install` and :func:`build_router`.

(Over 300 lines: every router and middleware keyturn adds to a host app is
listed here, in its order, so the whole stack reads in one place.)

::

    from fastapi import Depends, FastAPI
    from keyturn import Keyturn, Principal, Settings
    from keyturn.web import current_principal, install

    kt = Keyturn(Settings(database_url="sqlite+aiosqlite:///app.db"))
    app = FastAPI(lifespan=kt.lifespan)
    install(app, kt)

    @app.get("/me")
    async def me(p: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"email": p.email}

``keyturn serve`` is built the same way (:func:`keyturn.web.app.create_app`).

Middleware order, outermost first (Starlette adds its ``ServerErrorMiddleware``
outside all of them as a last resort):

0. :class:`~keyturn.web.middleware.ForwardedProtoMiddleware` when
   ``trusted_proxies`` is set - a request a trusted proxy received over HTTPS
   is HTTPS for everything below (HSTS, the CSRF origin checks, URLs);
1. :class:`~keyturn.web.middleware.SecurityHeadersMiddleware` - so every answer,
   413s and 500s included, carries the security headers;
2. :class:`~keyturn.web.authn.cors.CorsMiddleware` when ``cors_origins`` is set - so
   preflights and error answers get their CORS headers;
3. :class:`~keyturn.web.metrics.MetricsMiddleware` with ``metrics=True`` -
   counts what the client actually received;
4. :class:`~keyturn.web.middleware.ErrorBoundaryMiddleware` - turns escaped
   exceptions into generic 500s;
5. :class:`~keyturn.web.middleware.BodyLimitMiddleware` - refuses oversized
   bodies before any parsing, and requests with more than ``max_header_count``
   header fields;
6. :class:`~keyturn.web.authn.middleware.AuthnMiddleware` - resolves the caller once, puts
   it and the :class:`~keyturn.runtime.Keyturn` on the scope, and enforces CSRF
   on cookie-authenticated unsafe requests to *every* route, the host app's own
   included;
7. FastAPI's exception middleware, with keyturn's handlers
   (:func:`~keyturn.web.errors.install_error_handlers`).

Middleware a host app added before :func:`install` sits inside this stack, and
so sees the resolved caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.staticfiles import StaticFiles

from keyturn.web import metrics as metrics_module
from keyturn.web.authn.middleware import LOGIN_PATHS, AuthnMiddleware
from keyturn.web.errors import install_error_handlers
from keyturn.web.metrics import Metrics, MetricsMiddleware
from keyturn.web.middleware import (
    AUTH_PATH_PREFIXES,
    BodyLimitMiddleware,
    ErrorBoundaryMiddleware,
    ForwardedProtoMiddleware,
    SecurityHeadersMiddleware,
)
from keyturn.web.pages import account as pages_account
from keyturn.web.pages import account_mail as pages_account_mail  # mail (#14)
from keyturn.web.pages import account_mfa as pages_account_mfa
from keyturn.web.pages import authorize as pages_authorize
from keyturn.web.pages import connected_apps as pages_connected_apps
from keyturn.web.pages import logout as pages_logout
from keyturn.web.pages import recovery as pages_recovery  # mail (#14)
from keyturn.web.pages import second_step as pages_second_step
from keyturn.web.pages import signin as pages_signin
from keyturn.web.routes import auth as routes_auth
from keyturn.web.routes import health, signins, userinfo
from keyturn.web.routes import mfa as routes_mfa
from keyturn.web.routes import mfa_factors as routes_mfa_factors
from keyturn.web.routes import oauth as routes_oauth
from keyturn.web.routes import par as routes_par
from keyturn.web.routes import recovery as routes_recovery  # mail (#14)
from keyturn.web.routes import wellknown as routes_wellknown
from keyturn.web.routes.openapi_docs import install_openapi
from keyturn.web.routes.recovery import RECOVERY_PATHS  # mail (#14)
from keyturn.web.routes.whoami import WHOAMI_PATH

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

__all__ = ["STATIC_DIRECTORY", "build_router", "install", "normalize_prefix"]

STATIC_DIRECTORY = Path(__file__).parent / "static"


def normalize_prefix(prefix: str) -> str:
    """``prefix`` as ``""`` or ``"/a/b"``: a leading slash, no trailing one.

    Raises:
        ValueError: the prefix holds a scheme, a query, a fragment or ``//``.
    """
    cleaned = prefix.strip().rstrip("/")
    if not cleaned:
        return ""
    if not cleaned.startswith("/"):
        cleaned = "/" + cleaned
    if any(char in cleaned for char in "?#:\\") or "//" in cleaned:
        raise ValueError(f"invalid prefix {prefix!r}: expected a path such as '/auth'")
    return cleaned


def _routers(*, pages: bool, health_checks: bool, metrics: bool) -> list[APIRouter]:
    """keyturn's routers, in matching order: hottest first, probes and the JSON
    API before the pages (see benchmarks/sessions.py; every failed route match
    costs time)."""
    routers = [health.router] if health_checks else []
    routers += [routes_auth.router, signins.router, routes_oauth.router, routes_wellknown.router]
    routers += [routes_par.router, userinfo.router]
    routers += [routes_mfa.router, routes_mfa_factors.router]  # mfa (wave 2)
    routers += [routes_recovery.router]  # mail (#14)
    if metrics:
        routers.append(metrics_module.router)
    if pages:  # sign in and register, then the account page and sign-outs
        routers += [pages_signin.router, pages_account.router, pages_authorize.router]
        routers += [pages_connected_apps.router, pages_logout.router]
        routers += [pages_second_step.router, pages_account_mfa.router]  # mfa (wave 2)
        routers += [pages_recovery.router, pages_account_mail.router]  # mail (#14)
    return routers


def build_router(
    *, pages: bool = True, health_checks: bool = False, metrics: bool = False
) -> APIRouter:
    """Every keyturn endpoint of SPEC in one router, to include under a prefix.

    The JSON auth API (``/auth/*``), the OAuth endpoints (``/oauth/*``),
    discovery (``/.well-known/*``), and with ``pages`` the HTML pages
    (``/login``, ``/register``, ``/account``, ``/logout``); ``health_checks``
    adds ``/healthz`` and ``/livez``, ``metrics`` adds ``/metrics``. The pages'
    stylesheet is a mount (``/static``), which routers cannot carry:
    :func:`install` adds it.

    The routes find the :class:`~keyturn.runtime.Keyturn` on the request scope,
    so the router only works behind keyturn's middleware: use :func:`install`,
    which includes this router, rather than including it by hand.
    """
    router = APIRouter()
    for part in _routers(pages=pages, health_checks=health_checks, metrics=metrics):
        _add_routes(router, part, prefix="")
    return router


def _add_routes(target: APIRouter, source: APIRouter, *, prefix: str) -> None:
    """Copy ``source``'s routes into ``target`` under ``prefix``, flat.

    FastAPI (0.120+) keeps an included router as a nested branch that is walked
    again on every request; a flat route list matches in a few microseconds per
    route instead of tens per branch, and the authenticated routes then cost
    what the unauthenticated ones do to reach (see benchmarks/claim.py).
    """
    for route in source.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"keyturn routers hold only API routes, not {route!r}")
        target.add_api_route(
            prefix + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),
            dependencies=list(route.dependencies),
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=dict(route.responses),
            deprecated=route.deprecated,
            methods=set(route.methods or ()),
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
        )


def _endpoints(routers: Iterable[APIRouter]) -> frozenset[object]:
    """The endpoint functions of ``routers``' routes (what ``scope["endpoint"]``
    holds once a request is routed to one of them)."""
    found: set[object] = set()
    for router in routers:
        found.update(getattr(route, "endpoint", None) for route in router.routes)
    found.discard(None)
    return frozenset(found)


def _whoami_route(router: APIRouter, prefix: str) -> APIRoute | None:
    """keyturn's own ``GET /auth/whoami`` route under ``prefix``, if it is served
    and the middleware may answer for it: the first route on that path (no host
    route shadows it) and without dependencies (the host app's global
    ``dependencies=`` must run for it)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == prefix + WHOAMI_PATH:
            if (
                route.endpoint is routes_auth.whoami
                and "GET" in (route.methods or ())
                and not route.dependencies
            ):
                return route
            return None
    return None


def install(
    app: FastAPI,
    keyturn: Keyturn,
    *,
    prefix: str = "",
    pages: bool = True,
    health_checks: bool = False,
    metrics: bool = False,
    all_errors: bool = False,
) -> None:
    """Add keyturn to ``app``: its middleware stack, error handlers and routes.

    Every SPEC endpoint is served under ``prefix`` (``"/id"`` gives
    ``/id/auth/login``, ``/id/oauth/token``, ``/id/login``...), the HTML pages
    and their ``/static`` stylesheet too unless ``pages=False``. Links, form
    actions and redirects in the pages, and the CSRF exemptions of the sign-in
    endpoints, follow the prefix. The session cookie stays ``Path=/`` (a
    ``__Host-`` cookie must), so the host app's own routes see the caller too.

    Every request then carries the caller: use
    :func:`~keyturn.web.dependencies.current_principal`,
    :func:`~keyturn.web.dependencies.optional_principal` or
    :func:`~keyturn.web.policy.require` in the host app's routes.
    Cookie-authenticated unsafe requests to any route need the session's CSRF
    token (``X-CSRF-Token`` or a ``csrf_token`` form field) or get 403
    ``csrf_failed``.

    Start and stop the :class:`~keyturn.runtime.Keyturn` with the app:
    ``FastAPI(lifespan=keyturn.lifespan)``.

    Args:
        app: the host application.
        keyturn: the instance to serve; also set as ``app.state.keyturn`` when
            that is free.
        prefix: where keyturn's routes live (``""``: at the root).
        pages: serve the HTML sign-in, registration and account pages.
        health_checks: serve ``/healthz`` and ``/livez`` under the prefix.
        metrics: count requests and serve ``/metrics`` under the prefix.
        all_errors: render every error of the app keyturn's way (keyturn's own
            server). By default only keyturn's routes and keyturn errors are,
            and the host app's other errors keep its own handlers.

    Raises:
        ValueError: ``prefix`` is not a path.
    """
    prefix = normalize_prefix(prefix)
    settings = keyturn.settings
    installed_metrics = Metrics()
    if getattr(app.state, "keyturn", None) is None:
        app.state.keyturn = keyturn
    if getattr(app.state, "metrics", None) is None:
        app.state.metrics = installed_metrics

    parts = _routers(pages=pages, health_checks=health_checks, metrics=metrics)
    install_error_handlers(app, endpoints=None if all_errors else _endpoints(parts))

    # Middleware the host added before this call sits inside keyturn's and must
    # see every request, whoami included: then whoami is left to its route.
    host_middleware_inside = bool(app.user_middleware)
    router = build_router(pages=pages, health_checks=health_checks, metrics=metrics)
    _add_routes(app.router, router, prefix=prefix)

    # add_middleware prepends: the last added is the outermost.
    app.add_middleware(
        AuthnMiddleware,
        keyturn=keyturn,
        whoami_route=None if host_middleware_inside else _whoami_route(app.router, prefix),
        csrf_exempt_paths=tuple(
            prefix + path for path in (*LOGIN_PATHS, *routes_oauth.OAUTH_PATHS, *RECOVERY_PATHS)
        ),
        prefix=prefix,
        metrics=installed_metrics,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_headers=settings.max_header_count,
    )
    app.add_middleware(ErrorBoundaryMiddleware)
    if metrics:
        app.add_middleware(MetricsMiddleware, metrics=installed_metrics)
    if settings.cors_origins:
        from keyturn.web.authn.cors import CorsMiddleware

        app.add_middleware(CorsMiddleware, origins=settings.cors_origins, prefix=prefix)
    app.add_middleware(
        SecurityHeadersMiddleware,
        no_store_prefixes=tuple(prefix + path for path in AUTH_PATH_PREFIXES),
    )
    if settings.trusted_proxies:
        app.add_middleware(ForwardedProtoMiddleware, trusted_proxies=settings.trusted_proxies)

    paths = [prefix + route.path for route in router.routes if hasattr(route, "path")]
    install_openapi(app, prefix, paths, keyturn)
    if pages:
        app.mount(prefix + "/static", StaticFiles(directory=STATIC_DIRECTORY), name="static")
