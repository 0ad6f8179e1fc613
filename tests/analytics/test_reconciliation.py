"""The reconciliation's explanations come from each customer's own events: a difference with no
cause there stays unexplained (so the notebook's check can fail), a same-second tie is one only
when the subscription's newest second really holds two of its events; and the notebooks' settings
take the project's var/ wherever they are started."""

from __future__ import annotations

from typing import Any

import polars as pl

from analytics.reconciliation import explain, naive_mrr
from analytics.workbench import ROOT, service_settings
from api.events.model import ParsedEvent, snapshot

T0 = 1_735_689_600


def sub_event(number: int, created: int, status: str = "active", amount: int = 2900, **extra: Any) -> ParsedEvent:
    obj = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "items": {
            "data": [
                {"quantity": 1, "price": {"unit_amount": amount, "currency": "usd", "recurring": {"interval": "month"}}}
            ]
        },
        **extra,
    }
    return snapshot(f"evt_{number}", "customer.subscription.updated", created, obj, "stripe")


def ours(cents: float) -> pl.DataFrame:
    return pl.DataFrame({"customer": ["cus_1"], "currency": ["usd"], "ours": [cents]})


def test_a_difference_without_a_cause_in_the_events_stays_unexplained() -> None:
    naive = naive_mrr([sub_event(1, T0), sub_event(2, T0 + 60, amount=4900)])
    found = explain(ours(2900.0), naive)
    assert found["explanation"].to_list() == [None]


def test_a_same_second_tie_explains_only_when_there_is_one() -> None:
    tied = naive_mrr([sub_event(1, T0), sub_event(2, T0 + 60, amount=4900), sub_event(3, T0 + 60)])
    assert explain(ours(4900.0 if tied["naive"][0] == 2900 else 2900.0), tied)["explanation"].to_list() == [
        "same-second events: the naive reading picked the wrong one"
    ]


def test_a_discount_and_a_long_past_due_explain() -> None:
    discounted = naive_mrr([sub_event(1, T0, discounts=["di_1"])])
    assert explain(ours(1450.0), discounted)["explanation"].to_list() == [
        "a recurring discount (the naive reading ignores it)"
    ]
    late = naive_mrr([sub_event(1, T0, status="past_due")])
    assert explain(ours(0.0), late)["explanation"].to_list() == ["past due for more than 30 days (no longer counted)"]
    assert explain(ours(2900.0), naive_mrr([sub_event(1, T0)])).height == 0


def test_the_notebooks_find_the_project_var_from_anywhere() -> None:
    settings = service_settings({})
    assert settings.var_dir == ROOT / "var"
    assert settings.database_url.endswith(f"{ROOT / 'var' / 'faddl.db'}")
    chosen = service_settings({"VAR_DIR": "/srv/faddl", "DATABASE_URL": "sqlite:////srv/faddl/x.db"})
    assert str(chosen.var_dir) == "/srv/faddl"
