"""The peer's views: the equivalents of keyturn's ``/livez``, ``/auth/login`` and
``/auth/whoami``."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

NO_STORE = {"Cache-Control": "no-store"}


def _user(user: Any, via: str) -> dict[str, str]:
    return {"sub": str(user.pk), "email": user.email, "via": via}


@require_GET
def livez(request: HttpRequest) -> HttpResponse:
    """No authentication: the baseline."""
    return JsonResponse({"status": "ok"}, headers=NO_STORE)


@csrf_exempt  # a JSON sign-in for the benchmark's client, as an API would offer it
@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    """Sign in with ``{"username", "password"}``: a database session and its cookie."""
    try:
        body = json.loads(request.body)
        user = authenticate(request, username=body["username"], password=body["password"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "invalid_request"}, status=400)
    if user is None:
        return JsonResponse({"error": "invalid_credentials"}, status=401)
    login(request, user)
    return JsonResponse(_user(user, "session"))


@require_GET
def whoami_session(request: HttpRequest) -> HttpResponse:
    """The signed-in user of the session cookie, or 401."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "not_authenticated"}, status=401, headers=NO_STORE)
    return JsonResponse(_user(request.user, "session"), headers=NO_STORE)


class WhoamiJWT(APIView):
    """DRF + simplejwt: the user of the bearer JWT (the project's default
    authentication and permission classes), or 401."""

    def get(self, request: Request) -> Response:
        return Response(_user(request.user, "jwt"), headers=NO_STORE)
