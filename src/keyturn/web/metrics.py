"""Prometheus metrics: one registry per app, a pure ASGI middleware, ``GET /metrics``.

Each app owns its :class:`~prometheus_client.CollectorRegistry`, so many apps
in one process (tests, embedded use) never clash over metric names. Requests
are labelled by the matched route *template* (``/auth/sessions/{id}``), never
the raw path, keeping label cardinality bounded.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Route label for requests that matched no route (404s, rejected before routing).
UNMATCHED = "unmatched"

#: Latency buckets in seconds, from cache hits to argon2-bound sign-ins.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The metrics of one keyturn app, on their own registry.

    Attributes:
        registry: the registry ``GET /metrics`` exposes.
        requests: ``keyturn_http_requests_total{method,route,status}``.
        duration: ``keyturn_http_request_duration_seconds{method,route}``.
        logins: ``keyturn_logins_total{outcome}`` with outcome ``success``,
            ``failure`` or ``throttled``; incremented by the sign-in routes.
    """

    LOGIN_OUTCOMES = ("success", "failure", "throttled")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "keyturn_http_requests_total",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "keyturn_http_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ("method", "route"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.logins = Counter(
            "keyturn_logins_total",
            "Sign-in attempts by outcome (success, failure, throttled).",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in self.LOGIN_OUTCOMES:
            self.logins.labels(outcome=outcome)  # export zeros from the start

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled ``scope``, or ``"unmatched"``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED
    root_path = str(scope.get("root_path", "")).rstrip("/")
    return root_path + template


class MetricsMiddleware:
    """Count and time every HTTP request into a :class:`Metrics`."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app dies before responding
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = str(scope.get("method", "")).upper()
            method = method if method in _METHODS else "OTHER"  # bounded labels
            route = route_template(scope)
            self.metrics.duration.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    metrics: Metrics = request.scope.get("keyturn.metrics") or request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
