"""HTTP observability, around every routed request: a server span (continuing an incoming W3C
``traceparent``), the request count, latency and in-flight metrics labelled by route template,
and a warning log line for a slow request carrying its trace id and request id (how an operator
gets from a slow request in Grafana to its trace)."""

from __future__ import annotations

import time

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from api.observability.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS
from api.observability.tracing import current_trace_ids, tracer, tracing_enabled

__all__ = ["HttpObservability", "count_unrouted"]

logger = structlog.get_logger(__name__)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


class HttpObservability(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, slow_seconds: float) -> None:
        self.slow_seconds = slow_seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = str(scope.get("method", ""))
        route = str(scope.get("path_template") or "unrouted")
        status = 500
        started = time.perf_counter()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        # A caller's traceparent only matters when spans are recorded.
        context = propagate.extract(_headers(scope)) if tracing_enabled() else None
        HTTP_IN_FLIGHT.inc()
        with tracer.start_as_current_span(
            f"{method} {route}",
            context=context,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        ) as span:
            try:
                await next_app(scope, receive, observe)
            except HTTPException as exc:  # answered by the app's exception handlers, outside this one
                status = exc.status_code
                raise
            finally:
                HTTP_IN_FLIGHT.dec()
                elapsed = time.perf_counter() - started
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_LATENCY.labels(method, route).observe(elapsed)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                if elapsed >= self.slow_seconds:
                    logger.warning(
                        "slow request",
                        method=method,
                        route=route,
                        status=status,
                        seconds=round(elapsed, 3),
                        request_id=scope.get("state", {}).get("request_id"),
                        **current_trace_ids(),
                    )


def count_unrouted(status: int, method: str) -> None:
    """A request no route matched (the router answered 404/405 before any middleware)."""
    HTTP_REQUESTS.labels(method, "unrouted", str(status)).inc()
