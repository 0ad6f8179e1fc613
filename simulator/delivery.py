"""Delivers simulated events to a webhook endpoint the way Stripe does: signed, possibly more than
once, possibly out of order, several at a time."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import stripe

__all__ = ["DeliveryReport", "deliver", "delivery_plan"]


@dataclass
class DeliveryReport:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    """Attempts after a refused or failed one (with ``until_accepted``)."""
    gave_up: int = 0
    """Deliveries never accepted before the deadline (with ``until_accepted``)."""

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300) + sum(
            self.errors.values()
        )


def delivery_plan(bodies: Sequence[str], *, duplicates: float, shuffle: bool, seed: int) -> list[str]:
    """The order of deliveries: each body once, a ``duplicates`` share of them again, shuffled or
    (duplicates following their original) in order."""
    rng = random.Random(seed)
    plan = list(bodies)
    extra = [body for body in bodies if rng.random() < duplicates]
    if shuffle:
        plan.extend(extra)
        rng.shuffle(plan)
        return plan
    again = set(map(id, extra))
    ordered: list[str] = []
    for body in plan:
        ordered.append(body)
        if id(body) in again:
            ordered.append(body)
    return ordered


def sign(body: str, secret: str) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body, secret))


async def deliver(
    url: str,
    bodies: Sequence[str],
    *,
    secret: str,
    concurrency: int = 8,
    request_timeout: float = 30.0,
    on_sent: Callable[[], object] | None = None,
    until_accepted: bool = False,
    give_up_after: float = 120.0,
) -> DeliveryReport:
    """POST every body (in the given order, ``concurrency`` at a time), signed with ``secret``.

    With ``until_accepted``, as Stripe does: a delivery that gets no 2xx (a refusal, a 503, a
    dropped connection, the endpoint down) is sent again, freshly signed, after a growing pause
    (50 ms doubling to 1 s), until it is accepted or ``give_up_after`` seconds have passed since
    its first attempt; ``statuses`` then counts every attempt, ``sent`` the deliveries."""
    report = DeliveryReport()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            first = started = time.perf_counter()
            pause = 0.05
            while True:
                accepted = False
                try:
                    response = await client.post(
                        url,
                        content=body.encode("utf-8"),
                        headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
                    )
                    report.statuses[response.status_code] += 1
                    accepted = 200 <= response.status_code < 300
                except httpx.HTTPError as exc:
                    report.errors[type(exc).__name__] += 1
                report.latencies.append(time.perf_counter() - started)
                if accepted or not until_accepted:
                    break
                if time.perf_counter() - first > give_up_after:
                    report.gave_up += 1
                    break
                report.retries += 1
                await asyncio.sleep(pause)
                pause = min(1.0, pause * 2)
                started = time.perf_counter()
            report.sent += 1
            if on_sent is not None:
                on_sent()

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=request_timeout) as client:
        await asyncio.gather(*(worker(client) for _ in range(max(1, concurrency))))
    report.seconds = time.perf_counter() - started
    return report
