"""A simulated account for the KPI tests: the simulator's own state and ground truth beside its
events, parsed as the log would hold them, and the months the truth covers; each account is
simulated once per test process, however many tests read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, cached_property
from typing import Any

import msgspec

from analytics.engine import Facts
from analytics.facts import facts_table
from analytics.report import Report, analyze
from api.events.model import ParsedEvent, parse_event
from simulator.engine import SimConfig, Simulation
from simulator.truth import ground_truth


@dataclass
class Simulated:
    sim: Simulation
    truth: dict[str, Any]
    events: list[dict[str, Any]]
    """Raw events in ``created`` order."""
    parsed: list[ParsedEvent]
    first: date
    last: date

    @cached_property
    def facts(self) -> Facts:
        return Facts(facts_table(self.parsed))

    @cached_property
    def report(self) -> Report:
        return analyze(self.facts, self.first, self.last)


@cache
def simulate_account(customers: int, months: int, seed: int) -> Simulated:
    """Simulated once per test process and shared: callers read it and never change it."""
    sim = Simulation(SimConfig(customers=customers, months=months, seed=seed)).run()
    truth = ground_truth(sim)
    events = sorted(sim.events, key=lambda e: e["created"])
    return Simulated(
        sim=sim,
        truth=truth,
        events=events,
        parsed=[parse_event(msgspec.json.encode(e)) for e in events],
        first=datetime.fromtimestamp(truth["months"][0]["start"], tz=UTC).date(),
        last=datetime.fromtimestamp(truth["months"][-1]["start"], tz=UTC).date(),
    )
