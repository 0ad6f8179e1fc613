"""The Streamlit dashboard runs over a real event log, every page without exceptions, and shows the
same MRR as ``faddl kpis`` (Streamlit's own AppTest runs the scripts; ``test_dashboard_browser``
opens the pages in a real browser)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from api.db.migrate import upgrade
from tests.conftest import sqlite_settings
from tests.dashboard_data import INCIDENTS, every_section
from tests.processes import faddl_here, service_env

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def loaded_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One log with data in every section, for the module (the pages only read it)."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    env = every_section(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DASHBOARD_LOGIN", "0")
        patch.setenv("DATABASE_URL", env["DATABASE_URL"])
        patch.setenv("VAR_DIR", env["VAR_DIR"])
        yield env


def test_overview_shows_the_kpis_of_the_cli(loaded_log: dict[str, str]) -> None:
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    assert not app.exception, app.exception
    cli = json.loads(faddl_here(loaded_log, "kpis", "--format", "json").stdout)
    last = cli["months"][-1]
    mrr = next(metric for metric in app.metric if metric.label == "MRR")
    assert mrr.value == f"{last['mrr']['usd'] / 100:,.2f} USD"
    subscriptions = next(metric for metric in app.metric if metric.label == "Active subscriptions")
    assert subscriptions.value == str(last["active_subscriptions_by_currency"]["usd"])
    assert sum(last["active_subscriptions_by_currency"].values()) == last["active_subscriptions"]
    app.sidebar.selectbox[0].select("eur").run()
    assert not app.exception
    mrr = next(metric for metric in app.metric if metric.label == "MRR")
    assert mrr.value == f"{last['mrr']['eur'] / 100:,.2f} EUR"


def test_the_security_page_shows_the_incidents(loaded_log: dict[str, str]) -> None:
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    app.switch_page("pages/security.py").run()
    assert not app.exception, app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    count = {kind: sum(n for k, _, n in INCIDENTS if k == kind) for kind, _, _ in INCIDENTS}
    assert metrics == {
        "Incidents": str(sum(count.values())),
        "Rate-limit abuse": str(count["rate_limit_abuse"]),
        "Clients blocked": str(count["blocked"]),
    }


def test_the_plan_distribution_counts_what_the_overview_counts(loaded_log: dict[str, str]) -> None:
    """Both count one currency's subscriptions (the Overview once counted every currency's), and
    plans go by the catalogue's names, not price ids."""
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    active = next(metric for metric in app.metric if metric.label == "Active subscriptions").value
    app.switch_page("pages/revenue.py").run()
    assert not app.exception, app.exception
    distribution = app.dataframe[-1].value
    assert list(distribution.columns) == ["plan", "subscriptions"]
    assert int(distribution["subscriptions"].sum()) == int(active) > 0
    assert set(distribution["plan"]) <= {
        f"{p}, {i}" for p in ("Starter", "Pro", "Business") for i in ("monthly", "yearly")
    }


def test_the_waterfall_and_whoever_is_behind_each_movement(loaded_log: dict[str, str]) -> None:
    """The month's waterfall ends at its MRR, and the customers listed behind a movement add up to
    it, each with its event."""
    cli = json.loads(faddl_here(loaded_log, "kpis", "--format", "json").stdout)
    month = cli["months"][-2]
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    app.switch_page("pages/revenue.py").run()
    app.selectbox(key="waterfall-month").select(month["month"]).run()
    assert not app.exception, app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics[f"MRR at the end of {month['month']}"] == f"{month['mrr']['usd'] / 100:,.2f} USD"
    moved = month["mrr_movements"]["usd"]
    kind = max(moved, key=lambda k: moved[k])
    app.selectbox(key="drill-kind").select(kind).run()
    behind = app.dataframe[0].value
    assert round(float(behind["amount"].sum()) * 100) == moved[kind]
    assert behind["event_id"].str.startswith("evt_").all()
    assert behind["customer"].str.startswith("/customer?customer=cus_").all()


def test_a_customer_page_from_its_id_or_email(loaded_log: dict[str, str]) -> None:
    import sqlite3

    database = loaded_log["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        customer, email = conn.execute(
            "SELECT c.stripe_customer_id, c.email FROM customers c JOIN user_subscriptions s "
            "ON s.stripe_customer_id = c.stripe_customer_id WHERE c.email IS NOT NULL LIMIT 1"
        ).fetchone()
    for asked in (customer, email.upper()):
        app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
        app.switch_page("pages/customer.py").run()
        app.text_input(key="customer-query").input(asked).run()
        assert not app.exception, app.exception
        assert any(customer in c.value for c in app.caption), asked
        titles = [h.value for h in app.subheader]
        for title in ("MRR over time", "Movements, with the events that caused them", "Subscriptions", "Invoices"):
            assert title in titles
    app.text_input(key="customer-query").input("nobody@example.com").run()
    assert not app.exception
    assert any("No customer" in w.value for w in app.warning)


def test_every_section_has_data(loaded_log: dict[str, str]) -> None:
    """The log the pages are tested over has something in every section: months resting on
    reconstruction, disputes, open alerts (acknowledgeable) and incidents."""
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    assert any("rest on reconstructed history" in c.value for c in app.sidebar.caption)
    cli = json.loads(faddl_here(loaded_log, "kpis", "--format", "json").stdout)
    rebuilt = {m["month"] for m in cli["months"] if m["reconstructed"]}
    overview = app.dataframe[0].value
    marked = set(overview.loc[overview["note"].str.contains("reconstructed"), "month"])
    assert rebuilt
    assert marked == rebuilt & set(overview["month"]), "the tables mark exactly the reconstructed months"
    app.switch_page("pages/payments.py").run()
    payments = app.dataframe[0].value
    assert payments["disputes"].sum() > 0
    app.switch_page("pages/alerts.py").run()
    assert not app.exception, app.exception
    assert int(next(m for m in app.metric if m.label == "Open alerts").value) >= 2
    assert any(b.label == "Acknowledge" for b in app.button)
    severities = [m.value.split("**")[1] for m in app.markdown if m.value.startswith("**")]
    assert severities[:2] == ["HIGH", "MEDIUM"], "the most severe first"


def test_a_page_shows_a_newer_snapshot_at_once(loaded_log: dict[str, str]) -> None:
    """A snapshot the worker writes is read on the page's next run, not after a cache runs out (an
    open page reruns itself when it sees one: ``follow_snapshots``)."""
    import asyncio
    import copy
    from datetime import UTC, datetime

    from analytics.snapshots import latest_snapshot, store_snapshot
    from api.db.engine import Database

    settings = sqlite_settings(Path(loaded_log["DATABASE_URL"].removeprefix("sqlite:///")))

    async def write(change: int) -> dict[str, Any]:
        db = Database(settings)
        try:
            found = await latest_snapshot(db)
            assert found is not None
            document = copy.deepcopy(found[0])
            document["months"][-1]["mrr"]["usd"] += change
            await store_snapshot(db, document, datetime.now(UTC), 0.1)
            return document
        finally:
            await db.dispose()

    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    shown = next(metric for metric in app.metric if metric.label == "MRR").value
    document = asyncio.run(write(10_000))
    try:
        app.run()
        now = next(metric for metric in app.metric if metric.label == "MRR").value
        assert now != shown
        assert now == f"{document['months'][-1]['mrr']['usd'] / 100:,.2f} USD"
    finally:
        asyncio.run(write(-10_000))


def test_every_currency_in_one_with_the_ecb_rates(
    loaded_log: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With FX_RATES_FILE (the ECB's CSV), Revenue totals every currency in the reporting one at the
    month's rates, the FX effect apart, and shows the rates it used."""
    rates = tmp_path / "eurofxref-hist.csv"
    rates.write_text("Date,USD,GBP,\n2025-01-31,1.0400,0.8400,\n2025-06-30,1.1700,0.8550,\n", encoding="utf-8")
    monkeypatch.setenv("FX_RATES_FILE", str(rates))
    st.cache_resource.clear()  # the settings are cached for the process
    try:
        cli = json.loads(faddl_here(loaded_log, "kpis", "--format", "json").stdout)
        last = cli["months"][-1]
        app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
        app.switch_page("pages/revenue.py").run()
        assert not app.exception, app.exception
        expected = last["mrr"].get("eur", 0) + last["mrr"].get("usd", 0) / 1.17 + last["mrr"].get("gbp", 0) / 0.855
        total = next(m for m in app.metric if m.label == "MRR, every currency, in EUR").value
        assert total == f"{expected / 100:,.2f} EUR"
        used = app.dataframe[-1].value
        assert dict(zip(used["currency"], used["per_euro"], strict=True)) == {"EUR": 1.0, "GBP": 0.855, "USD": 1.17}
    finally:
        st.cache_resource.clear()


@pytest.mark.parametrize("page", ["revenue", "retention", "payments", "customer", "security", "alerts"])
def test_every_page_runs(loaded_log: dict[str, str], page: str) -> None:
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == page.capitalize()


def test_the_overview_lists_stale_subscriptions_and_links_the_definitions(loaded_log: dict[str, str]) -> None:
    """The simulated log stops months ago: its live subscriptions are stale, listed like the CLI's."""
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    cli = json.loads(faddl_here(loaded_log, "kpis", "--format", "json").stdout)
    stale = [s for s in cli["stale_subscriptions"] if s["currency"] == "usd"]
    assert stale
    assert f"Stale subscriptions ({len(stale)})" in [h.value for h in app.subheader]
    assert any("[Definitions](/definitions)" in c.value for c in app.caption)
    app.switch_page("pages/definitions.py").run()
    assert not app.exception, app.exception
    assert any(m.value.startswith("# KPI definitions") for m in app.markdown)


def test_an_unfinished_month_is_called_month_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from tests.factories import make_event, subscription

    now = int(time.time())
    env = service_env(tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    upgrade(sqlite_settings(tmp_path / "faddl.db"))
    period = (now - 86_400, now + 29 * 86_400)
    lines = [
        json.dumps(
            make_event(
                "customer.subscription.created", subscription(f"sub_{n}", f"cus_{n}", period=period), created=now - 60
            )
        )
        for n in range(2)
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    faddl_here(env, "events", "load", str(tmp_path / "events.jsonl"))
    monkeypatch.setenv("DASHBOARD_LOGIN", "0")
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    monkeypatch.setenv("VAR_DIR", env["VAR_DIR"])
    st.cache_data.clear()  # Streamlit's caches outlive an AppTest run: drop another log's settings
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60).run()
    st.cache_data.clear()
    st.cache_resource.clear()
    assert not app.exception, app.exception
    assert any("month to date" in c.value for c in app.caption)
    assert any("is month to date" in c.value for c in app.sidebar.caption)
    mrr = next(metric for metric in app.metric if metric.label == "MRR")
    assert mrr.value == "58.00 USD"
