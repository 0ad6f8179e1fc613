"""The service's own HTTP figures, read back from its Prometheus metrics (this instance: every
worker process of it in multiprocess mode), for the admin dashboard. Windowed rates are Grafana's
job; these are since the instance started."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable

import msgspec
import psutil
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["HttpSummary", "http_summary", "quantile"]

_EXCLUDED = ("/metrics", "/api/health")


class HttpSummary(msgspec.Struct):
    requests: int
    """Answered since the instance started (metrics scrapes and health checks left out)."""
    requests_per_second: float
    server_errors: int
    error_rate: float | None
    """5xx answers over all answers."""
    client_error_rate: float | None
    """4xx answers over all answers (refusals: validation, auth, rate limits)."""
    p95_ms: float | None
    p99_ms: float | None
    uptime_seconds: int


def _families() -> Iterable[Metric]:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY.collect()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry.collect()


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile from cumulative histogram buckets (upper bound -> count), interpolated
    linearly within the bucket like PromQL's ``histogram_quantile``."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower


def _started() -> float:
    try:
        return psutil.Process(os.getppid() if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else os.getpid()).create_time()
    except psutil.Error:
        return psutil.Process().create_time()


def http_summary() -> HttpSummary:
    requests = server_errors = client_errors = 0
    buckets: dict[float, float] = defaultdict(float)
    for family in _families():
        if family.name == "faddl_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and not sample.labels.get("route", "").startswith(_EXCLUDED):
                    count = int(sample.value)
                    requests += count
                    status = sample.labels.get("status", "")
                    server_errors += count if status.startswith("5") else 0
                    client_errors += count if status.startswith("4") else 0
        elif family.name == "faddl_http_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket") and not sample.labels.get("route", "").startswith(_EXCLUDED):
                    buckets[float(sample.labels["le"])] += sample.value
    uptime = max(1.0, time.time() - _started())
    p95, p99 = quantile(buckets, 0.95), quantile(buckets, 0.99)
    return HttpSummary(
        requests=requests,
        requests_per_second=round(requests / uptime, 3),
        server_errors=server_errors,
        error_rate=round(server_errors / requests, 6) if requests else None,
        client_error_rate=round(client_errors / requests, 6) if requests else None,
        p95_ms=round(p95 * 1000, 2) if p95 is not None else None,
        p99_ms=round(p99 * 1000, 2) if p99 is not None else None,
        uptime_seconds=int(uptime),
    )
