"""Security incidents: a detected attack, rate-limit abuse, a client blocked or unblocked. Each is
a row in ``security_incidents``, a log line and a metric; attacks also count towards blocking."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import insert

from api.db.engine import Database
from api.db.models import security_incidents
from api.logs import mask_secrets
from api.observability.metrics import SECURITY_INCIDENTS

__all__ = ["Incident", "IncidentLog"]

logger = structlog.get_logger(__name__)

SAMPLE_CHARS = 200


@dataclass(frozen=True)
class Incident:
    kind: str
    route: str | None
    method: str | None
    user_id: str | None
    client_ip: str | None
    sample: str | None = None
    detail: str | None = None


def _printable(sample: str | None) -> str | None:
    """The sample with its secrets masked (card numbers, tokens, keys: as in the logs), truncated,
    and with control characters made visible (it is data, not markup)."""
    if sample is None:
        return None
    text = mask_secrets(sample[: SAMPLE_CHARS * 2])[:SAMPLE_CHARS]
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)[:SAMPLE_CHARS]


class IncidentLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, incident: Incident) -> None:
        row = {
            "kind": incident.kind,
            "route": incident.route,
            "method": incident.method,
            "user_id": incident.user_id,
            "client_ip": incident.client_ip,
            "sample": _printable(incident.sample),
            "detail": mask_secrets(incident.detail or "")[:2000] or None,
        }
        SECURITY_INCIDENTS.labels(incident.kind).inc()
        logger.warning("security incident", **row)
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(security_incidents).values(**row))
        except Exception as exc:  # the log line above still holds it; refusing the request is what matters
            logger.error("security incident could not be stored", kind=incident.kind, error=type(exc).__name__)
