"""The peer's routes (see :mod:`django_peer`)."""

from __future__ import annotations

from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView

from django_peer import views

urlpatterns = [
    path("livez", views.livez),
    path("login", views.login_view),
    path("whoami/session", views.whoami_session),
    path("whoami/jwt", views.WhoamiJWT.as_view()),
    path("api/token/", TokenObtainPairView.as_view()),
]
