"""Settings of the Django peer: production-like (``DEBUG`` off, no request
logging), database sessions on the SQLite file named by ``DJANGO_PEER_DATABASE``.

Every choice a Django deployment guide would make for speed is made: persistent
database connections (``CONN_MAX_AGE``), SQLite in WAL mode, DRF rendering JSON
only (no browsable API). The middleware is ``startproject``'s, less the messages
framework, which this project does not install.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

#: One secret per process: sessions and JWTs never outlive the benchmark's server.
SECRET_KEY = os.environ.get("DJANGO_PEER_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "rest_framework",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "django_peer.urls"
WSGI_APPLICATION = "django_peer.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(os.environ.get("DJANGO_PEER_DATABASE", "django-peer.sqlite3")),
        "CONN_MAX_AGE": None,  # keep each thread's connection: no connect per request
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

SIMPLE_JWT = {"ACCESS_TOKEN_LIFETIME": timedelta(hours=1), "ALGORITHM": "HS256"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": []},
}
