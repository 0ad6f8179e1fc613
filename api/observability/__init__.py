"""The instruments, at the bottom so every layer can use them: Prometheus metrics
(:mod:`~api.observability.metrics`), OpenTelemetry tracing (:mod:`~api.observability.tracing`),
the HTTP middleware that measures every request (:mod:`~api.observability.http`), and the process
summary. What the service reports with them is :mod:`api.monitoring`."""
