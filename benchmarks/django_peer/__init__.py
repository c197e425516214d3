"""The second peer of ``benchmarks/claim.py``: a minimal Django project.

Django 5.2 set up the way its documentation sets it up, with its two usual ways to
authenticate an API caller side by side:

* **session**: ``django.contrib.sessions`` with database sessions on SQLite and
  ``AuthenticationMiddleware``; ``GET /whoami/session`` is a plain view. Each
  request loads the session row, then the user row.
* **DRF + simplejwt**: Django REST framework's ``APIView`` behind
  ``rest_framework_simplejwt``'s ``JWTAuthentication`` (HS256 bearer) and
  ``IsAuthenticated``; ``GET /whoami/jwt``. Each request verifies the JWT, then
  loads the user row (simplejwt's default).

Both answer ``{"sub", "email", "via"}`` like keyturn's ``GET /auth/whoami``;
``GET /livez`` is the no-auth baseline. ``POST /login`` (JSON, Django's
``authenticate`` + ``login``) and ``POST /api/token/`` (simplejwt's own view) give
the benchmark its credentials the way a client gets them.

:mod:`django_peer.serve` migrates a fresh SQLite file, seeds one user and serves
the project with gunicorn (one worker, ``DEBUG`` off, no access log);
:mod:`django_peer.launch` starts it for the benchmark. Nothing here imports
keyturn's core.
"""
