"""Under faults the service loses nothing and doubles nothing: a Stripe-like sender that retries
until 2xx delivers a shuffled history with duplicates while the API is killed (SIGKILL) and the
database goes away (every session terminated, then unreachable for a second); afterwards stored =
sent, and live = replay = in-order = the simulator's truth. The larger run is
``bench/faults.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from bench.faults import run
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


def test_nothing_lost_nothing_doubled_under_kills_and_database_outages(postgres: Settings, tmp_path: Path) -> None:
    # ``postgres`` only makes sure the server is there (skip, or fail under REQUIRE_SERVICES=1);
    # the run makes its own databases, as the benchmark does.
    report = run(customers=25, months=4, seed=11, kills=1, outages=1, workdir=tmp_path)
    assert (report.kills, report.outages) == (1, 1), "both faults happened mid-run"
    assert report.retries > 0, "the faults were felt by the sender"
    assert report.gave_up == 0
    assert report.stored == report.events, f"stored {report.stored} of {report.events} ({PG_ADMIN_URL})"
    assert report.live_equals_replay
    assert report.live_equals_in_order
    assert report.matches_truth
