"""``faddl run``'s demo account, brought in as a real user adopts theirs: a simulated Stripe
account is served by the Stripe API stand-in (:mod:`simulator.stripe_api`) as it stood at the
"installation", ``faddl sync``'s own code brings it into the log over HTTP through the official
SDK, and the webhooks after the installation are delivered. The months before it rest on history
reconstruction, as they would for a real account."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from api.events.model import parse_event
from api.gateway.reading import StripeReader
from api.ingest.processing import EventProcessor
from api.sync.account import AccountSync
from simulator.engine import Simulation
from simulator.stripe_api import StripeAccount, StripeApiServer

__all__ = ["DEMO_KEY", "Adoption", "adopt"]

DEMO_KEY = "sk_test_demo_standin"
"""The stand-in's key: it lives only for the sync and only on localhost."""


@dataclass(frozen=True)
class Adoption:
    synced: int
    """Objects and events the sync stored."""
    delivered: int
    """Webhook events after the installation."""


async def adopt(processor: EventProcessor, sim: Simulation, installed: int) -> Adoption:
    """Sync ``sim``'s account as of ``installed``, then deliver its events after that moment."""
    with StripeApiServer(StripeAccount.of(sim), DEMO_KEY) as stand_in:
        stand_in.account.as_of = installed
        settings = dataclasses.replace(
            processor.settings,
            stripe_api_key=DEMO_KEY,
            stripe_api_base=stand_in.url,
            stripe_sync_requests_per_second=-1,
        )
        reader = StripeReader(settings)
        try:
            report = await AccountSync(processor, reader, clock=lambda: installed).run()
        finally:
            await reader.close()
    later: list[dict[str, Any]] = sorted(
        (event for event in sim.events if event["created"] > installed), key=lambda event: event["created"]
    )
    parsed = [parse_event(json.dumps(event)) for event in later]
    for start in range(0, len(parsed), 500):
        await processor.ingest_many(parsed[start : start + 500])
    return Adoption(report.total("stored"), len(parsed))
