"""OpenTelemetry tracing: spans for each request, database statement, Stripe call and webhook
event.

Exported over OTLP (HTTP) when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: the process
then installs an SDK tracer provider. Without it the API's global provider is the no-op one, so
``tracer`` hands out non-recording spans and the database hooks are not even attached: tracing
costs next to nothing when it is off. Modules take their tracer from :data:`tracer`, which follows
whatever provider is installed (tests install one with an in-memory exporter)."""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["configure_tracing", "current_trace_ids", "trace_database", "tracer", "tracing_enabled"]

tracer = trace.get_tracer("faddl")
"""The service's tracer (a proxy: it follows the provider installed at any time)."""

_SPAN_KEY = "faddl_span"


def configure_tracing(service_name: str = "faddl-api") -> None:
    """Install the OTLP exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (once per process)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or tracing_enabled():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def tracing_enabled() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def trace_database(engine: AsyncEngine) -> None:
    """A client span per SQL statement (only while tracing is on)."""
    if not tracing_enabled():
        return
    sync_engine = engine.sync_engine
    system = sync_engine.dialect.name

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper() or "SQL"
        span = tracer.start_span(
            f"{verb} {system}",
            kind=SpanKind.CLIENT,
            attributes={"db.system": system, "db.statement": statement[:1000], "db.executemany": executemany},
        )
        conn.info.setdefault(_SPAN_KEY, []).append(span)

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        spans = conn.info.get(_SPAN_KEY)
        if spans:
            spans.pop().end()

    @event.listens_for(sync_engine, "handle_error")
    def _error(context: Any) -> None:
        spans = context.connection.info.get(_SPAN_KEY) if context.connection is not None else None
        if spans:
            span = spans.pop()
            span.record_exception(context.original_exception)
            span.set_status(trace.Status(trace.StatusCode.ERROR))
            span.end()


def current_trace_ids() -> dict[str, Any]:
    """``trace_id`` and ``span_id`` of the current span, when one is recording (for log lines)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
