"""keyturn serve's logging cuts secret links out of every handler's lines (#14)."""

from __future__ import annotations

import io
import logging
import logging.config

from keyturn.web.access_log import log_config


def test_the_server_log_handlers_redact_links_from_any_logger() -> None:
    """A reset link logged by any logger through uvicorn's handlers loses its query,
    and an access-log request line loses the token value."""
    config = log_config()
    names = list(config["loggers"])
    saved = {
        name: (logger.handlers[:], logger.filters[:], logger.propagate, logger.level)
        for name, logger in ((name, logging.getLogger(name)) for name in names)
    }
    stream = io.StringIO()
    for handler in config["handlers"].values():
        handler["stream"] = stream
    logging.config.dictConfig(config)
    try:
        logging.getLogger("uvicorn.error").info(
            "oops: https://id.example/password/reset?token=SECRETSECRET"
        )
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/password/reset?token=SECRETSECRET",
            "1.1",
            200,
        )
    finally:
        for name, (handlers, filters, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.filters[:] = handlers, filters
            logger.propagate, logger.level = propagate, level
    text = stream.getvalue()
    assert "SECRETSECRET" not in text
    assert "/password/reset?" in text
