"""The simulator's own ground truth, independent of the KPI engine on purpose.

The tests hold the engine (``analytics/``) to these numbers, so they must not share its code: MRR
here is worked out from the simulator's internal state (each subscription's price, quantity,
coupon and status as the simulation moved them), with exact fractions, by the definitions of
``docs/kpis.md``; never from the events, and never through anything in ``api`` or ``analytics``.
A bug in the engine then shows up as a difference instead of being repeated on both sides.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from simulator.clock import DAY, add_months

if TYPE_CHECKING:
    from simulator.engine import Simulation, _Customer

__all__ = ["PAST_DUE_GRACE", "ground_truth", "movement_kind", "subscription_mrr"]

Obj = dict[str, Any]

PAST_DUE_GRACE = 30 * DAY
"""kpis.md: a ``past_due`` subscription counts towards MRR for at most 30 days."""


def subscription_mrr(sub: Obj, now: int) -> Fraction:
    """The subscription's MRR at ``now``: list price x quantity per month, less its coupon, while
    ``active`` or ``past_due`` within the grace."""
    status = sub["status"]
    if status == "past_due" and now - sub["past_due_since"] > PAST_DUE_GRACE:
        return Fraction(0)
    if status not in ("active", "past_due"):
        return Fraction(0)
    price = sub["price"]
    amount = Fraction(price["unit_amount"] * sub["quantity"])
    if price["recurring"]["interval"] == "year":
        amount /= 12
    if sub.get("coupon"):
        amount *= Fraction(100 - int(sub["coupon"]["percent_off"]), 100)
    return amount


def movement_kind(old: Fraction, new: Fraction, *, ever_paid: bool) -> str:
    """The MRR movement from ``old`` to ``new`` (they differ): new, reactivation, expansion,
    contraction or churn."""
    if old == 0:
        return "reactivation" if ever_paid else "new"
    if new == 0:
        return "churn"
    return "expansion" if new > old else "contraction"


def ground_truth(self: Simulation) -> Obj:
    """Ground truth per calendar month (kpis.md definitions), from the simulator's own state."""
    boundaries = [add_months(self.start, k) for k in range(self.config.months + 1)]
    months: list[Obj] = []
    mrr: dict[str, dict[str, int]] = defaultdict(dict)  # currency -> customer -> mrr
    changes = sorted(self.changes, key=lambda c: c[0])
    position = 0
    for begin, finish in itertools.pairwise(boundaries):
        start_mrr = {cur: sum(v.values()) for cur, v in mrr.items()}
        movements: dict[str, Counter[str]] = defaultdict(Counter)
        while position < len(changes) and changes[position][0] < finish:
            _created, customer_id, currency, kind, delta = changes[position]
            signed = -delta if kind in ("churn", "contraction") else delta
            mrr[currency][customer_id] = mrr[currency].get(customer_id, 0) + signed
            movements[currency][kind] += delta
            position += 1
        end_mrr = {cur: sum(v.values()) for cur, v in mrr.items()}
        for currency in end_mrr:
            move = movements[currency]
            expected = (
                start_mrr.get(currency, 0)
                + move["new"]
                + move["reactivation"]
                + move["expansion"]
                - move["contraction"]
                - move["churn"]
            )
            if expected != end_mrr[currency]:
                raise AssertionError(f"movement identity broken for {currency} in month starting {begin}")
        paying = {cur: sum(1 for v in values.values() if v > 0) for cur, values in mrr.items()}
        months.append(
            {
                "month": datetime.fromtimestamp(begin, tz=UTC).strftime("%Y-%m"),
                "start": begin,
                "end": finish,
                "mrr": dict(sorted(end_mrr.items())),
                "arr": {cur: 12 * value for cur, value in sorted(end_mrr.items())},
                "paying_customers": dict(sorted(paying.items())),
                "active_subscriptions": sum(paying.values()),
                "customers": sum(1 for c in self.customers.values() if _first_seen(self, c) < finish),
                "mrr_movements": {
                    cur: {k: movements[cur][k] for k in ("new", "reactivation", "expansion", "contraction", "churn")}
                    for cur in sorted(set(movements) | set(end_mrr))
                },
            }
        )
    return {
        "config": {
            "customers": self.config.customers,
            "months": self.config.months,
            "seed": self.config.seed,
            "start": self.config.start.date().isoformat(),
        },
        "events": len(self.events),
        "event_types": dict(sorted(Counter(e["type"] for e in self.events).items())),
        "months": months,
        "subscriptions": {
            sub["id"]: {
                "customer": sub["customer"],
                "user_id": sub["user_id"],
                "status": sub["status"],
                "price_id": sub["price"]["id"],
                "quantity": sub["quantity"],
                "cancel_at_period_end": sub["cancel_at_period_end"],
                "current_period_end": sub["period_end"],
                "mrr": int(subscription_mrr(sub, self.end)),
            }
            for sub in self.subscriptions.values()
        },
        "invoices": {
            inv["id"]: {
                "status": inv["status"],
                "attempt_count": inv["attempt_count"],
                "amount_due": inv["amount_due"],
                "subscription": inv["subscription"],
            }
            for inv in self.invoices.values()
        },
    }


def _first_seen(self: Simulation, customer: _Customer) -> int:
    return min(
        (s["created"] for s in self.subscriptions.values() if s["customer"] == customer.id),
        default=self.end,
    )
