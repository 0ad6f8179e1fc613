"""Every Prometheus metric of the service (``prometheus-client``), defined once here so every
module counts into the same series. ``/metrics`` exposes them (:mod:`api.monitoring.exposition`).

Several API processes (``faddl serve --workers N``) share them through prometheus-client's
multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers start, each writes its
own files there, and a scrape of any process sums them. Gauges say how they combine
(``multiprocess_mode``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AUTH_FAILURES",
    "ERRORS",
    "HTTP_IN_FLIGHT",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "IDEMPOTENCY",
    "RATE_LIMIT_REJECTIONS",
    "RATE_LIMIT_STORE_FAILURES",
    "RECONCILE_DRIFT",
    "SECURITY_BLOCKS",
    "SECURITY_INCIDENTS",
    "STRIPE_BREAKER_STATE",
    "STRIPE_LATENCY",
    "STRIPE_REQUESTS",
    "WEBHOOK_EVENTS",
    "WEBHOOK_LAG",
    "WEBHOOK_PROCESSING",
    "WEBHOOK_REJECTIONS",
]

# From 1 ms to 10 s, dense enough around 10-500 ms for p50/p95/p99 to be meaningful.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

# -- HTTP ----------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "faddl_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "faddl_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "faddl_http_requests_in_flight", "HTTP requests being answered now.", multiprocess_mode="livesum"
)
ERRORS = Counter("faddl_errors_total", "Error responses, by category and severity.", ["category", "severity", "status"])

# -- webhooks ------------------------------------------------------------------------------------
WEBHOOK_EVENTS = Counter(
    "faddl_webhook_events_total",
    "Stripe deliveries accepted, by event type and outcome (processed, duplicate, ignored, failed, dead).",
    ["type", "outcome"],
)
WEBHOOK_REJECTIONS = Counter(
    "faddl_webhook_rejections_total",
    "Stripe deliveries refused, by reason (signature, body, unavailable, not_configured).",
    ["reason"],
)
WEBHOOK_PROCESSING = Histogram(
    "faddl_webhook_processing_seconds",
    "Time from receiving a delivery to its event being durable and applied.",
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_LAG = Histogram(
    "faddl_webhook_lag_seconds",
    "Time between Stripe creating an event and the service receiving it.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 3 * 86400),
)

# -- Stripe API ----------------------------------------------------------------------------------
STRIPE_REQUESTS = Counter(
    "faddl_stripe_requests_total", "Calls to the Stripe API, by operation and outcome.", ["operation", "outcome"]
)
RECONCILE_DRIFT = Counter(
    "faddl_reconcile_drift_total",
    "Differences reconciliation found between the projections and Stripe, by object and field.",
    ["object", "field"],
)
STRIPE_LATENCY = Histogram(
    "faddl_stripe_request_duration_seconds",
    "Duration of Stripe API calls (with the SDK's retries), by operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
STRIPE_BREAKER_STATE = Gauge(
    "faddl_stripe_circuit_breaker_state",
    "The Stripe circuit breaker: 0 closed, 1 half-open, 2 open (the worst of the processes).",
    multiprocess_mode="max",
)

# -- protection ----------------------------------------------------------------------------------
AUTH_FAILURES = Counter("faddl_auth_failures_total", "Bearer tokens refused, by reason.", ["reason"])
RATE_LIMIT_REJECTIONS = Counter(
    "faddl_rate_limit_rejections_total", "Requests refused with 429, by rate-limit tier.", ["tier"]
)
RATE_LIMIT_STORE_FAILURES = Counter(
    "faddl_rate_limit_store_failures_total",
    "Rate-limit checks that could not reach their store, by tier and what was done (allowed or refused).",
    ["tier", "action"],
)
SECURITY_INCIDENTS = Counter("faddl_security_incidents_total", "Security incidents recorded, by kind.", ["kind"])
SECURITY_BLOCKS = Counter("faddl_security_blocks_total", "Clients blocked and unblocked.", ["action"])
IDEMPOTENCY = Counter(
    "faddl_idempotency_requests_total",
    "Requests with an Idempotency-Key, by outcome (miss, hit, conflict, mismatch, unavailable).",
    ["outcome"],
)
