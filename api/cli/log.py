"""The event log's commands: ``faddl replay`` and ``faddl events load``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import click
from tqdm import tqdm

from api.cli.base import _settings, _with_processor, main
from api.events.model import InvalidEvent, ParsedEvent, check_storable, parse_event
from api.ingest.processing import EventProcessor, Outcome


# -- the event log -------------------------------------------------------------------------------
@main.command()
def replay() -> None:
    """Rebuild every projection table from the event log alone."""
    settings = _settings()

    async def work(processor: EventProcessor) -> None:
        from api.events.log import count_stripe_events

        total = await processor.db.run(count_stripe_events)
        started = time.perf_counter()
        with tqdm(total=total, unit="event", desc="replay", disable=None) as bar:
            report = await processor.replay(progress=bar.update)
        click.echo(
            f"replayed {report.events} events in {time.perf_counter() - started:.1f} s; "
            f"{len(report.failed)} failed, {len(report.recovered)} recovered"
        )
        if report.failed:
            raise click.ClickException(f"{len(report.failed)} events failed; see `last_error` in the log")

    _with_processor(settings, work)


@main.group()
def events() -> None:
    """The event log."""


async def _load(processor: EventProcessor, parsed: list[ParsedEvent], chunk: int = 500) -> dict[str, int]:
    """Store and process events in ``created`` order, ``chunk`` to a transaction; outcome counts."""
    counts: dict[str, int] = {}
    with tqdm(total=len(parsed), unit="event", desc="load", disable=None) as bar:
        for start in range(0, len(parsed), chunk):
            for outcome in await processor.ingest_many(parsed[start : start + chunk]):
                counts[outcome.value] = counts.get(outcome.value, 0) + 1
            bar.update(min(chunk, len(parsed) - start))
    return counts


def _read_events(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.strip()


@events.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def events_load(file: Path) -> None:
    """Bulk-load FILE (JSON lines of Stripe events) through the same processing as webhooks."""
    settings = _settings()
    lines = list(_read_events(file))

    events_parsed = []
    for number, line in lines:
        try:
            event = parse_event(line)
            check_storable(event)
            events_parsed.append(event)
        except InvalidEvent as exc:
            raise click.ClickException(f"{file}:{number}: {exc}") from exc

    async def work(processor: EventProcessor) -> dict[str, int]:
        return await _load(processor, events_parsed)

    started = time.perf_counter()
    counts = _with_processor(settings, work)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(f"loaded {len(lines)} events in {time.perf_counter() - started:.1f} s: {summary}")
    if counts.get(Outcome.FAILED.value) or counts.get(Outcome.DEAD.value):
        raise click.ClickException("some events failed to process; the worker will retry them")
