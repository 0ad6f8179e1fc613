"""``faddl worker``: retries, idempotency-key purge, the analytics refresh with the business
alerts, and (with a Stripe key) the Events API catch-up and reconciliation; the loop itself is
:class:`WorkerLoop`, which tests drive in-process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from api.cli.base import _settings, _with_processor, main
from api.events.log import newest_id
from api.ingest.processing import EventProcessor
from api.settings import Settings

if TYPE_CHECKING:  # imported by start(): the sync's modules pull in the metrics (see api.cli.sync)
    from api.sync.schedule import StripeFollowUp

__all__ = ["WorkerLoop", "worker"]


class WorkerLoop:
    """The worker's passes over one database: each retries the failed events that are due and
    purges expired idempotency keys, and every ``ANALYTICS_REFRESH_SECONDS`` refreshes the export
    and the KPI snapshot and evaluates the business alerts. A failing pass is reported and the
    loop goes on (a database outage must not stop the worker). Tests drive :meth:`one_pass`."""

    def __init__(self, processor: EventProcessor, settings: Settings, say: Callable[[str], object]) -> None:
        from api.protection.idempotency import DatabaseIdempotencyStore

        self.processor = processor
        self.settings = settings
        self.say = say
        self.idempotency = DatabaseIdempotencyStore(processor.db)  # expired keys (Redis expires its own)
        self.last_analytics = float("-inf")
        self._refreshing = asyncio.Lock()
        self.stripe: StripeFollowUp | None = None  # made by start() when there is a Stripe account

    async def start(self) -> None:
        """Before the first pass: with a Stripe account to read, schedule the catch-up (at once
        when the newest delivery is older than its interval) and reconciliation."""
        from api.sync.schedule import StripeFollowUp

        if StripeFollowUp.wanted(self.settings):
            self.stripe = StripeFollowUp(self.processor, self.settings, self.say)
            await self.stripe.start()

    async def stop(self) -> None:
        if self.stripe is not None:
            await self.stripe.close()

    async def one_pass(self) -> None:
        try:
            counts = await self.processor.retry_due()
            if counts:
                self.say("worker: " + ", ".join(f"{k.value}={v}" for k, v in counts.items()))
            await self.idempotency.purge()
        except Exception as exc:  # keep the worker alive through a database outage
            self.say(f"worker: pass failed: {type(exc).__name__}: {exc}")
        if self.stripe is not None:
            try:
                await self.stripe.one_pass()
            except Exception as exc:  # Stripe or the database failing must not stop the worker
                self.say(f"worker: Stripe pass failed: {type(exc).__name__}: {exc}")
        if time.monotonic() - self.last_analytics < self.settings.analytics_refresh_seconds:
            return
        await self.refresh_analytics()

    async def refresh_analytics(self, *, quiet: bool = False) -> None:
        """Append new events to the export, refresh the KPI snapshot, evaluate the alerts: one
        refresh at a time, whether the interval or new events asked for it. ``quiet`` (the
        refreshes new events ask for, up to one a second): say only what changed in the alerts."""
        from analytics.refresh import refresh

        async with self._refreshing:
            self.last_analytics = time.monotonic()
            try:
                result = await refresh(self.processor.db, self.settings)
                fired = ", ".join(f"{c.kind} {c.rule}:{c.key}" for c in result.changes)
                if not quiet or fired:
                    self.say(
                        f"worker: analytics refreshed in {result.seconds:.1f} s ({result.exported} new events)"
                        + (f"; alerts: {fired}" if fired else "")
                    )
            except Exception as exc:  # an analytics failure must not stop retries
                self.say(f"worker: analytics pass failed: {type(exc).__name__}: {exc}")

    async def watch(self, stop: asyncio.Event) -> None:
        """Every ``ANALYTICS_WATCH_SECONDS``, look at the log's newest id; when events were
        committed since the last look, refresh the analytics at once (events committed during a
        refresh are seen at the next look)."""
        interval = self.settings.analytics_watch_seconds
        seen: int | None = None
        while interval > 0 and not stop.is_set():
            try:
                newest = await self.processor.db.run(newest_id)
                moved, seen = seen is not None and newest != seen, newest
                if moved:
                    await self.refresh_analytics(quiet=True)
            except Exception as exc:  # a database outage must not stop the worker
                self.say(f"worker: watching the log failed: {type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def run(self, stop: asyncio.Event) -> None:
        """Passes every ``WORKER_POLL_SECONDS`` until ``stop`` is set."""
        self.say(f"worker: retrying failed events every {self.settings.worker_poll_seconds:g} s")
        await self.start()
        watching = asyncio.ensure_future(self.watch(stop))
        try:
            while not stop.is_set():
                await self.one_pass()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.worker_poll_seconds)
        finally:
            stop.set()
            await watching
            await self.stop()


@main.command()
@click.option("--once", is_flag=True, help="Do one pass of everything, then exit.")
def worker(once: bool) -> None:
    """Retry failed events with back-off (dead after the last attempt); purge expired idempotency keys;
    every ANALYTICS_REFRESH_SECONDS, refresh the Parquet export and KPI snapshot and evaluate the alerts;
    with a Stripe key, catch up from the Events API every STRIPE_CATCHUP_SECONDS and reconcile every
    STRIPE_RECONCILE_SECONDS."""
    settings = _settings()

    async def loop(processor: EventProcessor) -> None:
        passes = WorkerLoop(processor, settings, lambda line: click.echo(line, err=True))
        if once:
            await passes.start()
            try:
                await passes.one_pass()
            finally:
                await passes.stop()
            return
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        await passes.run(stop)

    _with_processor(settings, loop)
