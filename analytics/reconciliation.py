"""The MRR reconciliation the notebook shows: the KPI engine's MRR per customer against a naive
reading of the raw events (each subscription's newest event by ``created`` alone, list price x
quantity, discounts ignored), and the reason for every difference.

A difference is explained only by a cause found in that customer's own events: a recurring
discount (the naive reading ignores it), a subscription past due (counted by the engine only for
its first 30 days), or a same-second tie (the subscription's newest second holds more than one of
its events, so "the newest" is not defined by ``created``). Anything else is left unexplained
(``None``), and the notebook's check fails on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import polars as pl

from api.events.model import ParsedEvent

__all__ = ["MONTHS_PER_INTERVAL", "explain", "naive_mrr"]

MONTHS_PER_INTERVAL = {"month": 1.0, "year": 12.0, "week": 12 / 52, "day": 12 / 365}


def naive_mrr(events: Iterable[ParsedEvent]) -> pl.DataFrame:
    """Per customer and currency: the naive MRR (cents), the newest status seen, whether a
    discount applies, and whether a same-second tie makes "the newest event" ambiguous."""
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    seconds: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for event in events:
        if not event.type.startswith("customer.subscription.") or event.object_id is None:
            continue
        sub = event.obj
        seconds[sub["id"]][event.created] += 1
        if sub["id"] not in latest or event.created >= latest[sub["id"]][0]:
            latest[sub["id"]] = (event.created, sub)
    rows = []
    for sub_id, (created, sub) in latest.items():
        items = (sub.get("items") or {}).get("data") or [{}]
        item = items[0]
        price = item.get("price") or item.get("plan") or {}
        recurring = price.get("recurring") or {"interval": price.get("interval", "month")}
        months = MONTHS_PER_INTERVAL.get(recurring.get("interval") or "month", 1.0)
        amount = (price.get("unit_amount") or price.get("amount") or 0) * (item.get("quantity") or 1) / months
        rows.append(
            {
                "customer": sub["customer"],
                "currency": price.get("currency"),
                "naive": amount if sub.get("status") in ("active", "past_due") else 0.0,
                "status": sub.get("status"),
                "discounted": bool(sub.get("discounts") or sub.get("discount")),
                "tied": seconds[sub_id][created] > 1,
            }
        )
    schema = {"customer": pl.String, "currency": pl.String, "naive": pl.Float64, "status": pl.String}
    schema |= {"discounted": pl.Boolean, "tied": pl.Boolean}
    return (
        pl.DataFrame(rows, schema=schema)
        .group_by("customer", "currency")
        .agg(pl.col("naive").sum(), pl.col("status").first(), pl.col("discounted").any(), pl.col("tied").any())
    )


def explain(ours: pl.DataFrame, naive: pl.DataFrame, tolerance: float = 0.005) -> pl.DataFrame:
    """The customers whose MRR differs (``ours`` has customer, currency, ours in cents), each with
    its explanation, or ``None`` when none of the causes is in its events."""
    joined = ours.join(naive, on=["customer", "currency"], how="full", coalesce=True).with_columns(
        pl.col("ours").fill_null(0.0),
        pl.col("naive").fill_null(0.0),
        pl.col("discounted").fill_null(False),
        pl.col("tied").fill_null(False),
    )
    return joined.filter((pl.col("ours") - pl.col("naive")).abs() > tolerance).with_columns(
        pl.when(pl.col("discounted"))
        .then(pl.lit("a recurring discount (the naive reading ignores it)"))
        .when(pl.col("status") == "past_due")
        .then(pl.lit("past due for more than 30 days (no longer counted)"))
        .when(pl.col("tied"))
        .then(pl.lit("same-second events: the naive reading picked the wrong one"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("explanation")
    )
