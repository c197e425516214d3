"""keyturn over HTTP: the FastAPI app, its middlewares and error mapping.

The only part of keyturn that imports FastAPI/Starlette.
"""

from keyturn.web.app import create_app
from keyturn.web.errors import error_response
from keyturn.web.metrics import Metrics

__all__ = ["Metrics", "create_app", "error_response"]
