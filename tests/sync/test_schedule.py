"""The worker's own runs against Stripe: on start, a log whose newest delivery is older than the
catch-up interval (or empty) is caught up from the Events API at once; then catch-up and
reconciliation run when due, each recorded, and their last success is a gauge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from api.catalogue.plans import load_catalogue
from api.cli.worker import WorkerLoop
from api.db.engine import Database
from api.ingest.processing import EventProcessor
from api.monitoring.gauges import BusinessGauges
from api.settings import Settings
from api.sync import state
from simulator.engine import SimConfig, Simulation
from simulator.stripe_api import StripeAccount, StripeApiServer
from tests.factories import make_event, subscription
from tests.sync.conftest import KEY, deliver, on


async def test_the_worker_catches_up_at_start_then_when_due_and_reconciles(sqlite_only: Settings) -> None:
    start = datetime.now(UTC) - timedelta(days=75)  # a history that ends about now
    sim = Simulation(SimConfig(customers=12, months=2, seed=8, start=start)).run()
    with StripeApiServer(StripeAccount.of(sim), KEY) as server:
        settings = dataclasses.replace(
            on(sqlite_only, server), stripe_catchup_seconds=300, stripe_reconcile_seconds=3600
        )
        db = Database(settings)
        said: list[str] = []
        passes = WorkerLoop(EventProcessor(db, settings), settings, said.append)
        passes.last_analytics = float("inf")  # keep this test to Stripe
        try:
            await passes.start()
            assert any("catching up from Stripe's Events API now" in line for line in said)
            await passes.one_pass()
            assert any(line.startswith("worker: catch-up stored") for line in said)
            caught = len(said)
            await passes.one_pass()  # not due again for five minutes
            assert len(said) == caught

            passes.stripe.next_reconcile = 0.0
            await passes.one_pass()
            runs = await db.run(state.recent_runs)
            assert [(run["kind"], run["outcome"]) for run in runs] == [
                ("reconcile", "succeeded"),
                ("catchup", "succeeded"),
            ]

            registry = CollectorRegistry()
            gauges = BusinessGauges(db, load_catalogue(), 0)
            registry.register(await gauges.collector())
            text = generate_latest(registry).decode()
            assert 'faddl_sync_last_success_timestamp_seconds{kind="catchup"}' in text
            assert 'faddl_sync_last_success_timestamp_seconds{kind="reconcile"}' in text
        finally:
            await passes.stop()
            await db.dispose()


async def test_a_log_with_a_recent_delivery_is_not_caught_up_at_start(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: Any
) -> None:
    settings = dataclasses.replace(on(sqlite_only, stand_in), stripe_catchup_seconds=300)
    db = Database(settings)
    try:
        await deliver(settings, [make_event("customer.subscription.created", subscription())])
        said: list[str] = []
        passes = WorkerLoop(EventProcessor(db, settings), settings, said.append)
        await passes.start()
        assert said == []
        assert passes.stripe.next_catchup > datetime.now(UTC).timestamp() + 200
        await passes.stop()
    finally:
        await db.dispose()


async def test_a_database_down_at_start_catches_up_at_the_first_pass(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: Any, monkeypatch: Any
) -> None:
    from api.sync import schedule

    async def down(conn: Any) -> None:
        raise ConnectionRefusedError("database away")

    monkeypatch.setattr(schedule.log, "newest_received", down)
    settings = dataclasses.replace(on(sqlite_only, stand_in), stripe_catchup_seconds=300, stripe_reconcile_seconds=3600)
    db = Database(settings)
    try:
        said: list[str] = []
        passes = WorkerLoop(EventProcessor(db, settings), settings, said.append)
        await passes.start()
        assert passes.stripe is not None
        assert said == ["worker: the newest delivery could not be read (DatabaseUnavailable): catching up at once"]
        assert passes.stripe.next_catchup is not None
        assert passes.stripe.next_catchup <= datetime.now(UTC).timestamp()
        assert passes.stripe.next_reconcile is not None  # still scheduled
        await passes.stop()
    finally:
        await db.dispose()
