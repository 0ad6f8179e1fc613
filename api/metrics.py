"""Prometheus metrics of the service (``prometheus-client``). Defined once here, so every module
counts into the same series; exposing them is the observability layer's job."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = [
    "ERRORS",
    "IDEMPOTENCY",
    "RATE_LIMIT_REJECTIONS",
    "RATE_LIMIT_STORE_FAILURES",
    "SECURITY_BLOCKS",
    "SECURITY_INCIDENTS",
]

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
    "Requests with an Idempotency-Key, by outcome (miss, hit, conflict, mismatch).",
    ["outcome"],
)
ERRORS = Counter("faddl_errors_total", "Error responses, by category and severity.", ["category", "severity", "status"])
