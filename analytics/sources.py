"""Events from a JSON-lines file of Stripe events (what ``faddl simulate`` writes), for
``faddl kpis --events`` and the notebooks; the database is read through :mod:`analytics.export`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from api.events.model import ParsedEvent, parse_event

__all__ = ["events_from_file"]


def events_from_file(path: Path) -> Iterator[ParsedEvent]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield parse_event(line)
