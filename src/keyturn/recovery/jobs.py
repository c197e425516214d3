"""The outbox handler of forgot-password requests (:data:`RESET_REQUEST_KIND`).

The request queued the typed address, sealed; this handler, on a dispatcher,
opens it and lets :meth:`~keyturn.recovery.service.Recovery.handle_reset_request`
decide whether there is anyone to mail. Its log lines never name the address.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from keyturn.errors import PermanentDeliveryError, RetryableDeliveryError, StoreUnavailable
from keyturn.outbox.store import OutboxJob, Sealer
from keyturn.recovery.service import Recovery

__all__ = ["ResetRequestHandler"]

logger = logging.getLogger("keyturn.recovery")


class ResetRequestHandler:
    """Turns a queued forgot-password request into a token and a mail (or nothing)."""

    def __init__(self, recovery: Recovery, sealer: Sealer) -> None:
        self._recovery = recovery
        self._sealer = sealer

    def __repr__(self) -> str:
        return "ResetRequestHandler()"

    async def __call__(self, job: OutboxJob) -> None:
        """Handle one request.

        Raises:
            PermanentDeliveryError: the payload does not open or parse.
            RetryableDeliveryError: a store was unreachable.
        """
        try:
            document: Any = json.loads(self._sealer.open(job.payload))
            email = document["email"]
            if document.get("v") != 1 or not isinstance(email, str):
                raise ValueError("shape")
        except Exception:  # wrong key, tampered or malformed: retrying cannot help
            raise PermanentDeliveryError("reset request payload is malformed") from None
        try:
            queued = await self._recovery.handle_reset_request(email)
        except StoreUnavailable:
            raise RetryableDeliveryError("a store is unavailable") from None
        logger.info("recovery: reset request (job %s) handled, mail queued: %s", job.id, queued)
