"""ASGI entry point of the peer (``django_peer.asgi:application``), for
``serve.py --server uvicorn``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_peer.settings")
application = get_asgi_application()
