"""The plan catalogue: the built-in one matches the demo's prices; bad files are refused plainly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.catalogue.plans import DEFAULT_PLANS_FILE, load_catalogue
from api.db.migrate import upgrade
from api.settings import Settings
from simulator.engine import PLANS


def test_builtin_catalogue_is_the_simulators() -> None:
    catalogue = load_catalogue(DEFAULT_PLANS_FILE)
    for tier, currencies in PLANS.items():
        for currency, intervals in currencies.items():
            for interval, amount in intervals.items():
                price_id = f"price_{tier}_{interval}ly_{currency}"
                plan = catalogue.plan_for_price(price_id)
                assert plan is not None, price_id
                assert plan.id == tier, price_id
                (price,) = [p for p in plan.prices if p.price_id == price_id]
                assert (price.currency, price.interval, price.unit_amount) == (currency, interval, amount)
    assert catalogue.plan_for_price("price_unknown") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[plans]\nid = ", "Expected"),
        ('[[plans]]\nid = "a"\nname = "A"\nprices = []\n', "has no prices"),
        (
            '[[plans]]\nid = "a"\nname = "A"\ncolour = "red"\n'
            'prices = [{price_id = "p", currency = "usd", interval = "month", unit_amount = 1}]\n',
            "unknown field",
        ),
        (
            '[[plans]]\nid = "a"\nname = "A"\nprices = [{price_id = "p", currency = "usd", interval = "fortnight", '
            "unit_amount = 1}]\n",
            "interval",
        ),
        (
            '[[plans]]\nid = "a"\nname = "A"\nprices = [{price_id = "p", currency = "usd", interval = "month", '
            'unit_amount = 1}]\n[[plans]]\nid = "b"\nname = "B"\nprices = [{price_id = "p", currency = "usd", '
            'interval = "month", unit_amount = 2}]\n',
            "belongs to two plans",
        ),
    ],
)
def test_bad_catalogues_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)


def test_serve_refuses_a_broken_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text('[[plans]]\nid = "a"\n')
    env = {**os.environ, "PLANS_FILE": str(path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode != 0
    assert "plan catalogue" in result.stderr
    assert "Traceback" not in result.stderr


async def test_plans_are_public(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", stripe_api_key="sk_test_x")
    await asyncio.to_thread(upgrade, settings)
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get("/api/plans")
    assert response.status_code == 200
    plans = response.json()
    assert [p["id"] for p in plans] == ["starter", "pro", "business"]
    assert plans[1]["features"]["api_calls"] == 10_000
    assert {"price_id": "price_pro_monthly_usd", "currency": "usd", "interval": "month", "unit_amount": 2900} in (
        plans[1]["prices"]
    )
