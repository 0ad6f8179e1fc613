"""Plan names: what the plan distribution's keys (a price's lookup key, nickname or id, as
:func:`analytics.mrr.state_of` names a plan) are called: the plan catalogue's name for its prices
(what the operator calls the plan), else the product's name from the prices and products a sync
brought in (their newest snapshots)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analytics.engine import Facts
    from api.catalogue.plans import PlanCatalogue

__all__ = ["plan_names"]

_EVERY = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}


def plan_names(facts: Facts, catalogue: PlanCatalogue | None = None) -> dict[str, str]:
    """Plan key -> "Pro, monthly" (or "Product, every 3 months"): the catalogue's prices by their
    plan's name, the other synced prices by their product's name."""
    products = {
        product_id: json.loads(detail).get("name")
        for product_id, detail in facts.con.sql(
            f"SELECT object_id, arg_max(detail_json, created) FROM {facts.view} "
            "WHERE object_type = 'product' AND detail_json IS NOT NULL GROUP BY object_id"
        ).fetchall()
    }
    names: dict[str, str] = {}
    keys: dict[str, str] = {}  # a synced price's id -> the key the plan distribution uses
    for (detail,) in facts.con.sql(
        f"SELECT arg_max(detail_json, created) FROM {facts.view} "
        "WHERE object_type = 'price' AND detail_json IS NOT NULL GROUP BY object_id"
    ).fetchall():
        price = json.loads(detail)
        product = price.get("product")
        name = products.get(product if isinstance(product, str) else (product or {}).get("id"))
        key = price.get("lookup_key") or price.get("nickname") or price.get("id")
        if price.get("id") and key:
            keys[str(price["id"])] = str(key)
        if not name or not key:
            continue
        recurring = price.get("recurring") or {}
        interval, count = recurring.get("interval"), int(recurring.get("interval_count") or 1)
        if interval and count == 1:
            name = f"{name}, {_EVERY.get(interval, interval)}"
        elif interval:
            name = f"{name}, every {count} {interval}s"
        names[str(key)] = str(name)
    for price_id, name in (catalogue.price_names() if catalogue else {}).items():
        names[keys.get(price_id, price_id)] = name
    return dict(sorted(names.items()))
