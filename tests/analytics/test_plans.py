"""Plan names: the plan catalogue's names for its prices (through a synced price's lookup key when
it has one), the synced products' names for the other prices, the key itself for the rest."""

from __future__ import annotations

from typing import Any

from analytics.engine import Facts
from analytics.facts import facts_table
from analytics.plans import plan_names
from api.catalogue.plans import Plan, PlanCatalogue, PlanPrice
from api.events.model import SYNC_SOURCE, snapshot

T0 = 1_735_689_600


def synced(obj: dict[str, Any], number: int) -> Any:
    return snapshot(f"sync_{number}", f"{obj['object']}.updated", T0 + number, obj, SYNC_SOURCE)


def price(price_id: str, lookup_key: str | None, product: str, interval: str = "month") -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "currency": "usd",
        "unit_amount": 2900,
        "lookup_key": lookup_key,
        "product": product,
        "recurring": {"interval": interval, "interval_count": 1},
    }


FACTS = [
    synced({"id": "prod_pro", "object": "product", "name": "Pro plan"}, 1),
    synced({"id": "prod_team", "object": "product", "name": "Team"}, 2),
    synced(price("price_1", "pro_monthly", "prod_pro"), 3),
    synced(price("price_2", None, "prod_team", "year"), 4),
]
CATALOGUE = PlanCatalogue(
    plans=[
        Plan(
            id="pro",
            name="Professional",
            prices=[
                PlanPrice(price_id="price_1", currency="usd", interval="month", unit_amount=2900),
                PlanPrice(price_id="price_9", currency="eur", interval="year", unit_amount=29000),
            ],
        )
    ]
)


def test_synced_products_name_their_prices() -> None:
    facts = Facts(facts_table(FACTS))
    assert plan_names(facts) == {"pro_monthly": "Pro plan, monthly", "price_2": "Team, yearly"}


def test_the_catalogue_names_its_prices_through_their_lookup_keys() -> None:
    facts = Facts(facts_table(FACTS))
    assert plan_names(facts, CATALOGUE) == {
        "pro_monthly": "Professional, monthly",  # the catalogue's name, under the key the KPIs use
        "price_2": "Team, yearly",
        "price_9": "Professional, yearly",  # never synced: its id is its key
    }
