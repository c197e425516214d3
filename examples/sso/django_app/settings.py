"""A minimal Django project that signs its users in with keyturn (OpenID Connect,
mozilla-django-oidc).

The guide (docs/guides/oidc.md) shows the OpenID Connect part of this file, and
``urls.py`` and ``views.py``; tests/examples/test_sso_django.py runs the project
against a live ``keyturn serve``. Register it as a confidential client with the
redirect URI ``https://<this app>/oidc/callback/``, then::

    export DJANGO_SETTINGS_MODULE=examples.sso.django_app.settings
    export OIDC_ISSUER=https://auth.example OIDC_CLIENT_ID=… OIDC_CLIENT_SECRET=…
    export DJANGO_SECRET_KEY=…
    python -m django migrate && python -m django runserver
"""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
ROOT_URLCONF = "examples.sso.django_app.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DATABASE", "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mozilla_django_oidc",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

# --8<-- [start:oidc]
ISSUER = os.environ["OIDC_ISSUER"]  # keyturn's issuer URL

AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]
OIDC_OP_AUTHORIZATION_ENDPOINT = ISSUER + "/oauth/authorize"
OIDC_OP_TOKEN_ENDPOINT = ISSUER + "/oauth/token"
OIDC_OP_USER_ENDPOINT = ISSUER + "/oauth/userinfo"
OIDC_OP_JWKS_ENDPOINT = ISSUER + "/.well-known/jwks.json"
OIDC_RP_SIGN_ALGO = "RS256"  # the client's --id-token-alg
OIDC_RP_CLIENT_ID = os.environ["OIDC_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = os.environ["OIDC_CLIENT_SECRET"]
OIDC_RP_SCOPES = "openid email"
OIDC_USE_PKCE = True
LOGIN_URL = "oidc_authentication_init"  # where login_required sends a signed-out user
LOGIN_REDIRECT_URL = "/"
# --8<-- [end:oidc]
