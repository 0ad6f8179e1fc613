"""``GET /metrics``: the Prometheus text format, for every API process at once in multiprocess
mode, plus the database gauges. Not in the OpenAPI document; meant for the scraper's network."""

from __future__ import annotations

import os
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.monitoring.gauges import BusinessGauges

__all__ = ["metrics"]


def _process_metrics() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


# Litestar adds ``charset=utf-8`` to every ``text/`` type itself: the exposition format's own
# content type without it, so the header names the charset once.
_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


@get("/metrics", include_in_schema=False, opt={"rate_limit": None})
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    gauges: BusinessGauges = request.app.state.gauges
    database = CollectorRegistry(auto_describe=True)
    database.register(await gauges.collector())
    body = _process_metrics() + generate_latest(database)
    return Response(content=body, media_type=_MEDIA_TYPE)
