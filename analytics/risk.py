"""At-risk customers: a transparent, rule-based score per paying customer, from signals in the
log, each with the reason a person can act on. At-risk MRR (the MRR of customers at or above
``THRESHOLD``) is a KPI the alerts can watch.

| signal | points |
|---|---|
| the subscription is set to cancel at period end | 40 |
| in dunning (``past_due`` or ``unpaid``) | 35 |
| a dispute on one of its charges in the last 90 days | 25 |
| a downgrade or seat drop (a contraction) in the last 30 days | 20 |
| usage of a feature fell below half of the period before (at least 10 before) | 15 |
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from analytics.engine import Facts, cents

__all__ = ["THRESHOLD", "WEIGHTS", "AtRisk", "at_risk"]

THRESHOLD = 30
WEIGHTS = {"cancel_at_period_end": 40, "dunning": 35, "dispute": 25, "contraction": 20, "usage_drop": 15}
DAY = 86_400


@dataclass(frozen=True)
class AtRisk:
    customer_id: str
    currency: str
    mrr: int
    score: int
    reasons: list[str] = field(default_factory=list)


def _date(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d")


def at_risk(
    facts: Facts, as_of: int, threshold: int = THRESHOLD, movements: pl.DataFrame | None = None
) -> list[AtRisk]:
    """Paying customers scoring at least ``threshold`` as of ``as_of``, riskiest first.
    ``movements``: the report's MRR movements when it covers ``as_of`` (saves computing them)."""
    facts = facts.before(as_of + 1)
    timelines = facts.timelines()
    reasons: dict[str, dict[str, str]] = defaultdict(dict)
    if timelines.is_empty():
        return []
    if movements is None:
        changes = Facts.movements(facts.change_points(timelines), until=as_of + 1)
    else:  # a movement depends only on what came before it
        changes = movements.filter(pl.col("at") <= as_of)
    mrr = {
        (customer, currency): after
        for customer, currency, after in changes.group_by(["customer", "currency"])
        .agg(pl.col("after").last())
        .iter_rows()
    }
    for customer, moment in (
        changes.filter((pl.col("kind") == "contraction") & (pl.col("at") >= as_of - 30 * DAY))
        .group_by("customer")
        .agg(pl.col("at").max())
        .iter_rows()
    ):
        reasons[customer]["contraction"] = f"downgraded on {_date(moment)}"
    latest = timelines.group_by("sub_k").agg(pl.col("customer", "status", "cancel_at_period_end", "user_id").last())
    live = latest.filter(~pl.col("status").is_in(["canceled", "incomplete_expired"]))
    for customer in live.filter(pl.col("cancel_at_period_end"))["customer"]:
        reasons[customer]["cancel_at_period_end"] = "set to cancel at the end of the period"
    for customer, status in (
        live.filter(pl.col("status").is_in(["past_due", "unpaid"])).select("customer", "status").iter_rows()
    ):
        reasons[customer]["dunning"] = f"payment failing ({status})"
    disputes = facts.sql(
        f"""
        SELECT c.customer_id, max(d.created) FROM {facts.view} d
        JOIN (SELECT DISTINCT object_id, customer_id FROM {facts.view}
              WHERE object_type = 'charge' AND customer_id IS NOT NULL) c ON c.object_id = d.charge_id
        WHERE d.type = 'charge.dispute.created' AND d.created >= $1
        GROUP BY c.customer_id
        """,
        [as_of - 90 * DAY],
    )
    for customer, moment in disputes.iter_rows():
        reasons[customer]["dispute"] = f"disputed a charge on {_date(moment)}"
    usage = facts.sql(
        f"""
        SELECT user_id, feature, split_part(period, '|', 1) AS period_start, sum(amount) AS quantity
        FROM (SELECT DISTINCT ON (event_id) * FROM {facts.view} WHERE type = 'usage.recorded')
        WHERE split_part(period, '|', 2) <= $1
        GROUP BY ALL ORDER BY user_id, feature, period_start
        """,
        [datetime.fromtimestamp(as_of, tz=UTC).isoformat()],
    )
    users: dict[str, str] = (
        dict(latest.filter(pl.col("user_id").is_not_null()).select("user_id", "customer").iter_rows())
        if not usage.is_empty()
        else {}
    )
    for (user, feature), periods in usage.group_by(["user_id", "feature"], maintain_order=True):
        ordered = periods["quantity"].to_list()
        owner = users.get(str(user))
        if owner and len(ordered) >= 2 and ordered[-2] >= 10 and ordered[-1] < ordered[-2] / 2:
            reasons[owner]["usage_drop"] = f"{feature} usage fell from {ordered[-2]} to {ordered[-1]}"
    found: list[AtRisk] = []
    for (customer, currency), value in mrr.items():
        if value <= 0 or customer not in reasons:
            continue
        score = min(100, sum(WEIGHTS[signal] for signal in reasons[customer]))
        if score >= threshold:
            found.append(AtRisk(customer, currency, cents(value), score, sorted(reasons[customer].values())))
    return sorted(found, key=lambda r: (-r.score, -r.mrr, r.customer_id))
