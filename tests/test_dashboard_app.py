"""The Streamlit dashboard runs over a real event log, without exceptions, and shows the same MRR
as ``faddl kpis`` (Streamlit's own AppTest runs the script; the browser test comes with the
dashboard's other pages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from api.db.migrate import upgrade
from tests.conftest import sqlite_settings
from tests.processes import faddl, service_env

ROOT = Path(__file__).parents[1]


@pytest.fixture
def loaded_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = service_env(tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    upgrade(sqlite_settings(tmp_path / "faddl.db"))
    faddl(env, "simulate", "--customers", "40", "--months", "6", "--seed", "12", "--out", str(tmp_path / "sim"))
    faddl(env, "events", "load", str(tmp_path / "sim" / "events.jsonl"))
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    return env


def test_overview_shows_the_kpis_of_the_cli(loaded_log: dict[str, str]) -> None:
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    assert not app.exception, app.exception
    cli = json.loads(faddl(loaded_log, "kpis", "--format", "json").stdout)
    last = cli["months"][-1]
    mrr = next(metric for metric in app.metric if metric.label == "MRR")
    assert mrr.value == f"{last['mrr']['usd'] / 100:,.2f} USD"
    subscriptions = next(metric for metric in app.metric if metric.label == "Active subscriptions")
    assert subscriptions.value == str(last["active_subscriptions"])
    app.sidebar.selectbox[0].select("eur").run()
    assert not app.exception
    mrr = next(metric for metric in app.metric if metric.label == "MRR")
    assert mrr.value == f"{last['mrr']['eur'] / 100:,.2f} EUR"
