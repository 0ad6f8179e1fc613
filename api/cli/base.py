"""What every ``faddl`` command shares: the command group, the settings read once (a malformed
one is one line and exit 1), and a processor over the configured database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from api.db.engine import Database
from api.ingest.processing import EventProcessor
from api.logs import configure_logging
from api.settings import Settings, get_settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValueError as exc:  # a malformed environment variable
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings)
    return settings


def _check_plans(settings: Settings) -> None:
    """Refuse to start the API with a broken plan catalogue, saying what is wrong."""
    from api.catalogue.plans import configured_catalogue

    try:
        configured_catalogue(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _with_processor(settings: Settings, work: Callable[[EventProcessor], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(settings)
        try:
            return await work(EventProcessor(db, settings))
        finally:
            await db.dispose()

    return asyncio.run(run())


@click.group()
def main() -> None:
    """faddl: Stripe subscription backend (webhooks, event log, projections, KPIs)."""
