"""What the worker does with Stripe's API on its own: the Events API catch-up every
``STRIPE_CATCHUP_SECONDS`` (and at once on start when the newest delivery is older than that: we
were down, or the endpoint was), and reconciliation every ``STRIPE_RECONCILE_SECONDS``. Each run
is recorded in ``sync_runs`` (what the last-success gauges and the alerts read); a failure is
reported and tried again at the next interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC

from api.events import log
from api.gateway.reading import StripeReader, StripeRefused, StripeUnreachable
from api.ingest.processing import EventProcessor
from api.settings import Settings
from api.sync.account import AccountSync
from api.sync.reconcile import Reconciler
from api.sync.resources import EVENTS

__all__ = ["StripeFollowUp"]


class StripeFollowUp:
    """The worker's catch-up and reconciliation, each when it is due."""

    def __init__(
        self,
        processor: EventProcessor,
        settings: Settings,
        say: Callable[[str], object],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.say = say
        self.clock = clock
        self.reader = StripeReader(settings)
        self.sync = AccountSync(processor, self.reader, clock=clock)
        self.next_catchup: float | None = None
        self.next_reconcile: float | None = None

    async def start(self) -> None:
        """Schedule the first runs: the catch-up at once if the newest delivery is older than its
        interval (or cannot be read: the database may be down at start), else after one interval;
        reconciliation after one interval."""
        now = self.clock()
        if self.settings.stripe_reconcile_seconds > 0:
            self.next_reconcile = now + self.settings.stripe_reconcile_seconds
        if self.settings.stripe_catchup_seconds <= 0:
            return
        try:
            newest = await self.processor.db.run(log.newest_received)
        except Exception as exc:  # retried at the first pass, with the catch-up
            self.say(f"worker: the newest delivery could not be read ({type(exc).__name__}): catching up at once")
            self.next_catchup = now
            return
        behind = newest is None or now - newest.timestamp() > self.settings.stripe_catchup_seconds
        self.next_catchup = now if behind else now + self.settings.stripe_catchup_seconds
        if behind:
            seen = newest.astimezone(UTC).isoformat() if newest else "never"
            self.say(f"worker: newest delivery {seen}: catching up from Stripe's Events API now")

    async def one_pass(self) -> None:
        now = self.clock()
        if self.next_catchup is not None and now >= self.next_catchup:
            self.next_catchup = now + self.settings.stripe_catchup_seconds
            try:
                report = await self.sync.run([EVENTS], kind="catchup")
                (events,) = report.resources
                if events.stored:
                    self.say(f"worker: catch-up stored {events.stored} events no webhook had brought")
            except (StripeUnreachable, StripeRefused) as exc:
                self.say(f"worker: catch-up failed: {exc}")
        if self.next_reconcile is not None and now >= self.next_reconcile:
            self.next_reconcile = now + self.settings.stripe_reconcile_seconds
            try:
                found = await Reconciler(self.sync, self.settings).run()
                if found.drift:
                    healed = sum(1 for d in found.drift if d.healed)
                    self.say(f"worker: reconciliation found {len(found.drift)} drifted objects, healed {healed}")
            except (StripeUnreachable, StripeRefused) as exc:
                self.say(f"worker: reconciliation failed: {exc}")

    async def close(self) -> None:
        await self.reader.close()

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """Only with a Stripe account to read (not in demo mode) and an interval set."""
        return not settings.demo_mode and (settings.stripe_catchup_seconds > 0 or settings.stripe_reconcile_seconds > 0)
